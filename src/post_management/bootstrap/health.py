"""What the probes see: readiness (GetReadiness, the gRPC health service) and the
detailed health report (GET /health?detail=true), each component as this replica
sees it now."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from post_management.adapters.db.engine import ping
from post_management.adapters.db.telemetry import health_figures
from post_management.adapters.shared_cache import FailoverCache
from post_management.adapters.x.reachability import X_REACHABILITY
from post_management.bootstrap.infrastructure import Infrastructure
from post_management.entrypoints.grpc.info_servicer import ComponentCheck, HealthReport
from post_management.ports.analytics import Cache


def readiness(infrastructure: Infrastructure) -> Callable[[], list[ComponentCheck]]:
    engine, shared = infrastructure.engine, infrastructure.shared_cache
    database_mode = infrastructure.components["database"]

    def check() -> list[ComponentCheck]:
        try:
            ping(engine)
        except SQLAlchemyError as exc:
            database = ComponentCheck("database", False, type(exc).__name__)
        else:
            database = ComponentCheck("database", True, database_mode)
        if isinstance(shared, FailoverCache):
            return [database, redis_check(shared)]
        return [database]

    return check


def health_report(
    infrastructure: Infrastructure, *, kafka_configured: bool
) -> Callable[[], HealthReport]:
    def report() -> HealthReport:
        return report_health(
            infrastructure.engine,
            infrastructure.shared_cache,
            kafka_configured=kafka_configured,
            x_target=infrastructure.components["x_api"],
            database_mode=infrastructure.components["database"],
        )

    return report


def redis_check(cache: FailoverCache) -> ComponentCheck:
    """Always ok: without Redis the service keeps working on in-process
    fallbacks, so an outage must not take replicas out of rotation."""
    if cache.probe():
        return ComponentCheck("redis", True, "shared")
    detail = f"degraded: in-process cache and rate limiter ({cache.last_error})"
    return ComponentCheck("redis", True, detail)


def report_health(
    engine: Engine, cache: Cache, *, kafka_configured: bool, x_target: str, database_mode: str
) -> HealthReport:
    """Each component as this replica sees it now (GET /health?detail=true)."""
    if isinstance(cache, FailoverCache):
        redis_state = redis_check(cache)
    else:
        redis_state = ComponentCheck("redis", True, "not configured: in-process cache")
    x = X_REACHABILITY.snapshot()
    common: dict[str, Any] = {
        "redis": redis_state,
        "kafka_configured": kafka_configured,
        "x_target": x_target,
        "x_reachable": x.reachable,
        "x_last_error": x.last_error,
        "x_last_error_at": x.last_error_at,
    }
    try:
        figures = health_figures(engine)
    except SQLAlchemyError as exc:
        return HealthReport(
            database=ComponentCheck("database", False, type(exc).__name__), **common
        )
    return HealthReport(
        database=ComponentCheck("database", True, database_mode),
        outbox_backlog=figures.backlog,
        oldest_unsent_age=figures.now - figures.oldest_unsent if figures.oldest_unsent else None,
        scheduled=figures.scheduled,
        due=figures.due,
        publishing=figures.publishing,
        dead_lettered=figures.dead_lettered,
        oldest_due=figures.oldest_due,
        oldest_due_age=figures.now - figures.oldest_due if figures.oldest_due else None,
        **common,
    )
