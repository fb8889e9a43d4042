"""TTL caches for analytics answers: in process, or Redis shared by replicas."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

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


class AwaitedInProcessCache:
    """An InProcessCache awaited (ports.cache.AsyncCache): a dictionary lookup under
    a lock, done on the loop."""

    def __init__(self, cache: InProcessCache) -> None:
        self._cache = cache

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def get(self, key: str) -> str | None:
        return self._cache.get(key)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        self._cache.set(key, value, ttl_seconds)

    async def delete(self, *keys: str) -> None:
        self._cache.delete(*keys)
