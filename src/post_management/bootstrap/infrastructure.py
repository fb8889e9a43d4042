"""What the services run on: the database (embedded or external), the keys, the
clocks, Redis with its in-process fallbacks (caches, rate limiter), the X client or
the emulator, and the storage adapters over them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
import redis.asyncio
from pydantic import SecretStr
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.adapters.clock import SystemClock
from post_management.adapters.crypto import FernetBox, InvalidKeys, derived_key
from post_management.adapters.db.async_reads import AsyncPool, AsyncPostReads
from post_management.adapters.db.clock import DatabaseClock
from post_management.adapters.db.engine import make_engine, migrate
from post_management.adapters.db.post_writes import on_committed_post_writes
from post_management.adapters.db.privacy_repository import SqlPrivacyStore
from post_management.adapters.db.publish_queue import SqlPublishQueue
from post_management.adapters.db.spend_ledger import SqlSpendMeter
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.local import EmbeddedPostgres
from post_management.adapters.rate_limit import (
    AsyncRedisRateLimiter,
    AwaitedInProcessRateLimiter,
    InProcessRateLimiter,
    RedisRateLimiter,
)
from post_management.adapters.shared_cache import (
    FALLBACK_MAX_TTL_SECONDS,
    AsyncFailoverCache,
    FailoverCache,
)
from post_management.adapters.x.client import TweepyXApi
from post_management.adapters.x.poster import TweepyXPoster
from post_management.bootstrap.secrets import Secrets
from post_management.bootstrap.settings import ConfigError, Settings, x_mode
from post_management.domain.privacy import Pseudonyms
from post_management.domain.x_spend import PriceTable
from post_management.observability import crash_points
from post_management.observability.cache import CountedCache
from post_management.observability.metrics import REDIS_DEGRADED
from post_management.ports.analytics import AsyncCache, Cache
from post_management.ports.publishing import RateLimiter
from post_management.services.posts.cache import PostCache, PostGenerations
from post_management.services.shared import pagination

# The request path's face of the shared cache: opened and closed on the serving loop.
AwaitedCache = AwaitedInProcessCache | AsyncFailoverCache
AwaitedLimiter = AwaitedInProcessRateLimiter | AsyncRedisRateLimiter

if TYPE_CHECKING:  # the emulator is imported only when X_MODE picks it
    from x_emulator.server import EmulatorThread

log = logging.getLogger(__name__)


@dataclass
class Infrastructure:
    engine: Engine
    database_url: str
    # Set when DATABASE_URL is unset: the PostgreSQL this process started.
    embedded_database: EmbeddedPostgres | None
    box: FernetBox
    pseudonyms: Pseudonyms
    prices: PriceTable
    clock: SystemClock
    # The engine reads no process clock: leases and due times are compared with the
    # database's now() in SQL, and the posting budgets count on the database's clock.
    database_clock: DatabaseClock
    # Redis shared by the replicas, in process while Redis is down or unset: the
    # background jobs' face, and the request path's (awaited, an AsyncResource).
    shared_cache: Cache
    request_cache: AwaitedCache
    # Analytics answers, counted, in the shared cache.
    analytics_cache: CountedCache
    post_cache: PostCache | None
    # The posting budgets (the engine's face) and the per-caller request budget's
    # face (awaited, an AsyncResource), on the same budgets.
    limiter: RateLimiter
    request_limiter: AwaitedLimiter
    x_api: TweepyXApi
    # The dispatcher's create-post calls, on its event loop.
    x_poster: TweepyXPoster
    emulator: EmulatorThread | None
    # Storage adapters.
    uow: SqlUnitOfWorkFactory
    queue: SqlPublishQueue
    meter: SqlSpendMeter
    # The removal and retention ticks' (the privacy RPCs' store is asynchronous, on
    # the command pool: grpc_services.py).
    privacy_store: SqlPrivacyStore
    post_reads: AsyncPostReads
    # The asynchronous unit of work's connections: a pool apart from the reads'.
    command_pool: AsyncPool
    # What this process chose, as GetServiceInfo and the start-up lines report it.
    components: dict[str, str]


def open_infrastructure(
    settings: Settings, secrets: Secrets, x_target: str, *, run_migrations: bool = True
) -> Infrastructure:
    try:
        box = FernetBox.parse(secrets.encryption_keys)
    except InvalidKeys as exc:
        raise ConfigError(f"ENCRYPTION_KEYS: {exc}") from None
    engine, url, embedded = open_database(settings)
    if run_migrations:
        migrate(engine)
    # One secret, a key per purpose: page tokens and erased users' pseudonyms.
    pagination.use_key(derived_key(secrets.hmac_secret, "page-tokens"))
    pseudonyms = Pseudonyms(derived_key(secrets.hmac_secret, "erased-users"))
    prices = settings.x.price_table()
    uow = SqlUnitOfWorkFactory(engine, box, pseudonyms, prices)
    try:
        clock = SystemClock.from_env()  # honours the test-only clock offset
        if (crash_at := crash_points.armed()) is not None:
            log.warning("test-only crash point armed: this process dies at %s", crash_at)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    shared, awaited = shared_cache(settings)
    posts_cache = post_cache(settings, engine, shared, awaited)
    components = {
        "database": "embedded" if embedded else "external",
        "redis": "external" if settings.redis.redis_url else "in-process",
        "kafka": "external" if settings.kafka.kafka_bootstrap_servers else "off (outbox kept)",
        "x_api": x_target,
        "dispatcher": "on" if settings.publishing.dispatcher_enabled else "off",
    }
    limiter, request_limiter = rate_limiter(settings)
    watch_redis(shared, limiter)
    x_api, x_poster, emulator = x_client(settings)
    return Infrastructure(
        engine=engine,
        database_url=url,
        embedded_database=embedded,
        box=box,
        pseudonyms=pseudonyms,
        prices=prices,
        clock=clock,
        database_clock=DatabaseClock(engine),
        shared_cache=shared,
        request_cache=awaited,
        analytics_cache=CountedCache(awaited, "analytics"),
        post_cache=posts_cache,
        limiter=limiter,
        request_limiter=request_limiter,
        x_api=x_api,
        x_poster=x_poster,
        emulator=emulator,
        uow=uow,
        queue=SqlPublishQueue(engine, box, prices),
        meter=SqlSpendMeter(engine, prices),
        privacy_store=SqlPrivacyStore(engine, box, prices),
        post_reads=AsyncPostReads(url),
        command_pool=AsyncPool(url, name="commands"),
        components=components,
    )


def open_database(settings: Settings) -> tuple[Engine, str, EmbeddedPostgres | None]:
    """The engine on DATABASE_URL, or on an embedded PostgreSQL under DATA_DIR."""
    database = settings.database
    if database.database_url is not None:
        url = database.database_url.get_secret_value()
        return make_engine(url), url, None
    # With configured secrets nothing else has created DATA_DIR yet.
    database.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedPostgres(database.data_dir.resolve())
    return make_engine(embedded.url), embedded.url, embedded


def x_client(settings: Settings) -> tuple[TweepyXApi, TweepyXPoster, EmulatorThread | None]:
    """The X chosen by X_MODE: the real one, or the emulator (bundled, or the one at
    X_API_BASE_URL); the synchronous client, and the asynchronous one of the
    dispatcher's create-post calls."""
    emulator = None
    base_url = settings.x.x_api_base_url
    if x_mode(settings) == "emulator" and base_url is None:
        from x_emulator.server import EmulatorThread  # only when the emulator is chosen

        emulator = EmulatorThread()
        base_url = emulator.base_url
    client = settings.x.client(base_url)
    # A connection for every post in flight: none waits for one inside its X timeout.
    poster = TweepyXPoster(client, max_connections=settings.publishing.publish_max_in_flight)
    return TweepyXApi(client), poster, emulator


def redis_client(url: SecretStr) -> redis.Redis:
    """Short timeouts and no client retries: callers fall back in process at once
    rather than stall requests while Redis is down."""
    return redis.Redis.from_url(
        url.get_secret_value(),
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )


def rate_limiter(settings: Settings) -> tuple[RateLimiter, AwaitedLimiter]:
    """The budgets: Redis shared by the replicas (in process while it is down), or in
    process when it is not configured; the engine's face and the request budget's
    (awaited on the serving loop), on the same budgets."""
    if settings.redis.redis_url is None:
        local = InProcessRateLimiter()
        return local, local.awaited()
    shared = RedisRateLimiter(redis_client(settings.redis.redis_url))
    return shared, shared.awaited(redis_async_client(settings.redis.redis_url))


def redis_async_client(url: SecretStr) -> redis.asyncio.Redis:
    """redis_client's settings, for the serving loop."""
    return redis.asyncio.Redis.from_url(
        url.get_secret_value(),
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=AsyncRetry(NoBackoff(), 0),
    )


def shared_cache(settings: Settings) -> tuple[Cache, AwaitedCache]:
    """One cache for every cached read (posts, analytics): Redis shared by the
    replicas, in process while Redis is down or when it is not configured; its face
    for the jobs' threads and its face for the serving loop, on the same entries."""
    if settings.redis.redis_url is None:
        local = InProcessCache()
        return local, AwaitedInProcessCache(local)
    shared = FailoverCache(redis_client(settings.redis.redis_url), InProcessCache)
    return shared, shared.awaited(redis_async_client(settings.redis.redis_url))


def post_cache(
    settings: Settings, engine: Engine, cache: Cache, awaited: AsyncCache
) -> PostCache | None:
    """GetPost answers, dropped by every committed post write (docs/integration.md)."""
    ttl = settings.redis.post_cache_ttl_seconds
    if ttl <= 0:
        return None
    if not isinstance(cache, FailoverCache):
        # Only in process: writes by other processes (a worker) go unseen.
        ttl = min(ttl, FALLBACK_MAX_TTL_SECONDS)
    # The engine's writes (on its threads) start new generations through the jobs' face.
    generations = PostGenerations(cache)
    on_committed_post_writes(engine, generations.invalidate_all)
    if isinstance(cache, FailoverCache):
        # Writes made during the outage were not recorded in Redis.
        cache.on_recovery(generations.invalidate_all)
    return PostCache(awaited, ttl)


def post_writes_hook(posts: PostCache | None) -> Callable[[], Awaitable[object]] | None:
    """What the asynchronous unit of work awaits after a commit that changed a post
    row: the post cache's new generation."""
    return posts.invalidate_all if posts is not None else None


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
