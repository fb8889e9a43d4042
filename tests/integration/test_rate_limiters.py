"""The rate limiter budgets: exact under concurrency, shared through real Redis."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from pydantic import SecretStr

from post_management.adapters.rate_limit import InProcessRateLimiter, RedisRateLimiter
from post_management.bootstrap import redis_client

WINDOW = timedelta(minutes=15)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    connection.ping()
    yield connection
    connection.close()


def _race(limiter: object, key: str, limit: int, callers: int) -> int:
    """How many of `callers` concurrent acquisitions were granted."""
    barrier = threading.Barrier(callers)
    granted: list[bool] = []
    lock = threading.Lock()
    now = datetime.now(UTC)

    def take() -> None:
        barrier.wait()
        ok = limiter.acquire(key, limit, WINDOW, now) is None  # type: ignore[attr-defined]
        with lock:
            granted.append(ok)

    threads = [threading.Thread(target=take) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return sum(granted)


def test_two_replicas_sharing_redis_never_overspend(client: redis.Redis) -> None:
    key = f"test:{uuid.uuid4()}"
    # Two limiters with their own connections stand for two replicas.
    replicas = [RedisRateLimiter(redis.Redis(host="127.0.0.1", port=6379)) for _ in range(2)]
    barrier = threading.Barrier(40)
    granted: list[bool] = []
    lock = threading.Lock()
    now = datetime.now(UTC)

    def take(limiter: RedisRateLimiter) -> None:
        barrier.wait()
        ok = limiter.acquire(key, 25, WINDOW, now) is None
        with lock:
            granted.append(ok)

    threads = [threading.Thread(target=take, args=(replicas[i % 2],)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sum(granted) == 25
    assert not any(r.degraded for r in replicas)


def test_a_spent_budget_says_when_it_frees(client: redis.Redis) -> None:
    key = f"test:{uuid.uuid4()}"
    limiter = RedisRateLimiter(client)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert limiter.acquire(key, 2, WINDOW, start) is None
    assert limiter.acquire(key, 2, WINDOW, start + timedelta(minutes=1)) is None
    free_at = limiter.acquire(key, 2, WINDOW, start + timedelta(minutes=2))
    assert free_at == start + WINDOW  # when the oldest use leaves the window
    assert limiter.acquire(key, 2, WINDOW, start + WINDOW + timedelta(seconds=1)) is None


def test_redis_down_falls_back_in_process() -> None:
    dead = redis_client(SecretStr("redis://127.0.0.1:1/0"))
    limiter = RedisRateLimiter(dead, retry_interval=timedelta(minutes=1))
    now = datetime.now(UTC)
    assert limiter.acquire("k", 1, WINDOW, now) is None
    assert limiter.degraded
    started = time.monotonic()
    assert limiter.acquire("k", 1, WINDOW, now) is not None  # the fallback still counts
    assert time.monotonic() - started < 0.1  # Redis is not tried again at once


def test_in_process_limiter_is_exact_under_threads() -> None:
    assert _race(InProcessRateLimiter(), "k", 30, 64) == 30
