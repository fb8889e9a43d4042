"""Database telemetry: committed events, and gauges read from PostgreSQL on scrape.

The scrape-time queries are cheap (grouped counts over the queue's states, the
oldest unsent outbox row by the partial index), bounded by a statement timeout,
and cached for a few seconds so several scrapers do not multiply the load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from post_management.domain.events import DomainEvent, PostScheduled
from post_management.observability import metrics, tracing

log = logging.getLogger(__name__)

QUEUE_STATES = ("SCHEDULED", "PUBLISHING", "DEAD_LETTERED")
# Due windows of SCHEDULED posts; other states report window "all".
WINDOWS = ("due", "next_5m", "next_1h", "next_24h", "later")

_QUEUE = text(
    """
    SELECT state,
           CASE WHEN state <> 'SCHEDULED' THEN 'all'
                WHEN due_at <= now() THEN 'due'
                WHEN due_at <= now() + interval '5 minutes' THEN 'next_5m'
                WHEN due_at <= now() + interval '1 hour' THEN 'next_1h'
                WHEN due_at <= now() + interval '1 day' THEN 'next_24h'
                ELSE 'later' END AS due_window,
           count(*) AS n,
           EXTRACT(EPOCH FROM now() - min(due_at)) AS oldest_age
    FROM posts
    WHERE state IN ('SCHEDULED', 'PUBLISHING', 'DEAD_LETTERED')
    GROUP BY 1, 2
    """
)
_OUTBOX_COUNT = text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
_OUTBOX_OLDEST = text(
    "SELECT EXTRACT(EPOCH FROM now() - occurred_at) FROM outbox"
    " WHERE sent_at IS NULL ORDER BY id LIMIT 1"
)


def committed(events: Sequence[DomainEvent]) -> None:
    """Count events whose transaction committed."""
    for event in events:
        metrics.EVENTS_COMMITTED.labels(event.event_type).inc()
        if isinstance(event, PostScheduled):
            metrics.POSTS_SCHEDULED.labels(metrics.priority_label(event.priority)).inc()


class DatabaseCollector(Collector):
    def __init__(
        self, engine: Engine, *, min_interval: float = 5.0, timeout_ms: int = 2000
    ) -> None:
        self._engine = engine
        self._min_interval = min_interval
        self._timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._cached_at = float("-inf")

    def attach(self) -> DatabaseCollector:
        metrics.DATABASE.attach(self)
        return self

    def detach(self) -> None:
        metrics.DATABASE.detach(self)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._cached_at >= self._min_interval:
                self._cached = self._query()
                self._cached_at = time.monotonic()
            cached = list(self._cached)
        return [*cached, *self._pool()]

    def _query(self) -> list[Metric]:
        up = GaugeMetricFamily(
            metrics.PREFIX + "db_collector_up",
            "1 when the last scrape-time database query succeeded.",
        )
        try:
            with self._engine.begin() as connection:
                connection.execute(text(f"SET LOCAL statement_timeout = {int(self._timeout_ms)}"))
                queue_rows = connection.execute(_QUEUE).all()
                backlog = int(connection.execute(_OUTBOX_COUNT).scalar_one())
                oldest = connection.execute(_OUTBOX_OLDEST).scalar()
        except SQLAlchemyError as exc:
            log.warning("metrics: database query failed: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_queue_metrics(queue_rows), *_outbox_metrics(backlog, oldest)]

    def _pool(self) -> list[Metric]:
        pool = self._engine.pool
        if not isinstance(pool, QueuePool):
            return []
        return _pool_metrics(pool)


def exported_names() -> set[str]:
    """Names of the gauges this module exports (for checks of dashboards and alerts)."""
    families = [*_queue_metrics(()), *_outbox_metrics(0, None), *_pool_metrics(None)]
    return {family.name for family in families} | {metrics.PREFIX + "db_collector_up"}


def _pool_metrics(pool: QueuePool | None) -> list[Metric]:
    connections = GaugeMetricFamily(
        metrics.PREFIX + "db_pool_connections",
        "Connections of the SQLAlchemy pool by state (checked_out, idle, overflow).",
        labels=["state"],
    )
    size = GaugeMetricFamily(
        metrics.PREFIX + "db_pool_size", "Configured size of the SQLAlchemy pool."
    )
    if pool is not None:
        connections.add_metric(["checked_out"], pool.checkedout())
        connections.add_metric(["idle"], pool.checkedin())
        connections.add_metric(["overflow"], max(pool.overflow(), 0))
        size.add_metric([], pool.size())
    return [connections, size]


def _queue_metrics(rows: Sequence[Any]) -> list[Metric]:
    depth = GaugeMetricFamily(
        metrics.PREFIX + "queue_depth",
        "Posts by state and, for SCHEDULED, due window (due, next_5m, next_1h, next_24h, later).",
        labels=["state", "window"],
    )
    counts = {("SCHEDULED", window): 0 for window in WINDOWS}
    counts |= {(state, "all"): 0 for state in QUEUE_STATES if state != "SCHEDULED"}
    oldest_due = 0.0
    for row in rows:
        counts[(row.state, row.due_window)] = int(row.n)
        if row.due_window == "due" and row.oldest_age is not None:
            oldest_due = max(float(row.oldest_age), 0.0)
    for (state, window), count in sorted(counts.items()):
        depth.add_metric([state, window], count)
    overdue = GaugeMetricFamily(
        metrics.PREFIX + "queue_oldest_due_age_seconds",
        "How long the oldest due SCHEDULED post has been waiting (0 when none is due).",
    )
    overdue.add_metric([], oldest_due)
    return [depth, overdue]


def _outbox_metrics(backlog: int, oldest: Any) -> list[Metric]:
    rows = GaugeMetricFamily(
        metrics.PREFIX + "outbox_backlog", "Outbox rows not yet relayed to Kafka."
    )
    rows.add_metric([], backlog)
    lag = GaugeMetricFamily(
        metrics.PREFIX + "outbox_oldest_unsent_age_seconds",
        "Age of the oldest unrelayed outbox row: the relay's lag (0 when none waits).",
    )
    lag.add_metric([], max(float(oldest), 0.0) if oldest is not None else 0.0)
    return [rows, lag]


class UnitOfWorkTrace:
    """The span and timing of one unit of work, from its transaction's start to its end."""

    def __init__(self) -> None:
        self._span = tracing.tracer.start_as_current_span(
            "db unit_of_work", attributes={"db.system": "postgresql"}
        )
        self._current = self._span.__enter__()
        self._started = time.perf_counter()
        self._outcome = "rollback"

    def committed(self, events: Sequence[DomainEvent]) -> None:
        """After a successful commit: count its events."""
        self._outcome = "commit"
        committed(events)

    def finish(self, error: BaseException | None) -> None:
        outcome = "error" if error is not None else self._outcome
        metrics.DB_UNIT_OF_WORK.labels(outcome).observe(time.perf_counter() - self._started)
        # A trace then tells a unit of work that wrote from one that was rolled back.
        self._current.set_attribute("db.transaction.outcome", outcome)
        if error is not None:
            self._span.__exit__(type(error), error, error.__traceback__)
        else:
            self._span.__exit__(None, None, None)


_HEALTH = text(
    """
    SELECT
      (SELECT count(*) FROM posts WHERE state = 'SCHEDULED') AS scheduled,
      (SELECT count(*) FROM posts WHERE state = 'SCHEDULED' AND due_at <= now()) AS due,
      (SELECT count(*) FROM posts WHERE state = 'PUBLISHING') AS publishing,
      (SELECT count(*) FROM posts WHERE state = 'DEAD_LETTERED') AS dead_lettered,
      (SELECT min(due_at) FROM posts WHERE state = 'SCHEDULED' AND due_at <= now())
        AS oldest_due,
      (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS backlog,
      (SELECT occurred_at FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1)
        AS oldest_unsent,
      now() AS now
    """
)


@dataclass(frozen=True)
class HealthFigures:
    """The queue and the outbox as the database sees them now."""

    scheduled: int
    due: int
    publishing: int
    dead_lettered: int
    oldest_due: datetime | None
    backlog: int
    oldest_unsent: datetime | None
    now: datetime


def health_figures(engine: Engine, *, timeout_ms: int = 2000) -> HealthFigures:
    """One round trip under a statement timeout (raises SQLAlchemyError)."""
    with engine.begin() as connection:
        connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        row = connection.execute(_HEALTH).one()
    return HealthFigures(
        scheduled=int(row.scheduled),
        due=int(row.due),
        publishing=int(row.publishing),
        dead_lettered=int(row.dead_lettered),
        oldest_due=row.oldest_due,
        backlog=int(row.backlog),
        oldest_unsent=row.oldest_unsent,
        now=row.now,
    )
