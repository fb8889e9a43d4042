"""ServiceInfoService: /health, /ready and /info over REST (through Envoy)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from xmp.posts.v1 import service_info_service_pb2 as info_pb2
from xmp.posts.v1 import service_info_service_pb2_grpc as info_grpc

from post_management.domain.errors import Unavailable
from post_management.domain.reasons import Reason
from post_management.entrypoints.grpc.mapping import timestamp

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class ComponentCheck:
    name: str
    ok: bool
    detail: str = ""


class CachedReadiness:
    """The last result of the readiness checks, recorded by the health monitor;
    none yet, or one older than `max_age` seconds, counts as not ready."""

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._checks: list[ComponentCheck] | None = None
        self._at = 0.0

    def record(self, checks: list[ComponentCheck]) -> None:
        self._checks, self._at = list(checks), time.monotonic()

    def __call__(self) -> list[ComponentCheck]:
        if self._checks is None:
            return [ComponentCheck("readiness", False, "not checked yet")]
        age = time.monotonic() - self._at
        if age > self._max_age:
            return [ComponentCheck("readiness", False, f"last checked {age:.0f} s ago")]
        return self._checks


@dataclass(frozen=True)
class HealthReport:
    """What GET /health?detail=true reports (a figure is None when unknown)."""

    database: ComponentCheck
    redis: ComponentCheck
    kafka_configured: bool
    x_target: str
    x_reachable: bool
    x_last_error: str = ""
    x_last_error_at: datetime | None = None
    outbox_backlog: int = 0
    oldest_unsent_age: timedelta | None = None
    scheduled: int = 0
    due: int = 0
    publishing: int = 0
    dead_lettered: int = 0
    oldest_due: datetime | None = None
    oldest_due_age: timedelta | None = None


@dataclass(frozen=True)
class BuildInfo:
    name: str
    version: str
    git_commit: str
    started_at: datetime
    components: dict[str, str] = field(default_factory=dict)


class ServiceInfoServicer(info_grpc.ServiceInfoServiceServicer):
    def __init__(
        self,
        info: BuildInfo,
        readiness: Callable[[], list[ComponentCheck]],
        is_serving: Callable[[], bool],
        health_report: Callable[[], HealthReport] | None = None,
    ) -> None:
        self._info = info
        self._readiness = readiness
        self._is_serving = is_serving
        self._health_report = health_report

    async def GetHealth(
        self, request: info_pb2.GetHealthRequest, context: Context
    ) -> info_pb2.HealthStatus:
        if not self._is_serving():
            raise Unavailable("the service is shutting down", reason=Reason.NOT_SERVING)
        if not request.detail or self._health_report is None:
            return info_pb2.HealthStatus(status="SERVING")
        report = await asyncio.to_thread(self._health_report)
        return info_pb2.HealthStatus(status="SERVING", details=_details(report))

    async def GetReadiness(
        self, request: info_pb2.GetReadinessRequest, context: Context
    ) -> info_pb2.ReadinessStatus:
        checks = self._readiness()  # a cached result: no database round trip
        failing = [check for check in checks if not check.ok]
        if failing or not self._is_serving():
            names = ", ".join(check.name for check in failing) or "shutdown"
            raise Unavailable(
                f"not ready: {names}",
                reason=Reason.NOT_READY,
                metadata={check.name: check.detail for check in failing},
            )
        return info_pb2.ReadinessStatus(
            ready=True,
            components=[
                info_pb2.ComponentStatus(name=check.name, ok=check.ok, detail=check.detail)
                for check in checks
            ],
        )

    async def GetInfo(
        self, request: info_pb2.GetInfoRequest, context: Context
    ) -> info_pb2.ServiceInfo:
        uptime = Duration()
        uptime.FromTimedelta(datetime.now(UTC) - self._info.started_at)
        return info_pb2.ServiceInfo(
            name=self._info.name,
            version=self._info.version,
            git_commit=self._info.git_commit,
            start_time=timestamp(self._info.started_at),
            uptime=uptime,
            components=self._info.components,
        )


def _component(check: ComponentCheck) -> info_pb2.ComponentStatus:
    return info_pb2.ComponentStatus(name=check.name, ok=check.ok, detail=check.detail)


def _duration(value: timedelta | None) -> Duration | None:
    if value is None:
        return None
    duration = Duration()
    duration.FromTimedelta(max(value, timedelta(0)))
    return duration


def _details(report: HealthReport) -> info_pb2.HealthDetails:
    return info_pb2.HealthDetails(
        database=_component(report.database),
        redis=_component(report.redis),
        kafka_relay=info_pb2.KafkaRelayStatus(
            configured=report.kafka_configured,
            backlog=report.outbox_backlog,
            oldest_unsent_age=_duration(report.oldest_unsent_age),
        ),
        x_api=info_pb2.XApiStatus(
            target=report.x_target,
            reachable=report.x_reachable,
            last_error=report.x_last_error,
            last_error_time=timestamp(report.x_last_error_at),
        ),
        queue=info_pb2.PublishQueueStatus(
            scheduled=report.scheduled,
            due=report.due,
            publishing=report.publishing,
            dead_lettered=report.dead_lettered,
            oldest_due_time=timestamp(report.oldest_due),
            oldest_due_age=_duration(report.oldest_due_age),
        ),
    )
