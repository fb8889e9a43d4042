"""The ticks and the outbox relay: the publishing engine (dispatch, reconcile), the
outbox purge, the metrics collector, retention and removals on X."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from post_management.adapters.db.analytics_repository import AdvisoryLeaderLock
from post_management.adapters.db.media_repository import SqlMediaUploads
from post_management.adapters.db.outbox_housekeeping import purge_unrelayed
from post_management.adapters.kafka.relay import OutboxRelay
from post_management.adapters.rate_limit import RedisRateLimiter
from post_management.bootstrap.event_loops import loop_factory
from post_management.bootstrap.infrastructure import Infrastructure
from post_management.bootstrap.settings import Settings
from post_management.entrypoints.jobs.timer import Tick, Timer
from post_management.observability import metrics
from post_management.services.analytics.growth import GrowthCollector
from post_management.services.analytics.metrics_collection import MetricsCollector
from post_management.services.analytics.trend_alerts import TrendDetector
from post_management.services.privacy.privacy import RemovalJob, RetentionJob
from post_management.services.publishing.engine import (
    Dispatcher,
    EngineSettings,
    Publisher,
    Reconciler,
)


@dataclass
class Jobs:
    timer: Timer
    dispatcher: Dispatcher
    # PublishNow hands its post to the same publisher as the dispatcher.
    publisher: Publisher
    engine_settings: EngineSettings
    # None: Kafka unset, the rows stay in the outbox.
    relay: OutboxRelay | None
    _relay_stop: threading.Event = field(default_factory=threading.Event)
    _relay_thread: threading.Thread | None = None

    def start(self) -> None:
        self.timer.start()
        if self.relay is not None:
            self._relay_thread = threading.Thread(
                target=self.relay.run_forever, args=(self._relay_stop,), name="outbox-relay"
            )
            self._relay_thread.start()

    def stop(self) -> None:
        """No new claims; publishes already under way finish; the relay lets go."""
        self.timer.stop()
        self.dispatcher.drain()
        self._relay_stop.set()
        if self._relay_thread is not None:
            self._relay_thread.join(timeout=30)


def jobs(settings: Settings, infrastructure: Infrastructure) -> Jobs:
    engine_config = settings.publishing.engine(settings.x.x_call_seconds)
    clock = infrastructure.database_clock
    queue, meter, x_api = infrastructure.queue, infrastructure.meter, infrastructure.x_api
    publisher = Publisher(
        queue,
        x_api,
        infrastructure.limiter,
        clock,
        engine_config,
        media=SqlMediaUploads(infrastructure.engine),
        meter=meter,
        poster=infrastructure.x_poster,
        limiter_blocks=isinstance(infrastructure.limiter, RedisRateLimiter),
    )
    # The publishing loop wakes per X answer and per batch: uvloop's costs less there too.
    dispatcher = Dispatcher(queue, publisher, clock, engine_config, loop_factory())
    reconciler = Reconciler(queue, x_api, engine_config, meter)
    relay = outbox_relay(settings, infrastructure.engine)
    ticks = []
    publishing = settings.publishing
    if publishing.dispatcher_enabled:
        ticks += [
            Tick("dispatch", dispatcher.tick, publishing.dispatch_interval_seconds),
            Tick("reconcile", reconciler.tick, publishing.reconcile_interval_seconds),
        ]
    ticks += outbox_ticks(settings, infrastructure.engine, relay)
    ticks += analytics_ticks(settings, infrastructure)
    ticks += privacy_ticks(settings, infrastructure)
    return Jobs(Timer(ticks), dispatcher, publisher, engine_config, relay)


def outbox_relay(settings: Settings, engine: Engine) -> OutboxRelay | None:
    """Kafka unset: rows are kept in the outbox and nothing relays them."""
    if not settings.kafka.kafka_bootstrap_servers:
        return None
    return OutboxRelay(engine, settings.kafka.servers(), settings.kafka.relay())


def outbox_ticks(settings: Settings, engine: Engine, relay: OutboxRelay | None) -> list[Tick]:
    """The relay purges rows it sent; without Kafka, unsent rows past the outbox
    retention are purged on the retention interval, so the outbox stays bounded."""
    if relay is not None:
        return [Tick("outbox-purge", relay.purge, 3600)]
    retention = settings.kafka.outbox_retention()
    return [
        Tick(
            "outbox-purge-unrelayed",
            lambda: purge_unrelayed(engine, retention),
            settings.retention.retention_interval_seconds,
        )
    ]


def analytics_ticks(settings: Settings, infrastructure: Infrastructure) -> list[Tick]:
    """The metrics collector: snapshots of published posts, follower growth, trends."""
    uow, x_api = infrastructure.uow, infrastructure.x_api
    # The jobs only drop answers (the request path reads and counts them).
    clock, cache = infrastructure.clock, infrastructure.shared_cache
    trends = TrendDetector(uow, clock, cache)
    collector = MetricsCollector(
        uow,
        x_api,
        clock,
        cache,
        AdvisoryLeaderLock(infrastructure.engine),
        growth=GrowthCollector(uow, x_api, clock, trends=trends),
        trends=trends,
    )
    refresh = metrics.counting_refreshes(collector.tick)
    return [Tick("metrics", refresh, settings.analytics.metrics_interval_seconds)]


def privacy_ticks(settings: Settings, infrastructure: Infrastructure) -> list[Tick]:
    """Retention's purges, and erased users' posts deleted on X."""
    store, clock = infrastructure.privacy_store, infrastructure.clock
    every = settings.retention
    retention = RetentionJob(store, clock, settings.retention.periods())
    removals = RemovalJob(store, infrastructure.x_api, clock)
    return [
        Tick("retention", retention.tick, every.retention_interval_seconds),
        Tick("x-removals", removals.tick, every.x_removal_interval_seconds),
    ]
