"""A Redis outage as the adapters that fall back in process while Redis is down see
it (adapters/shared_cache.py, adapters/rate_limit.py): whether Redis is being left
alone and until when, and one call through Redis or the fallback, shared by the
blocking and the awaited face of each adapter so an outage one face meets is the
other's too.

After a failure Redis is left alone for `retry_after` seconds, so an outage costs one
timeout per interval instead of one per call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis

_T = TypeVar("_T")


class RedisOutage:
    def __init__(self, retry_after: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self.now = monotonic
        self.lock = threading.Lock()
        self.retry_at = 0.0
        self.degraded = False
        self.last_error = ""

    def waiting(self) -> bool:
        return self.degraded and self.now() < self.retry_at

    def failed(self, exc: redis.RedisError) -> bool:
        """Redis failed: left alone for `retry_after`. True when that began an outage."""
        with self.lock:
            self.retry_at = self.now() + self.retry_after
            self.last_error = type(exc).__name__
            if self.degraded:
                return False
            self.degraded = True
            return True

    def succeeded(self) -> bool:
        """Redis answered. True when that ended an outage."""
        if not self.degraded:
            return False
        with self.lock:
            if not self.degraded:
                return False
            self.degraded = False
            self.last_error = ""
            self._ending()
            return True

    def _ending(self) -> None:
        """What else an outage's end changes, under the lock, before another caller
        can fail again."""

    def call(self, remote: Callable[[], _T], local: Callable[[], _T]) -> tuple[_T, bool]:
        """`remote()` through Redis, or `local()` while Redis is failing; and whether
        this call ended an outage (see `succeeded`)."""
        if self.waiting():
            return local(), False
        try:
            answer = remote()
        except redis.RedisError as exc:
            self.failed(exc)
            return local(), False
        return answer, self.succeeded()

    async def call_awaited(
        self, remote: Callable[[], Awaitable[_T]], local: Callable[[], _T]
    ) -> tuple[_T, bool]:
        """`call` for redis.asyncio. `remote()` runs once more on a fresh connection
        if its connection had died while Redis was thought up: a pooled connection
        outlives a Redis restart, and redis.asyncio does not always see that before
        using it. In an outage the first error is final."""
        if self.waiting():
            return local(), False
        try:
            try:
                answer = await remote()
            except redis.ConnectionError:
                if self.degraded:
                    raise
                answer = await remote()
        except redis.RedisError as exc:
            self.failed(exc)
            return local(), False
        return answer, self.succeeded()
