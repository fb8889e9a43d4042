"""Sliding-window budgets: in process, or in Redis so replicas share them.

Both keep, per key, the instants of the uses still in the window, each named by the
token of the `take` it belongs to, so an unused unit can be given back exactly.

Each has two faces on the same budgets: the synchronous one (ports.publishing.
RateLimiter) for the publishing engine, and the awaited one (AsyncRateLimiter) for
the per-caller request budget on the serving loop, over redis.asyncio for Redis.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import redis.asyncio

from post_management.adapters.redis_outage import RedisOutage
from post_management.ports.publishing import Budget, Refused, Taken


class InProcessRateLimiter:
    def __init__(self) -> None:
        self._uses: dict[str, deque[tuple[datetime, str]]] = {}
        self._lock = threading.Lock()
        # Tokens only tell this process's takes apart: a counter, not a uuid4 (a
        # system call for randomness on every call of the request budget).
        self._tokens = itertools.count()

    def awaited(self) -> AwaitedInProcessRateLimiter:
        """The request budget's face of these budgets."""
        return AwaitedInProcessRateLimiter(self)

    def take(self, budgets: Sequence[Budget], now: datetime) -> Taken | Refused:
        with self._lock:
            token = str(next(self._tokens))
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


class AwaitedInProcessRateLimiter:
    """An InProcessRateLimiter's acquire, awaited (ports.publishing.AsyncRateLimiter):
    a lock and a deque, done on the loop. An AsyncResource with nothing to open."""

    def __init__(self, limiter: InProcessRateLimiter) -> None:
        self._limiter = limiter

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""

    async def acquire(
        self, key: str, limit: int, window: timedelta, now: datetime
    ) -> datetime | None:
        return _free_at(self._limiter.take((Budget(key, limit, window),), now))


def _free_at(result: Taken | Refused) -> datetime | None:
    return result.free_at if isinstance(result, Refused) else None


# Atomic over all keys: trim each window; if one is full, report when its oldest use
# leaves and take nothing; else add this use (member = token) to every key. A token
# already in the keys is this take's own, sent again after its answer was lost (the
# request budget's retry on a fresh connection): taken, not counted against itself.
# Scores are milliseconds since the epoch. ARGV: now, token, then window and limit
# of each key in KEYS order.
_TAKE = """
local now, token = tonumber(ARGV[1]), ARGV[2]
if redis.call('ZSCORE', KEYS[1], token) then
  return {0, 0}
end
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


class _Outage(RedisOutage):
    """What both faces of a Redis limiter share: the outage and the in-process
    fallback."""

    def __init__(self, fallback: InProcessRateLimiter, retry_interval: timedelta) -> None:
        super().__init__(retry_interval.total_seconds())
        self.fallback = fallback


def _take_call(
    prefix: str, budgets: Sequence[Budget], now: datetime, token: str
) -> tuple[list[str], list[Any]]:
    """_TAKE's KEYS and ARGV."""
    args: list[Any] = [_ms(now), token]
    for budget in budgets:
        args += [int(budget.window.total_seconds() * 1000), budget.limit]
    return [prefix + b.key for b in budgets], args


def _taken(answer: Any, budgets: Sequence[Budget], token: str) -> Taken | Refused:
    """_TAKE's answer."""
    refused, free_ms = (int(value) for value in answer)
    if refused:
        return Refused(budgets[refused - 1].key, datetime.fromtimestamp(free_ms / 1000, UTC))
    return Taken(tuple(b.key for b in budgets), token)


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
        self._state = _Outage(fallback or InProcessRateLimiter(), retry_interval)
        self._prefix = prefix

    @property
    def degraded(self) -> bool:
        """Redis failed and is being left alone (either face met it)."""
        return self._state.degraded

    def awaited(self, client: redis.asyncio.Redis) -> AsyncRedisRateLimiter:
        """The request budget's face: the same budgets, fallback and outage, over
        redis.asyncio on the serving loop."""
        return AsyncRedisRateLimiter(client, self._state, self._prefix)

    def take(self, budgets: Sequence[Budget], now: datetime) -> Taken | Refused:
        token = uuid.uuid4().hex
        keys, args = _take_call(self._prefix, budgets, now, token)
        answer, _ = self._state.call(
            lambda: _taken(self._take(keys=keys, args=args), budgets, token),
            lambda: self._state.fallback.take(budgets, now),
        )
        return answer

    def release(self, taken: Taken) -> None:
        # The units may have been taken in the fallback while Redis was down.
        self._state.fallback.release(taken)
        keys = [self._prefix + key for key in taken.keys]

        def remove() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.zrem(key, taken.token)
                pipe.execute()

        self._state.call(remove, lambda: None)

    def room(self, budget: Budget, now: datetime) -> int:
        window_ms = int(budget.window.total_seconds() * 1000)
        answer, _ = self._state.call(
            lambda: self._room(
                keys=[self._prefix + budget.key], args=[_ms(now), window_ms, budget.limit]
            ),
            lambda: self._state.fallback.room(budget, now),
        )
        return max(0, int(answer))


class AsyncRedisRateLimiter:
    """RedisRateLimiter's acquire awaited on the serving loop
    (ports.publishing.AsyncRateLimiter), over redis.asyncio: the same script and keys,
    and the same fallback and outage as the RedisRateLimiter it came from
    (RedisRateLimiter.awaited). An AsyncResource: its connections belong to the loop
    it serves on and close with it."""

    def __init__(self, client: redis.asyncio.Redis, state: _Outage, prefix: str) -> None:
        self._client = client
        self._take: Any = client.register_script(_TAKE)
        self._state = state
        self._prefix = prefix

    @property
    def degraded(self) -> bool:
        return self._state.degraded

    async def open(self) -> None:
        """Connections are made on first use, on the serving loop."""

    async def close(self) -> None:
        await self._client.aclose()

    async def acquire(
        self, key: str, limit: int, window: timedelta, now: datetime
    ) -> datetime | None:
        budgets = (Budget(key, limit, window),)
        token = uuid.uuid4().hex
        keys, args = _take_call(self._prefix, budgets, now, token)

        async def through_redis() -> Taken | Refused:
            return _taken(await self._take(keys=keys, args=args), budgets, token)

        answer, _ = await self._state.call_awaited(
            through_redis, lambda: self._state.fallback.take(budgets, now)
        )
        return _free_at(answer)


def _ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)
