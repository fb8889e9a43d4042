"""The container: everything one process built, and its one lifecycle. `start`
brings the parts up, `stop` is the graceful part of the shutdown, `close` releases
whatever `start` reached; the shutdown order is written out in these two."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from post_management.adapters.consul import Registrar
from post_management.adapters.db.telemetry import DatabaseCollector
from post_management.adapters.local import EmbeddedPostgres
from post_management.adapters.x.client import TweepyXApi
from post_management.bootstrap.grpc_services import grpc_services
from post_management.bootstrap.infrastructure import Infrastructure, open_infrastructure
from post_management.bootstrap.jobs import Jobs, jobs
from post_management.bootstrap.secrets import resolve_secrets, token_codec
from post_management.bootstrap.serving import service_registrar, start_envoy, start_telemetry
from post_management.bootstrap.settings import Settings, x_mode
from post_management.domain.auth import Role
from post_management.entrypoints.envoy_process import EnvoyProcess
from post_management.entrypoints.grpc.server import GrpcServer, Services
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.services.publishing.engine import Dispatcher

if TYPE_CHECKING:
    from x_emulator.server import EmulatorThread

log = logging.getLogger(__name__)
# The user whose token the embedded local defaults print at start.
LOCAL_USER = "local-user"


def build(settings: Settings, *, run_migrations: bool = True) -> Container:
    """Infrastructure first, then the jobs on it, then the services the gRPC server
    serves. Nothing runs yet: `Container.start` starts it."""
    mode = x_mode(settings)  # refuses an unsafe X choice before anything starts
    secrets = resolve_secrets(settings)
    infrastructure = open_infrastructure(settings, secrets, mode, run_migrations=run_migrations)
    ticks = jobs(settings, infrastructure)
    tokens = token_codec(settings, secrets)
    return Container(
        settings,
        infrastructure,
        ticks,
        grpc_services(settings, infrastructure, ticks, tokens),
        tokens,
        DatabaseCollector(infrastructure.engine).attach(),
    )


@dataclass
class Container:
    settings: Settings
    infrastructure: Infrastructure
    jobs: Jobs
    services: Services
    tokens: TokenCodec
    database_metrics: DatabaseCollector
    # What `start` brought up (serve only).
    server: GrpcServer | None = None
    registrar: Registrar | None = None
    envoy: EnvoyProcess | None = None

    @property
    def engine(self) -> Engine:
        return self.infrastructure.engine

    @property
    def x_api(self) -> TweepyXApi:
        return self.infrastructure.x_api

    @property
    def dispatcher(self) -> Dispatcher:
        return self.jobs.dispatcher

    @property
    def components(self) -> dict[str, str]:
        return self.infrastructure.components

    @property
    def embedded_database(self) -> EmbeddedPostgres | None:
        return self.infrastructure.embedded_database

    @property
    def emulator(self) -> EmulatorThread | None:
        return self.infrastructure.emulator

    async def start(self, *, grpc: bool = True, envoy: bool = True) -> None:
        """Telemetry; for `serve` the gRPC server, its Consul registration and Envoy
        (unless --no-envoy); then the jobs. A worker (grpc=False) runs the jobs only."""
        settings, host = self.settings, self.settings.server.grpc_host
        start_telemetry(settings)
        if grpc:
            self.server = GrpcServer(
                self.services, host, settings.server.grpc_port, settings.server.limits()
            )
            await self.server.start()
            print(f"gRPC listening on {host}:{self.server.port}", flush=True)
            self.registrar = service_registrar(settings, self.server.port)
            if self.registrar is not None:
                self.registrar.start()
            if envoy:
                self.envoy = await asyncio.to_thread(start_envoy, settings, self.server.port)
                print(f"REST (Envoy) listening on {self.envoy.base_url}", flush=True)
        self.jobs.start()
        if grpc:
            self._announce()

    def _announce(self) -> None:
        if self.emulator is not None:
            print(f"X API: local emulator at {self.emulator.base_url}", flush=True)
        if self.embedded_database is not None:
            print(
                f"database: embedded PostgreSQL under {self.settings.database.data_dir}/postgres",
                flush=True,
            )
        # A token in a deployment's log would be a credential for anyone who reads it:
        # only the embedded local defaults (a developer's `make run`) print one.
        if self.settings.local_defaults:
            token = self.tokens.mint(LOCAL_USER, Role.USER, timedelta(hours=1))
            print(f"token for user {LOCAL_USER!r} (1 hour): {token}", flush=True)

    async def stop(self) -> None:
        """The graceful part of the shutdown, in this order: leave discovery, so that
        callers stop picking this replica; stop claiming, while posts already handed
        to X finish and are recorded, and the relay lets go; then the gRPC server
        turns NOT_SERVING and lets calls in flight finish within the grace."""
        grace = self.settings.server.shutdown_grace_seconds
        if self.server is not None:
            log.info("shutting down: draining for up to %.0fs", grace)
        if self.registrar is not None:
            await self.registrar.stop()
        await asyncio.to_thread(self.jobs.stop)
        if self.server is not None:
            await self.server.stop(grace)

    async def close(self) -> None:
        """Releases whatever `start` reached, after `stop` or after a failure: the
        Consul entry (a no-op after a clean stop); Envoy last of the serving parts,
        so calls it already forwarded can finish; then the adapters, the database
        last."""
        if self.registrar is not None:
            await self.registrar.stop()
        if self.envoy is not None:
            await asyncio.to_thread(self.envoy.stop)
        await asyncio.to_thread(self._release_adapters)

    def _release_adapters(self) -> None:
        self.database_metrics.detach()
        if self.jobs.relay is not None:
            self.jobs.relay.close()
        self.jobs.dispatcher.close()
        self.infrastructure.x_api.close()
        if self.infrastructure.emulator is not None:
            self.infrastructure.emulator.stop()
        self.infrastructure.engine.dispose()
        if self.infrastructure.embedded_database is not None:
            self.infrastructure.embedded_database.stop()
