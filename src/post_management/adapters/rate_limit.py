"""Sliding-window budgets: in process, or in Redis so replicas share them.

Both keep, per key, the instants of the uses still in the window, each named by the
token of the `take` it belongs to, so an unused unit can be given back exactly.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis

from post_management.ports.publishing import Budget, Refused, Taken

_T = TypeVar("_T")


class InProcessRateLimiter:
    def __init__(self) -> None:
        self._uses: dict[str, deque[tuple[datetime, str]]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: int, window: timedelta, now: datetime) -> datetime | None:
        result = self.take((Budget(key, limit, window),), now)
        return result.free_at if isinstance(result, Refused) else None

    def take(self, budgets: Sequence[Budget], now: datetime) -> Taken | Refused:
        token = uuid.uuid4().hex
        with self._lock:
            for budget in budgets:
                uses = self._trimmed(budget, now)
                if len(uses) >= budget.limit:
                    return Refused(budget.key, uses[0][0] + budget.window)
            for budget in budgets:
                self._uses[budget.key].append((now, token))
        return Taken(tuple(b.key for b in budgets), token)

    def release(self, taken: Taken) -> None:
        with self._lock:
            for key in taken.keys:
                uses = self._uses.get(key)
                if uses is None:
                    continue
                for use in uses:
                    if use[1] == taken.token:
                        uses.remove(use)
                        break

    def room(self, budget: Budget, now: datetime) -> int:
        with self._lock:
            return max(0, budget.limit - len(self._trimmed(budget, now)))

    def _trimmed(self, budget: Budget, now: datetime) -> deque[tuple[datetime, str]]:
        uses = self._uses.setdefault(budget.key, deque())
        while uses and uses[0][0] <= now - budget.window:
            uses.popleft()
        return uses


# Atomic over all keys: trim each window; if one is full, report when its oldest use
# leaves and take nothing; else add this use (member = token) to every key.
# Scores are milliseconds since the epoch. ARGV: now, token, then window and limit
# of each key in KEYS order.
_TAKE = """
local now, token = tonumber(ARGV[1]), ARGV[2]
for i, key in ipairs(KEYS) do
  local window, limit = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {i, tonumber(oldest[2]) + window}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, token)
  redis.call('PEXPIRE', key, tonumber(ARGV[1 + 2 * i]))
end
return {0, 0}
"""

_ROOM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
return tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
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
        prefix: str = "pm:rl:",
    ) -> None:
        self._client = client
        self._take: Any = client.register_script(_TAKE)
        self._room: Any = client.register_script(_ROOM)
        self._fallback = fallback or InProcessRateLimiter()
        self._retry_interval = retry_interval
        self._retry_at = 0.0
        self._prefix = prefix
        self.degraded = False

    def acquire(self, key: str, limit: int, window: timedelta, now: datetime) -> datetime | None:
        result = self.take((Budget(key, limit, window),), now)
        return result.free_at if isinstance(result, Refused) else None

    def take(self, budgets: Sequence[Budget], now: datetime) -> Taken | Refused:
        token = uuid.uuid4().hex
        args: list[Any] = [_ms(now), token]
        for budget in budgets:
            args += [int(budget.window.total_seconds() * 1000), budget.limit]
        keys = [self._prefix + b.key for b in budgets]
        answer = self._call(
            lambda: self._take(keys=keys, args=args),
            lambda: self._fallback.take(budgets, now),
        )
        if isinstance(answer, Taken | Refused):
            return answer
        refused, free_ms = (int(value) for value in answer)
        if refused:
            return Refused(budgets[refused - 1].key, datetime.fromtimestamp(free_ms / 1000, UTC))
        return Taken(tuple(b.key for b in budgets), token)

    def release(self, taken: Taken) -> None:
        # The units may have been taken in the fallback while Redis was down.
        self._fallback.release(taken)
        keys = [self._prefix + key for key in taken.keys]

        def remove() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.zrem(key, taken.token)
                pipe.execute()

        self._call(remove, lambda: None)

    def room(self, budget: Budget, now: datetime) -> int:
        window_ms = int(budget.window.total_seconds() * 1000)
        answer = self._call(
            lambda: self._room(
                keys=[self._prefix + budget.key], args=[_ms(now), window_ms, budget.limit]
            ),
            lambda: self._fallback.room(budget, now),
        )
        return max(0, int(answer))

    def _call(self, remote: Callable[[], Any], local: Callable[[], _T]) -> Any | _T:
        """`remote()` through Redis, or `local()` while Redis is failing."""
        if self.degraded and time.monotonic() < self._retry_at:
            return local()
        try:
            answer = remote()
        except redis.RedisError:
            self.degraded = True
            self._retry_at = time.monotonic() + self._retry_interval.total_seconds()
            return local()
        self.degraded = False
        return answer


def _ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)
