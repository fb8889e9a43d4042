"""Sliding-window budgets: in process, or in Redis so replicas share them."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import redis


class InProcessRateLimiter:
    def __init__(self) -> None:
        self._events: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: int, window: timedelta, now: datetime) -> datetime | None:
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - window:
                events.popleft()
            if len(events) >= limit:
                return events[0] + window
            events.append(now)
            return None


# Atomic: trim the window, count, and either add this use or report when the oldest
# use leaves the window. Scores are milliseconds since the epoch.
_ACQUIRE = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, window)
return -1
"""


class RedisRateLimiter:
    """Shared by every replica; falls back to in process while Redis is down.

    After a failure Redis is left alone for `retry_interval`, so an outage costs
    one timeout per interval instead of one per call.
    """

    def __init__(
        self,
        client: redis.Redis,
        fallback: InProcessRateLimiter | None = None,
        retry_interval: timedelta = timedelta(seconds=5),
    ) -> None:
        self._client = client
        self._script: Any = client.register_script(_ACQUIRE)
        self._fallback = fallback or InProcessRateLimiter()
        self._retry_interval = retry_interval
        self._retry_at = 0.0
        self.degraded = False

    def acquire(self, key: str, limit: int, window: timedelta, now: datetime) -> datetime | None:
        if self.degraded and time.monotonic() < self._retry_at:
            return self._fallback.acquire(key, limit, window, now)
        now_ms = int(now.timestamp() * 1000)
        try:
            free_ms = int(
                self._script(
                    keys=[f"pm:rl:{key}"],
                    args=[now_ms, int(window.total_seconds() * 1000), limit, uuid.uuid4().hex],
                )
            )
            self.degraded = False
        except redis.RedisError:
            self.degraded = True
            self._retry_at = time.monotonic() + self._retry_interval.total_seconds()
            return self._fallback.acquire(key, limit, window, now)
        if free_ms < 0:
            return None
        return datetime.fromtimestamp(free_ms / 1000, UTC)
