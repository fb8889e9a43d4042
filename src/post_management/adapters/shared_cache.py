"""The cache replicas share through Redis, kept in process while Redis is down.

Redis failures never reach callers: the cache switches to a local fallback,
retries Redis after `retry_after` seconds, and on recovery tells its listeners
(the post cache then invalidates what was cached before the outage, because
writes made during it were only recorded locally).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from post_management.ports.cache import Cache

log = logging.getLogger(__name__)

# Entries kept in process are invisible to other replicas' invalidations, so
# they live briefly whatever TTL the caller asked for.
FALLBACK_MAX_TTL_SECONDS = 5.0


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
        self._new_fallback = fallback
        self._fallback = fallback()
        self._prefix = prefix
        self._retry_after = retry_after
        self._fallback_max_ttl = fallback_max_ttl
        self._now = monotonic
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._listeners: list[Callable[[], object]] = []
        self.degraded = False
        self.last_error = ""

    def on_recovery(self, listener: Callable[[], object]) -> None:
        self._listeners.append(listener)

    def get(self, key: str) -> str | None:
        if self._waiting():
            return self._fallback.get(key)
        try:
            value = self._client.get(self._prefix + key)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._fallback.get(key)
        self._succeeded()
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        if not self._waiting():
            try:
                self._client.set(self._prefix + key, value, px=max(1, int(ttl_seconds * 1000)))
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return
        self._fallback.set(key, value, min(ttl_seconds, self._fallback_max_ttl))

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        # Local copies go too: they may be read again if Redis fails later.
        self._fallback.delete(*keys)
        if self._waiting():
            return
        try:
            self._client.delete(*(self._prefix + key for key in keys))
        except redis.RedisError as exc:
            self._failed(exc)
        else:
            self._succeeded()

    def probe(self) -> bool:
        """PING Redis now (readiness calls it); True when the cache is shared."""
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._failed(exc)
            return False
        self._succeeded()
        return True

    def _waiting(self) -> bool:
        return self.degraded and self._now() < self._retry_at

    def _failed(self, exc: redis.RedisError) -> None:
        with self._lock:
            self._retry_at = self._now() + self._retry_after
            self.last_error = type(exc).__name__
            if self.degraded:
                return
            self.degraded = True
        log.warning("redis unavailable (%s): caching in process", self.last_error)

    def _succeeded(self) -> None:
        if not self.degraded:
            return
        with self._lock:
            if not self.degraded:
                return
            self.degraded = False
            self.last_error = ""
            # What was cached locally during the outage must not outlive it.
            self._fallback = self._new_fallback()
        log.warning("redis is back: cache shared again")
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not break the caller's read
                log.exception("cache recovery listener failed")
