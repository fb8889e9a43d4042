"""TTL caches for analytics answers: in process, or Redis shared by replicas."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)


class InProcessCache:
    """A bounded LRU with per-entry expiry. Thread-safe: servicers call it
    from worker threads."""

    def __init__(
        self, max_entries: int = 10_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max = max_entries
        self._now = monotonic
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self._now():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        with self._lock:
            self._entries[key] = (self._now() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)


class RedisCache:
    """Redis SET EX / GET / DEL under a prefix. Redis being down only costs the
    cache: errors read as misses and are logged."""

    def __init__(self, client: redis.Redis, prefix: str = "pm:cache:") -> None:
        self._client = client
        self._prefix = prefix

    def get(self, key: str) -> str | None:
        try:
            value = self._client.get(self._prefix + key)
        except redis.RedisError as exc:
            log.warning("cache get failed: %s", type(exc).__name__)
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        try:
            self._client.set(self._prefix + key, value, px=max(1, int(ttl_seconds * 1000)))
        except redis.RedisError as exc:
            log.warning("cache set failed: %s", type(exc).__name__)

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            self._client.delete(*(self._prefix + key for key in keys))
        except redis.RedisError as exc:
            log.warning("cache delete failed: %s", type(exc).__name__)
