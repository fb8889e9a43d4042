"""Every Prometheus instrument of the service, in one place (docs/observability.md).

Instruments live in the default registry, which also carries the process and
platform collectors. Labels are bounded: no post, account or user ids.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

PREFIX = "post_management_"
# *_created series double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds; from a cache hit to a slow X call.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds late; the SLO is "within a minute of the due time".
LATENESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)

POSTS_SCHEDULED = Counter(
    PREFIX + "posts_scheduled_total", "Posts scheduled (committed), by priority.", ["priority"]
)
POSTS_PUBLISHED = Counter(
    PREFIX + "posts_published_total",
    "Posts published on X (including ones adopted after a lost answer), by priority.",
    ["priority"],
)
POSTS_FAILED = Counter(
    PREFIX + "posts_failed_total", "Posts that failed permanently, by priority.", ["priority"]
)
POSTS_DEAD_LETTERED = Counter(
    PREFIX + "posts_dead_lettered_total",
    "Posts dead-lettered after their attempts ran out, by priority.",
    ["priority"],
)
PUBLISH_SETTLEMENTS = Counter(
    PREFIX + "publish_settlements_total",
    "Settled publish attempts by outcome (published, adopted, failed, retry, "
    "rate_limited, unknown, account_suspended, dead_lettered).",
    ["outcome"],
)
PUBLISH_LATENESS = Histogram(
    PREFIX + "publish_lateness_seconds",
    "Publish time minus due time of published posts, by priority.",
    ["priority"],
    buckets=LATENESS_BUCKETS,
)
DISPATCH_BATCH = Histogram(
    PREFIX + "dispatcher_batch_size",
    "Posts claimed per dispatcher tick.",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200),
)
DISPATCH_TICK = Histogram(
    PREFIX + "dispatcher_tick_seconds", "Duration of a dispatcher tick.", buckets=LATENCY_BUCKETS
)
RECONCILED = Counter(PREFIX + "reconciler_claims_total", "Posts taken up by the reconciler.")
RATE_LIMIT_WAITS = Counter(
    PREFIX + "rate_limit_waits_total",
    "Publishes put back to wait for a rate-limit budget (scope user or app).",
    ["scope"],
)

X_SPEND = Counter(
    PREFIX + "x_spend_usd_total",
    "What the service's X calls cost at X's pay-per-use prices, by call kind "
    "(docs/x-spend.md); no per-account label: GetXSpend reports per account.",
    ["kind"],
)

X_REQUESTS = Counter(
    PREFIX + "x_api_requests_total",
    "HTTP requests to the X API by endpoint (method and path template) and status "
    "(HTTP code, or 'error' when no answer came).",
    ["endpoint", "status"],
)
X_LATENCY = Histogram(
    PREFIX + "x_api_request_seconds",
    "Duration of X API requests by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
X_RATE_REMAINING = Gauge(
    PREFIX + "x_api_rate_limit_remaining",
    "x-rate-limit-remaining of the endpoint's latest answer (any account).",
    ["endpoint"],
)
X_RATE_RESET = Gauge(
    PREFIX + "x_api_rate_limit_reset_timestamp_seconds",
    "x-rate-limit-reset (unix time) of the endpoint's latest answer (any account).",
    ["endpoint"],
)

EVENTS_COMMITTED = Counter(
    PREFIX + "events_total", "Domain events committed to the outbox, by type.", ["event_type"]
)
OUTBOX_RELAYED = Counter(PREFIX + "outbox_relayed_total", "Outbox rows relayed to Kafka.")
OUTBOX_RELAY_FAILURES = Counter(
    PREFIX + "outbox_relay_failures_total", "Relay batches that failed (Kafka or database)."
)
OUTBOX_UNRELAYED_PURGED = Counter(
    PREFIX + "outbox_unrelayed_purged_total",
    "Unsent outbox rows deleted after the outbox retention because Kafka is not configured.",
)
OUTBOX_RELAY_BATCH = Histogram(
    PREFIX + "outbox_relay_batch_seconds", "Duration of a relay batch.", buckets=LATENCY_BUCKETS
)
OUTBOX_RELAY_CONFIGURED = Gauge(
    PREFIX + "outbox_relay_configured", "1 when this process runs an outbox relay."
)
OUTBOX_RELAY_LEADER = Gauge(
    PREFIX + "outbox_relay_leader", "1 while this process holds the relay's advisory lock."
)

METRICS_REFRESHED = Counter(
    PREFIX + "metrics_refreshed_total", "Posts whose metrics were refreshed from X."
)
METRICS_REFRESH_TICKS = Counter(
    PREFIX + "metrics_refresh_ticks_total", "Runs of the metrics refresher (any replica)."
)

REDIS_DEGRADED = Gauge(
    PREFIX + "redis_degraded",
    "1 while a Redis-backed component (cache, rate_limiter) runs on its in-process "
    "fallback because Redis is unreachable; 0 when shared through Redis.",
    ["component"],
)

DB_UNIT_OF_WORK = Histogram(
    PREFIX + "db_unit_of_work_seconds",
    "Duration of database units of work by outcome (commit, rollback, error).",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)


def counting_refreshes(tick: Callable[[], int]) -> Callable[[], int]:
    """Wrap the metrics refresher's tick, which returns how many posts it refreshed."""

    def counted() -> int:
        refreshed = tick()
        METRICS_REFRESH_TICKS.inc()
        METRICS_REFRESHED.inc(refreshed)
        return refreshed

    return counted


def priority_label(priority: object) -> str:
    """`Priority.HIGH` -> "high"; "PRIORITY_HIGH" -> "high"."""
    name = getattr(priority, "name", None) or str(priority)
    return name.removeprefix("PRIORITY_").lower()


class _Slot(Collector):
    """One registration for collectors that come and go with a composition root.

    The default registry refuses a metric name twice, but tests build several
    containers in one process; the newest attached collector answers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attached: list[Collector] = []

    def attach(self, collector: Collector) -> None:
        with self._lock:
            self._attached.append(collector)

    def detach(self, collector: Collector) -> None:
        with self._lock:
            if collector in self._attached:
                self._attached.remove(collector)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            current = self._attached[-1] if self._attached else None
        return current.collect() if current is not None else ()

    def describe(self) -> Iterable[Metric]:
        # No up-front description: the registry then skips its duplicate check
        # against these names, which only exist while a collector is attached.
        return ()


DATABASE = _Slot()
REGISTRY.register(DATABASE)


def serve(host: str, port: int) -> int | None:
    """Serve /metrics on a daemon thread; the port bound, or None when it is taken.

    A taken port is logged, not fatal: the service itself still works, and the
    scrape target going down is what alerting sees.
    """
    try:
        server, _ = start_http_server(port, addr=host)
    except OSError as exc:
        log.error("metrics endpoint not started on %s:%d: %s", host, port, exc)
        return None
    return int(server.server_port)
