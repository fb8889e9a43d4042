"""The composition root: the only place that picks adapters and wires them."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from post_management.adapters.cache import InProcessCache
from post_management.adapters.clock import SystemClock
from post_management.adapters.consul import (
    ConsulAgent,
    Registrar,
    ServiceRegistration,
    advertised_address,
)
from post_management.adapters.crypto import FernetBox, InvalidKeys, derived_key
from post_management.adapters.db.analytics_repository import (
    AdvisoryLeaderLock,
    SqlAnalyticsUnitOfWorkFactory,
)
from post_management.adapters.db.async_reads import AsyncPostReads
from post_management.adapters.db.clock import DatabaseClock
from post_management.adapters.db.engine import make_engine, migrate, ping
from post_management.adapters.db.media_repository import SqlMediaUploads
from post_management.adapters.db.outbox_housekeeping import purge_unrelayed
from post_management.adapters.db.post_writes import on_committed_post_writes
from post_management.adapters.db.privacy_repository import SqlPrivacyStore
from post_management.adapters.db.publish_queue import SqlPublishQueue
from post_management.adapters.db.spend_ledger import SqlSpendMeter
from post_management.adapters.db.telemetry import DatabaseCollector, health_figures
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.kafka.relay import OutboxRelay, RelaySettings
from post_management.adapters.kafka.serialization import ValueFormat
from post_management.adapters.local import EmbeddedPostgres, local_secrets
from post_management.adapters.ml.gradient_boosting import GradientBoostingLearner
from post_management.adapters.profanity import ProfanityCheck
from post_management.adapters.rate_limit import InProcessRateLimiter, RedisRateLimiter
from post_management.adapters.shared_cache import FALLBACK_MAX_TTL_SECONDS, FailoverCache
from post_management.adapters.x.client import TweepyXApi
from post_management.adapters.x.reachability import X_REACHABILITY
from post_management.adapters.x.settings import XClientSettings
from post_management.config import ConfigError, Settings, price_table, x_mode
from post_management.domain.analytics import DEFAULT_BENCHMARKS
from post_management.domain.media import MediaQuota
from post_management.domain.privacy import Pseudonyms
from post_management.domain.publishing import Timing
from post_management.domain.retry import RetryPolicy
from post_management.entrypoints.grpc.analytics_servicer import AnalyticsServices
from post_management.entrypoints.grpc.info_servicer import (
    BuildInfo,
    ComponentCheck,
    HealthReport,
)
from post_management.entrypoints.grpc.rate_limit import RequestBudget
from post_management.entrypoints.grpc.server import ServerLimits, Services
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.entrypoints.jobs.timer import Tick, Timer
from post_management.observability import crash_points, metrics
from post_management.observability.cache import CountedCache
from post_management.observability.metrics import REDIS_DEGRADED
from post_management.ports.analytics import Cache
from post_management.ports.publishing import RateLimiter
from post_management.services.accounts.accounts import AccountService
from post_management.services.analytics.analytics import AnalyticsQueries, AnalyticsSettings
from post_management.services.analytics.campaigns import CampaignService
from post_management.services.analytics.engagement_prediction import EngagementPredictor
from post_management.services.analytics.growth import AccountGrowthQueries, GrowthCollector
from post_management.services.analytics.metrics_collection import MetricsCollector
from post_management.services.analytics.optimal_times import BestFreeTime
from post_management.services.analytics.trend_alerts import TrendDetector
from post_management.services.analytics.webhooks import XWebhooks
from post_management.services.analytics.x_spend import XSpendQueries
from post_management.services.posts.cache import PostCache
from post_management.services.posts.content_screening import ContentScreen
from post_management.services.posts.media import MediaService
from post_management.services.posts.posts import PostService
from post_management.services.posts.queries import PostQueries
from post_management.services.privacy.privacy import (
    PrivacyService,
    RemovalJob,
    RetentionJob,
    RetentionPeriods,
)
from post_management.services.publishing.commands import PublishCommands
from post_management.services.publishing.engine import (
    Dispatcher,
    EngineSettings,
    Publisher,
    Reconciler,
)
from post_management.services.scheduling.listing import AsyncScheduledListing
from post_management.services.scheduling.scheduling import SchedulingService
from post_management.services.shared import pagination

if TYPE_CHECKING:  # the emulator is imported only when X_MODE picks it
    from x_emulator.server import EmulatorThread

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    tokens: TokenCodec
    services: Services
    timer: Timer
    dispatcher: Dispatcher
    x_api: TweepyXApi
    embedded_database: EmbeddedPostgres | None = None
    emulator: EmulatorThread | None = None
    relay: OutboxRelay | None = None
    components: dict[str, str] = field(default_factory=dict)
    _relay_stop: threading.Event = field(default_factory=threading.Event)
    _relay_thread: threading.Thread | None = None
    database_metrics: DatabaseCollector | None = None

    def start_jobs(self) -> None:
        self.timer.start()
        if self.relay is not None:
            self._relay_thread = threading.Thread(
                target=self.relay.run_forever, args=(self._relay_stop,), name="outbox-relay"
            )
            self._relay_thread.start()

    def stop_jobs(self) -> None:
        """No new claims; publishes already under way finish; the relay lets go."""
        self.timer.stop()
        self.dispatcher.drain()
        self._relay_stop.set()
        if self._relay_thread is not None:
            self._relay_thread.join(timeout=30)

    def close(self) -> None:
        if self.database_metrics is not None:
            self.database_metrics.detach()
        if self.relay is not None:
            self.relay.close()
        self.x_api.close()
        if self.emulator is not None:
            self.emulator.stop()
        self.engine.dispose()
        if self.embedded_database is not None:
            self.embedded_database.stop()


@dataclass(frozen=True)
class Secrets:
    jwt_secret: str
    encryption_keys: str
    hmac_secret: str


def resolve_secrets(settings: Settings) -> Secrets:
    """Configured secrets win; the rest are generated once into DATA_DIR."""
    configured = {
        "jwt_secret": settings.jwt_secret,
        "encryption_keys": settings.encryption_keys,
        "hmac_secret": settings.hmac_secret,
    }
    generated: dict[str, str] = {}
    if any(value is None for value in configured.values()):
        generated = local_secrets(settings.data_dir)
    values = {
        name: value.get_secret_value() if value is not None else generated[name]
        for name, value in configured.items()
    }
    return Secrets(**values)


def token_codec(settings: Settings, secrets: Secrets | None = None) -> TokenCodec:
    secrets = secrets or resolve_secrets(settings)
    return TokenCodec(
        secrets.jwt_secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        max_lifetime=timedelta(minutes=settings.token_max_lifetime_minutes),
    )


def git_commit() -> str:
    if commit := os.environ.get("GIT_COMMIT"):
        return commit
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            cwd=Path(__file__).parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _version() -> str:
    try:
        return metadata.version("post-management")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def webhook_secret(settings: Settings) -> str | None:
    """X signs webhooks with the app's consumer secret. Unset: the webhook routes are
    off (no public fallback that anyone could sign with)."""
    secret = settings.twitter_consumer_secret
    return secret.get_secret_value() if secret is not None else None


def x_client(settings: Settings) -> tuple[TweepyXApi, EmulatorThread | None]:
    """The X chosen by X_MODE: the real one, or the emulator (bundled, or the one at
    X_API_BASE_URL)."""
    emulator = None
    base_url = settings.x_api_base_url
    if x_mode(settings) == "emulator" and base_url is None:
        from x_emulator.server import EmulatorThread  # only when the emulator is chosen

        emulator = EmulatorThread()
        base_url = emulator.base_url

    def secret(value: SecretStr | None, default: str) -> str:
        return value.get_secret_value() if value is not None else default

    client = TweepyXApi(
        XClientSettings(
            consumer_key=secret(settings.twitter_consumer_key, "emulator"),
            consumer_secret=secret(settings.twitter_consumer_secret, "emulator"),
            bearer_token=secret(settings.twitter_bearer_token, "emulator"),
            base_url=base_url,
            connect_timeout=settings.x_connect_timeout_seconds,
            read_timeout=settings.x_timeout_seconds,
        )
    )
    return client, emulator


def server_limits(settings: Settings) -> ServerLimits:
    return ServerLimits(
        max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        max_receive_bytes=settings.max_upload_bytes,
    )


def redis_client(url: SecretStr) -> redis.Redis:
    """Short timeouts and no client retries: callers fall back in process at once
    rather than stall requests while Redis is down."""
    return redis.Redis.from_url(
        url.get_secret_value(),
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )


def rate_limiter(settings: Settings) -> RateLimiter:
    if settings.redis_url is None:
        return InProcessRateLimiter()
    return RedisRateLimiter(redis_client(settings.redis_url))


def shared_cache(settings: Settings) -> Cache:
    """One cache for every cached read (posts, analytics): Redis shared by the
    replicas, in process while Redis is down or when it is not configured."""
    if settings.redis_url is None:
        return InProcessCache()
    return FailoverCache(redis_client(settings.redis_url), InProcessCache)


def post_cache(settings: Settings, engine: Engine, cache: Cache) -> PostCache | None:
    """GetPost answers, dropped by every committed post write (docs/integration.md)."""
    if settings.post_cache_ttl_seconds <= 0:
        return None
    ttl = settings.post_cache_ttl_seconds
    if not isinstance(cache, FailoverCache):
        # Only in process: writes by other processes (a worker) go unseen.
        ttl = min(ttl, FALLBACK_MAX_TTL_SECONDS)
    posts = PostCache(cache, ttl)
    on_committed_post_writes(engine, posts.invalidate_all)
    if isinstance(cache, FailoverCache):
        # Writes made during the outage were not recorded in Redis.
        cache.on_recovery(posts.invalidate_all)
    return posts


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


def watch_redis(cache: Cache, limiter: RateLimiter) -> None:
    """The degraded gauge reads each component's current state when scraped."""
    cache_gauge = REDIS_DEGRADED.labels("cache")
    limiter_gauge = REDIS_DEGRADED.labels("rate_limiter")
    if isinstance(cache, FailoverCache):
        cache_gauge.set_function(lambda: float(cache.degraded))
    else:
        cache_gauge.set_function(lambda: 0.0)
    if isinstance(limiter, RedisRateLimiter):
        limiter_gauge.set_function(lambda: float(limiter.degraded))
    else:
        limiter_gauge.set_function(lambda: 0.0)


def service_registrar(settings: Settings, grpc_port: int) -> Registrar | None:
    """Consul registration of the gRPC server when CONSUL_HTTP_ADDR is set."""
    if not settings.consul_http_addr:
        return None
    token = settings.consul_http_token
    agent = ConsulAgent(
        settings.consul_http_addr, token.get_secret_value() if token is not None else None
    )
    address = advertised_address(settings.grpc_host, settings.consul_service_address)
    return Registrar(agent, ServiceRegistration(settings.consul_service_name, address, grpc_port))


def outbox_relay(settings: Settings, engine: Engine) -> OutboxRelay | None:
    """Kafka unset: rows are kept in the outbox and nothing relays them."""
    if not settings.kafka_bootstrap_servers:
        return None
    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
    return OutboxRelay(
        engine,
        servers,
        RelaySettings(
            topic_prefix=settings.kafka_topic_prefix,
            value_format=ValueFormat(settings.kafka_value_format),
            retention=timedelta(days=settings.outbox_retention_days),
        ),
    )


def outbox_ticks(settings: Settings, engine: Engine, relay: OutboxRelay | None) -> list[Tick]:
    """The relay purges rows it sent; without Kafka, unsent rows past the outbox
    retention are purged on the retention interval, so the outbox stays bounded."""
    if relay is not None:
        return [Tick("outbox-purge", relay.purge, 3600)]
    retention = timedelta(days=settings.outbox_retention_days)
    return [
        Tick(
            "outbox-purge-unrelayed",
            lambda: purge_unrelayed(engine, retention),
            settings.retention_interval_seconds,
        )
    ]


def engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        timing=Timing(
            policy=RetryPolicy(
                base=timedelta(seconds=settings.retry_base_seconds),
                factor=settings.retry_factor,
                cap=timedelta(seconds=settings.retry_cap_seconds),
                max_attempts=settings.retry_max_attempts,
            ),
            settle_delay=timedelta(seconds=settings.publish_settle_seconds),
            give_up=timedelta(seconds=settings.reconcile_give_up_seconds),
            lag_bound=timedelta(seconds=settings.x_timeline_lag_seconds),
        ),
        lease=timedelta(seconds=settings.publish_lease_seconds),
        max_in_flight=settings.publish_max_in_flight,
    )


def build(settings: Settings, *, run_migrations: bool = True) -> Container:
    mode = x_mode(settings)  # refuses an unsafe X choice before anything starts
    secrets = resolve_secrets(settings)
    try:
        box = FernetBox.parse(secrets.encryption_keys)
    except InvalidKeys as exc:
        raise ConfigError(f"ENCRYPTION_KEYS: {exc}") from None
    embedded = None
    if settings.database_url is None:
        # With configured secrets nothing else has created DATA_DIR yet.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        embedded = EmbeddedPostgres(settings.data_dir.resolve())
        url = embedded.url
    else:
        url = settings.database_url.get_secret_value()
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
    # One secret, a key per purpose: page tokens and erased users' pseudonyms.
    pagination.use_key(derived_key(secrets.hmac_secret, "page-tokens"))
    pseudonyms = Pseudonyms(derived_key(secrets.hmac_secret, "erased-users"))
    prices = price_table(settings)
    uow = SqlUnitOfWorkFactory(engine, box, pseudonyms, prices)
    try:
        clock = SystemClock.from_env()  # honours the test-only clock offset
        if (crash_at := crash_points.armed()) is not None:
            log.warning("test-only crash point armed: this process dies at %s", crash_at)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    shared = shared_cache(settings)
    posts_cache = post_cache(settings, engine, shared)
    components = {
        "database": "embedded" if embedded else "external",
        "redis": "external" if settings.redis_url else "in-process",
        "kafka": "external" if settings.kafka_bootstrap_servers else "off (outbox kept)",
        "x_api": mode,
        "dispatcher": "on" if settings.dispatcher_enabled else "off",
    }

    def readiness() -> list[ComponentCheck]:
        try:
            ping(engine)
        except SQLAlchemyError as exc:
            database = ComponentCheck("database", False, type(exc).__name__)
        else:
            database = ComponentCheck("database", True, components["database"])
        if isinstance(shared, FailoverCache):
            return [database, redis_check(shared)]
        return [database]

    def health_report() -> HealthReport:
        return report_health(
            engine,
            shared,
            kafka_configured=bool(settings.kafka_bootstrap_servers),
            x_target=components["x_api"],
            database_mode=components["database"],
        )

    limiter = rate_limiter(settings)
    watch_redis(shared, limiter)
    x_api, emulator = x_client(settings)
    queue = SqlPublishQueue(engine, box, prices)
    meter = SqlSpendMeter(engine, prices)
    engine_config = engine_settings(settings)
    # The engine reads no process clock: leases and due times are compared with the
    # database's now() in SQL, and the posting budgets count on the database's clock.
    database_clock = DatabaseClock(engine)
    publisher = Publisher(
        queue,
        x_api,
        limiter,
        database_clock,
        engine_config,
        media=SqlMediaUploads(engine),
        meter=meter,
    )
    dispatcher = Dispatcher(queue, publisher, database_clock, engine_config)
    reconciler = Reconciler(queue, x_api, engine_config, meter)
    relay = outbox_relay(settings, engine)
    ticks = []
    if settings.dispatcher_enabled:
        ticks += [
            Tick("dispatch", dispatcher.tick, settings.dispatch_interval_seconds),
            Tick("reconcile", reconciler.tick, settings.reconcile_interval_seconds),
        ]
    ticks += outbox_ticks(settings, engine, relay)
    analytics_uow = SqlAnalyticsUnitOfWorkFactory(engine, box, pseudonyms, prices)
    cache = CountedCache(shared, "analytics")
    predictor = EngagementPredictor(analytics_uow, clock, GradientBoostingLearner())
    trends = TrendDetector(analytics_uow, clock, cache)
    collector = MetricsCollector(
        analytics_uow,
        x_api,
        clock,
        cache,
        AdvisoryLeaderLock(engine),
        growth=GrowthCollector(analytics_uow, x_api, clock, trends=trends),
        trends=trends,
    )
    refresh = metrics.counting_refreshes(collector.tick)
    ticks.append(Tick("metrics", refresh, settings.metrics_interval_seconds))
    privacy_store = SqlPrivacyStore(engine, box, prices)
    retention = RetentionJob(
        privacy_store,
        clock,
        RetentionPeriods(
            metric_snapshots=timedelta(days=settings.metrics_retention_days),
            dead_letters=timedelta(days=settings.dead_letter_retention_days),
            finished_removals=timedelta(days=settings.removal_retention_days),
            unattached_media=timedelta(days=settings.media_unattached_ttl_days),
            published_media=timedelta(days=settings.media_published_retention_days),
        ),
    )
    ticks.append(Tick("retention", retention.tick, settings.retention_interval_seconds))
    removals = RemovalJob(privacy_store, x_api, clock)
    ticks.append(Tick("x-removals", removals.tick, settings.x_removal_interval_seconds))
    timer = Timer(ticks)
    offensive = ProfanityCheck()
    offensive.warm_up()
    screen = ContentScreen(offensive)
    tokens = token_codec(settings, secrets)
    post_reads = AsyncPostReads(url)
    services = Services(
        posts=PostService(uow, clock, posts_cache, screen),
        post_queries=PostQueries(
            post_reads, posts_cache, cache_blocks=isinstance(shared, FailoverCache)
        ),
        resources=[post_reads],
        media=MediaService(
            uow, clock, MediaQuota(settings.media_quota_items, settings.media_quota_bytes)
        ),
        accounts=AccountService(uow, clock),
        privacy=PrivacyService(uow, privacy_store, clock, pseudonyms),
        rpc_limiter=limiter,
        rpc_limiter_blocks=isinstance(limiter, RedisRateLimiter),
        request_threads=settings.grpc_request_threads,
        request_budget=RequestBudget(
            user_limit=settings.rpc_rate_limit_per_minute,
            service_limit=settings.rpc_rate_limit_service_per_minute,
            webhook_limit=settings.webhook_rate_limit_per_minute,
        ),
        tokens=tokens,
        build=BuildInfo(
            name="post-management",
            version=_version(),
            git_commit=git_commit(),
            started_at=datetime.now(UTC),
            components=components,
        ),
        readiness=readiness,
        health_report=health_report,
        scheduling=SchedulingService(
            uow,
            clock,
            past_grace=timedelta(seconds=settings.schedule_past_grace_seconds),
            horizon=timedelta(days=settings.schedule_horizon_days),
            screen=screen,
            best_time=BestFreeTime(analytics_uow, clock, predictor),
        ),
        scheduled_listing=AsyncScheduledListing(post_reads),
        # Due times it stamps are compared with the database's now() by the claims.
        publishing=PublishCommands(uow, queue, publisher, database_clock, engine_config.lease),
        analytics=AnalyticsServices(
            AnalyticsQueries(
                analytics_uow,
                clock,
                cache,
                AnalyticsSettings(
                    settings.analytics_cache_ttl_seconds,
                    settings.analytics_benchmarks or dict(DEFAULT_BENCHMARKS),
                ),
                predictor,
            ),
            XWebhooks(analytics_uow, clock, cache, webhook_secret(settings)),
            AccountGrowthQueries(analytics_uow, clock),
            predictor,
            XSpendQueries(uow, clock),
        ),
        campaigns=CampaignService(analytics_uow, clock),
    )
    return Container(
        settings,
        engine,
        tokens,
        services,
        timer=timer,
        dispatcher=dispatcher,
        x_api=x_api,
        embedded_database=embedded,
        emulator=emulator,
        relay=relay,
        components=components,
        database_metrics=DatabaseCollector(engine).attach(),
    )
