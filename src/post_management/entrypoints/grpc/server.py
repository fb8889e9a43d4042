"""The grpc.aio server: servicers, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from xmp.posts.v1 import (
    account_service_pb2,
    account_service_pb2_grpc,
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    campaign_service_pb2,
    campaign_service_pb2_grpc,
    post_service_pb2,
    post_service_pb2_grpc,
    publishing_service_pb2,
    publishing_service_pb2_grpc,
    scheduling_service_pb2,
    scheduling_service_pb2_grpc,
    service_info_service_pb2,
    service_info_service_pb2_grpc,
)

from post_management.entrypoints.grpc.account_servicer import AccountServicer
from post_management.entrypoints.grpc.analytics_servicer import (
    AnalyticsServicer,
    AnalyticsServices,
)
from post_management.entrypoints.grpc.campaign_servicer import CampaignServicer
from post_management.entrypoints.grpc.edge import EdgeInterceptor
from post_management.entrypoints.grpc.info_servicer import (
    BuildInfo,
    CachedReadiness,
    ComponentCheck,
    HealthReport,
    ServiceInfoServicer,
)
from post_management.entrypoints.grpc.post_servicer import PostServicer
from post_management.entrypoints.grpc.publishing_servicer import PublishingServicer
from post_management.entrypoints.grpc.rate_limit import RateLimitInterceptor, RequestBudget
from post_management.entrypoints.grpc.scheduling_servicer import SchedulingServicer
from post_management.entrypoints.grpc.telemetry import TelemetryInterceptor
from post_management.entrypoints.grpc.token_cache import VerifiedTokens
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.entrypoints.grpc.unary import FusedInterceptor, UnaryInterceptor
from post_management.ports.post_reads import AsyncResource
from post_management.ports.publishing import AsyncRateLimiter
from post_management.services.accounts.accounts import AccountService
from post_management.services.analytics.campaigns import CampaignService
from post_management.services.posts.media import MediaService
from post_management.services.posts.posts import PostService
from post_management.services.posts.queries import PostQueries
from post_management.services.privacy.privacy import PrivacyService
from post_management.services.publishing.commands import PublishCommands
from post_management.services.scheduling.listing import ScheduledListing
from post_management.services.scheduling.scheduling import SchedulingService

log = logging.getLogger(__name__)

SERVICE_NAMES = [
    file.DESCRIPTOR.services_by_name[name].full_name
    for file, name in (
        (post_service_pb2, "PostService"),
        (scheduling_service_pb2, "PostSchedulingService"),
        (publishing_service_pb2, "PublishingService"),
        (analytics_service_pb2, "AnalyticsService"),
        (account_service_pb2, "AccountService"),
        (campaign_service_pb2, "CampaignService"),
        (service_info_service_pb2, "ServiceInfoService"),
    )
]
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
HEALTH_INTERVAL_SECONDS = 5.0
# A result older than this (the monitor is stuck, e.g. on a database that hangs)
# counts as not ready.
STALE_AFTER_SECONDS = 3 * HEALTH_INTERVAL_SECONDS


@dataclass(frozen=True)
class ServerLimits:
    """What one server takes on (GRPC_MAX_CONCURRENT_RPCS, MAX_UPLOAD_BYTES): the
    receive limit is Envoy's largest body (UploadMedia's route), so a direct caller
    gets no more than one through Envoy."""

    max_concurrent_rpcs: int = 256
    # UploadMedia carries a file in one message; larger videos need a streaming upload.
    max_receive_bytes: int = 16 * 1024 * 1024


@dataclass
class Services:
    """What the gRPC layer needs from the composition root."""

    posts: PostService
    # GetPost's asynchronous read path.
    post_queries: PostQueries
    accounts: AccountService
    tokens: TokenCodec
    build: BuildInfo
    readiness: Callable[[], list[ComponentCheck]]
    scheduling: SchedulingService
    # ListScheduledPosts' asynchronous read path.
    scheduled_listing: ScheduledListing
    publishing: PublishCommands
    media: MediaService
    analytics: AnalyticsServices
    # Audit trail, export and erasure (docs/security.md).
    privacy: PrivacyService
    campaigns: CampaignService
    # Per-caller request budgets, awaited on the serving loop; None: no limit.
    rpc_limiter: AsyncRateLimiter | None = None
    request_budget: RequestBudget | None = None
    # Opened on the serving event loop before the port opens, closed after it stops.
    resources: list[AsyncResource] = field(default_factory=list)
    # Threads for the blocking work of RPCs (GRPC_REQUEST_THREADS); 0: min(32, CPUs + 4).
    request_threads: int = 0
    # GET /health?detail=true; None: the plain answer only.
    health_report: Callable[[], HealthReport] | None = None


class GrpcServer:
    def __init__(
        self, services: Services, host: str, port: int, limits: ServerLimits | None = None
    ) -> None:
        limits = limits or ServerLimits()
        self._services = services
        # Set once shutdown begins; readiness and health stay down from then on.
        self._stopping = False
        # span/ids/metrics/logs, then auth and error mapping, then request budgets:
        # one interception per call, its wrapper built once per method.
        edge: list[UnaryInterceptor] = [
            TelemetryInterceptor(),
            EdgeInterceptor(VerifiedTokens(services.tokens)),
        ]
        if services.rpc_limiter is not None and services.request_budget is not None:
            # Inside the edge: the caller is known, and refusals are counted like errors.
            edge.append(RateLimitInterceptor(services.rpc_limiter, services.request_budget))
        # Handlers run their blocking use cases on this bounded pool (the loop's
        # default executor once started); health checks have a thread of their own,
        # so a flood of calls cannot hold back the probes, nor the probes the calls.
        self._request_pool = ThreadPoolExecutor(
            max_workers=services.request_threads or None, thread_name_prefix="rpc"
        )
        self._health_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
        # GetReadiness answers from the monitor's last result: no database ping per call.
        self._readiness = CachedReadiness(max_age=STALE_AFTER_SECONDS)
        # Unary calls get their server span from the telemetry part (telemetry.py);
        # OpenTelemetry's interceptor is left the streaming methods of reflection. Not
        # health checks: probes are noise in traces, and the tracing wrapper breaks
        # Watch (it iterates responses; Watch writes them to the context).
        tracing = aio_server_interceptor(filter_=filters.service_prefix("grpc.reflection."))  # type: ignore[no-untyped-call]
        # Reflection's tracing outermost, then the edge: one interceptor, its wrappers
        # built once per method (OpenTelemetry's _start_span reads only the method of
        # the call details; the span itself is started per call).
        interceptors: list[grpc.aio.ServerInterceptor] = [FusedInterceptor(edge, outer=tracing)]
        self._server = grpc.aio.server(
            interceptors=interceptors,
            # Calls beyond it are refused at once (RESOURCE_EXHAUSTED), not queued.
            maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", limits.max_receive_bytes),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        post_service_pb2_grpc.add_PostServiceServicer_to_server(
            PostServicer(services.posts, services.media, services.post_queries), self._server
        )
        account_service_pb2_grpc.add_AccountServiceServicer_to_server(
            AccountServicer(services.accounts, services.privacy), self._server
        )
        service_info_service_pb2_grpc.add_ServiceInfoServiceServicer_to_server(
            ServiceInfoServicer(
                services.build,
                self._readiness,
                lambda: not self._stopping,
                services.health_report,
            ),
            self._server,
        )
        scheduling_service_pb2_grpc.add_PostSchedulingServiceServicer_to_server(
            SchedulingServicer(services.scheduling, services.scheduled_listing), self._server
        )
        publishing_service_pb2_grpc.add_PublishingServiceServicer_to_server(
            PublishingServicer(services.publishing), self._server
        )
        analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server(
            AnalyticsServicer(services.analytics), self._server
        )
        campaign_service_pb2_grpc.add_CampaignServiceServicer_to_server(
            CampaignServicer(services.campaigns), self._server
        )
        reflection.enable_server_reflection(
            [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        self._monitor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        asyncio.get_running_loop().set_default_executor(self._request_pool)
        await self._set_health(serving=False)
        for resource in self._services.resources:
            await resource.open()
        await self._server.start()
        await self.refresh_health()
        self._monitor = asyncio.create_task(self._watch_health())

    async def refresh_health(self) -> None:
        """SERVING only while every component (the database first) answers."""
        loop = asyncio.get_running_loop()
        checks = await loop.run_in_executor(self._health_pool, self._services.readiness)
        self._readiness.record(checks)
        failing = [check.name for check in checks if not check.ok]
        if failing:
            log.warning("not serving: %s", ", ".join(failing))
        await self._set_health(serving=not failing)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
            try:
                await self.refresh_health()
            except Exception:
                log.exception("health check failed")
                await self._set_health(serving=False)

    async def _set_health(self, *, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *SERVICE_NAMES]:
            await self._health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Turn NOT_SERVING first so balancers drain, then let in-flight calls finish."""
        if self._monitor is not None:
            self._monitor.cancel()
        await self._health.enter_graceful_shutdown()
        self._stopping = True
        await self._server.stop(grace)
        for resource in self._services.resources:
            await resource.close()
        self._health_pool.shutdown(wait=False, cancel_futures=True)
        # The request pool is the loop's default executor now: the loop's owner shuts
        # it down (asyncio.run does), after the last to_thread of the shutdown.

    async def wait(self) -> None:
        await self._server.wait_for_termination()
