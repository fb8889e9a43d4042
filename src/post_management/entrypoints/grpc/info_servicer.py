"""ServiceInfoService: /health, /ready and /info over REST (through Envoy)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from xmp.posts.v1 import service_info_service_pb2 as info_pb2
from xmp.posts.v1 import service_info_service_pb2_grpc as info_grpc

from post_management.domain.errors import Unavailable
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
    ) -> None:
        self._info = info
        self._readiness = readiness
        self._is_serving = is_serving

    async def GetHealth(
        self, request: info_pb2.GetHealthRequest, context: Context
    ) -> info_pb2.HealthStatus:
        if not self._is_serving():
            raise Unavailable("the service is shutting down", reason="NOT_SERVING")
        return info_pb2.HealthStatus(status="SERVING")

    async def GetReadiness(
        self, request: info_pb2.GetReadinessRequest, context: Context
    ) -> info_pb2.ReadinessStatus:
        checks = self._readiness()  # a cached result: no database round trip
        failing = [check for check in checks if not check.ok]
        if failing or not self._is_serving():
            names = ", ".join(check.name for check in failing) or "shutdown"
            raise Unavailable(
                f"not ready: {names}",
                reason="NOT_READY",
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
