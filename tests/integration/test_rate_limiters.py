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
from post_management.bootstrap.infrastructure import redis_client
from post_management.ports.publishing import Budget, RateLimiter, Refused, Taken

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


@pytest.fixture(params=["in_process", "redis"])
def limiter(request: pytest.FixtureRequest, client: redis.Redis) -> Iterator[RateLimiter]:
    """Each implementation, so both are held to the same behaviour."""
    if request.param == "in_process":
        yield InProcessRateLimiter()
        return
    prefix = f"test:{uuid.uuid4().hex}:"
    shared = RedisRateLimiter(client, prefix=prefix)
    yield shared
    assert not shared.degraded
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)


def test_take_is_all_or_nothing(limiter: RateLimiter) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    user, app = Budget("user", 2, WINDOW), Budget("app", 1, timedelta(hours=24))
    assert isinstance(limiter.take((user, app), now), Taken)
    refused = limiter.take((user, app), now + timedelta(seconds=1))
    assert refused == Refused("app", now + timedelta(hours=24))
    # The refusal by the app's budget left the user's second unit in place.
    assert limiter.room(user, now + timedelta(seconds=2)) == 1
    assert isinstance(limiter.take((user,), now + timedelta(seconds=2)), Taken)
    assert limiter.room(user, now + timedelta(seconds=2)) == 0
    assert limiter.room(user, now + WINDOW + timedelta(seconds=1)) == 1
    assert limiter.room(user, now + WINDOW + timedelta(seconds=3)) == 2


def test_release_gives_back_exactly_the_units_taken(limiter: RateLimiter) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    user, app = Budget("user", 3, WINDOW), Budget("app", 3, WINDOW)
    kept = limiter.take((user, app), now)
    unused = limiter.take((user, app), now)
    assert isinstance(kept, Taken) and isinstance(unused, Taken)
    limiter.release(unused)
    limiter.release(unused)  # a second release changes nothing
    assert limiter.room(user, now) == 2
    assert limiter.room(app, now) == 2
    # The kept unit still counts, and leaves the window at its own time.
    assert isinstance(limiter.take((app,), now + timedelta(seconds=1)), Taken)
    assert isinstance(limiter.take((app,), now + timedelta(seconds=1)), Taken)
    assert limiter.take((app,), now + timedelta(seconds=2)) == Refused("app", now + WINDOW)


def test_concurrent_takes_never_overspend_the_shared_budget(limiter: RateLimiter) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    app = Budget("app", 10, WINDOW)
    barrier = threading.Barrier(32)
    results: list[Taken | Refused] = []
    lock = threading.Lock()

    def take(index: int) -> None:
        barrier.wait()
        result = limiter.take((Budget(f"user:{index}", 5, WINDOW), app), now)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    taken = [r for r in results if isinstance(r, Taken)]
    assert len(taken) == 10
    assert all(r == Refused("app", now + WINDOW) for r in results if isinstance(r, Refused))
    # A refused caller's user budget kept all its units.
    refused_users = set(range(32)) - {int(t.keys[0].split(":")[1]) for t in taken}
    assert all(limiter.room(Budget(f"user:{i}", 5, WINDOW), now) == 5 for i in refused_users)
