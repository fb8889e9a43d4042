"""The cache replicas share through Redis, kept in process while Redis is down.

Redis failures never reach callers: the cache switches to a local fallback,
retries Redis after `retry_after` seconds, and on recovery tells its listeners
(the post cache then invalidates what was cached before the outage, because
writes made during it were only recorded locally).

Two faces share that state: `FailoverCache` (ports.cache.Cache, redis-py's blocking
client) for the background jobs and `AsyncFailoverCache` (AsyncCache, redis.asyncio)
for the request path, so an outage one of them meets is the other's too, and what
either keeps in process during it the other reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
import redis.asyncio

from post_management.adapters.redis_outage import RedisOutage
from post_management.ports.cache import Cache

log = logging.getLogger(__name__)

# Entries kept in process are invisible to other replicas' invalidations, so
# they live briefly whatever TTL the caller asked for.
FALLBACK_MAX_TTL_SECONDS = 5.0


class _Failover(RedisOutage):
    """What both faces share: the outage, the fallback, and who hears of Redis's
    recovery."""

    def __init__(
        self,
        fallback: Callable[[], Cache],
        *,
        prefix: str,
        retry_after: float,
        fallback_max_ttl: float,
        monotonic: Callable[[], float],
    ) -> None:
        super().__init__(retry_after, monotonic)
        self.new_fallback = fallback
        self.fallback = fallback()
        self.prefix = prefix
        self.fallback_max_ttl = fallback_max_ttl
        self.listeners: list[Callable[[], object]] = []

    def failed(self, exc: redis.RedisError) -> bool:
        began = super().failed(exc)
        if began:
            log.warning("redis unavailable (%s): caching in process", self.last_error)
        return began

    def _ending(self) -> None:
        # What was cached locally during the outage must not outlive it.
        self.fallback = self.new_fallback()

    def succeeded(self) -> bool:
        """Redis answered. True when that ended an outage: the listeners have run, and
        a value read before they did (the post generation they renew) is read again."""
        if not super().succeeded():
            return False
        log.warning("redis is back: cache shared again")
        for listener in self.listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not break the caller's read
                log.exception("cache recovery listener failed")
        return True

    def local_ttl(self, ttl_seconds: float) -> float:
        return min(ttl_seconds, self.fallback_max_ttl)


def _px(ttl_seconds: float) -> int:
    return max(1, int(ttl_seconds * 1000))


def _nothing() -> None:
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class FailoverCache:
    def __init__(
        self,
        client: redis.Redis,
        fallback: Callable[[], Cache],
        *,
        prefix: str = "pm:cache:",
        retry_after: float = 1.0,
        fallback_max_ttl: float = FALLBACK_MAX_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._state = _Failover(
            fallback,
            prefix=prefix,
            retry_after=retry_after,
            fallback_max_ttl=fallback_max_ttl,
            monotonic=monotonic,
        )

    @property
    def degraded(self) -> bool:
        return self._state.degraded

    @property
    def last_error(self) -> str:
        return self._state.last_error

    def awaited(self, client: redis.asyncio.Redis) -> AsyncFailoverCache:
        """The request path's face of this cache, on the same state."""
        return AsyncFailoverCache(client, self._state)

    def on_recovery(self, listener: Callable[[], object]) -> None:
        self._state.listeners.append(listener)

    def get(self, key: str) -> str | None:
        state = self._state
        value, recovered = state.call(
            lambda: _text(self._client.get(state.prefix + key)), lambda: state.fallback.get(key)
        )
        if recovered:
            return self.get(key)  # read before the recovery's listeners ran
        return value

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        state = self._state
        state.call(
            lambda: self._client.set(state.prefix + key, value, px=_px(ttl_seconds)),
            lambda: state.fallback.set(key, value, state.local_ttl(ttl_seconds)),
        )

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        state = self._state
        # Local copies go too: they may be read again if Redis fails later.
        state.fallback.delete(*keys)
        state.call(lambda: self._client.delete(*(state.prefix + key for key in keys)), _nothing)

    def probe(self) -> bool:
        """PING Redis now (readiness calls it); True when the cache is shared."""
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._state.failed(exc)
            return False
        self._state.succeeded()
        return True


class AsyncFailoverCache:
    """FailoverCache awaited on the serving loop (ports.cache.AsyncCache), over
    redis.asyncio: the same keys, fallback and outage. An AsyncResource: its
    connections belong to the loop it serves on and close with it."""

    def __init__(self, client: redis.asyncio.Redis, state: _Failover) -> None:
        self._client = client
        self._state = state

    async def open(self) -> None:
        """Connections are made on first use, on the serving loop."""

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, key: str) -> str | None:
        state = self._state
        value, recovered = await state.call_awaited(
            lambda: self._client.get(state.prefix + key), lambda: state.fallback.get(key)
        )
        if recovered:
            return await self.get(key)  # read before the recovery's listeners ran
        return _text(value)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        state = self._state
        await state.call_awaited(
            lambda: self._client.set(state.prefix + key, value, px=_px(ttl_seconds)),
            lambda: state.fallback.set(key, value, state.local_ttl(ttl_seconds)),
        )

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        state = self._state
        state.fallback.delete(*keys)
        await state.call_awaited(
            lambda: self._client.delete(*(state.prefix + key for key in keys)), _nothing
        )
