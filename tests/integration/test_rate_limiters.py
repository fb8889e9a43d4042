"""The rate limiter budgets: exact under concurrency, shared through real Redis; the
engine's face (take, release, room) and the request budget's (acquire, awaited) of
each limiter, in process and in Redis, held to one behaviour."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio
from pydantic import SecretStr

from post_management.adapters.rate_limit import (
    AsyncRedisRateLimiter,
    InProcessRateLimiter,
    RedisRateLimiter,
)
from post_management.bootstrap.infrastructure import redis_async_client, redis_client
from post_management.ports.publishing import (
    AsyncRateLimiter,
    Budget,
    RateLimiter,
    Refused,
    Taken,
)

WINDOW = timedelta(minutes=15)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    connection.ping()
    yield connection
    connection.close()


def async_client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis(host="127.0.0.1", port=6379, socket_timeout=2)


@pytest.fixture(params=["in_process", "redis"])
def awaited(request: pytest.FixtureRequest, client: redis.Redis) -> Iterator[AsyncRateLimiter]:
    """Each request budget's face (the per-caller budget awaited on the serving loop),
    held to one behaviour. Each test runs it on one event loop of its own."""
    if request.param == "in_process":
        yield InProcessRateLimiter().awaited()
        return
    prefix = f"test:{uuid.uuid4().hex}:"
    shared = RedisRateLimiter(client, prefix=prefix).awaited(async_client())
    yield shared
    assert not shared.degraded
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)


def test_a_spent_budget_says_when_it_frees(awaited: AsyncRateLimiter) -> None:
    key = f"test:{uuid.uuid4()}"
    start = datetime(2030, 1, 1, tzinfo=UTC)

    async def scenario() -> None:
        assert await awaited.acquire(key, 2, WINDOW, start) is None
        assert await awaited.acquire(key, 2, WINDOW, start + timedelta(minutes=1)) is None
        free_at = await awaited.acquire(key, 2, WINDOW, start + timedelta(minutes=2))
        assert free_at == start + WINDOW  # when the oldest use leaves the window
        later = start + WINDOW + timedelta(seconds=1)
        assert await awaited.acquire(key, 2, WINDOW, later) is None
        # Another key has its own budget.
        assert await awaited.acquire(f"{key}:other", 2, WINDOW, later) is None

    asyncio.run(_closing(awaited, scenario()))


def test_concurrent_acquisitions_are_exact(awaited: AsyncRateLimiter) -> None:
    key = f"test:{uuid.uuid4()}"
    now = datetime(2030, 1, 1, tzinfo=UTC)

    async def scenario() -> None:
        granted = await asyncio.gather(*(awaited.acquire(key, 30, WINDOW, now) for _ in range(64)))
        assert sum(free_at is None for free_at in granted) == 30
        assert all(free_at == now + WINDOW for free_at in granted if free_at is not None)

    asyncio.run(_closing(awaited, scenario()))


def test_the_request_budget_and_the_engine_count_against_the_same_budgets(
    client: redis.Redis,
) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    engine = RedisRateLimiter(client, prefix=prefix)
    requests = engine.awaited(async_client())
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert isinstance(engine.take((Budget("k", 2, WINDOW),), now), Taken)

    async def scenario() -> None:
        assert await requests.acquire("k", 2, WINDOW, now) is None
        assert await requests.acquire("k", 2, WINDOW, now) == now + WINDOW

    asyncio.run(_closing(requests, scenario()))
    assert engine.room(Budget("k", 2, WINDOW), now) == 0
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)


def test_two_replicas_sharing_redis_never_overspend(client: redis.Redis) -> None:
    key = f"test:{uuid.uuid4()}"
    # Two limiters with their own connections stand for two replicas.
    replicas = [
        RedisRateLimiter(redis.Redis(host="127.0.0.1", port=6379)).awaited(async_client())
        for _ in range(2)
    ]
    now = datetime.now(UTC)

    async def scenario() -> None:
        granted = await asyncio.gather(
            *(replicas[i % 2].acquire(key, 25, WINDOW, now) for i in range(40))
        )
        assert sum(free_at is None for free_at in granted) == 25
        for replica in replicas:
            await replica.close()

    asyncio.run(scenario())
    assert not any(r.degraded for r in replicas)


def test_redis_down_falls_back_in_process_for_both_faces() -> None:
    dead = SecretStr("redis://127.0.0.1:1/0")
    engine = RedisRateLimiter(redis_client(dead), retry_interval=timedelta(minutes=1))
    requests = engine.awaited(redis_async_client(dead))
    now = datetime.now(UTC)

    async def scenario() -> None:
        assert await requests.acquire("k", 1, WINDOW, now) is None
        assert requests.degraded and engine.degraded  # one outage for both faces
        started = time.monotonic()
        assert await requests.acquire("k", 1, WINDOW, now) is not None  # the fallback counts
        assert time.monotonic() - started < 0.1  # Redis is not tried again at once
        # The engine's face counts in the same fallback, without trying Redis either.
        assert engine.take((Budget("k", 1, WINDOW),), now) == Refused("k", now + WINDOW)
        assert time.monotonic() - started < 0.1

    asyncio.run(_closing(requests, scenario()))


def test_the_engines_face_falls_back_in_process_too() -> None:
    limiter = RedisRateLimiter(
        redis_client(SecretStr("redis://127.0.0.1:1/0")), retry_interval=timedelta(minutes=1)
    )
    now = datetime.now(UTC)
    assert isinstance(limiter.take((Budget("k", 1, WINDOW),), now), Taken)
    assert limiter.degraded
    started = time.monotonic()
    assert limiter.take((Budget("k", 1, WINDOW),), now) == Refused("k", now + WINDOW)
    assert time.monotonic() - started < 0.1


def test_in_process_limiter_is_exact_under_threads() -> None:
    limiter = InProcessRateLimiter()
    barrier = threading.Barrier(64)
    results: list[Taken | Refused] = []
    lock = threading.Lock()
    now = datetime.now(UTC)

    def take() -> None:
        barrier.wait()
        result = limiter.take((Budget("k", 30, WINDOW),), now)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=take) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sum(isinstance(r, Taken) for r in results) == 30


async def _closing(limiter: AsyncRateLimiter, scenario: Coroutine[Any, Any, None]) -> None:
    """The scenario, then the limiter's connections closed on the loop that made them."""
    try:
        await scenario
    finally:
        if isinstance(limiter, AsyncRedisRateLimiter):
            await limiter.close()


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


def test_a_request_whose_answer_was_lost_is_not_refused_by_its_own_unit(
    client: redis.Redis,
) -> None:
    """Redis took the unit but the connection died before its answer came back: the
    call tried again on a fresh connection must find its own unit taken, not count it
    against itself and be refused (nor take a second one)."""
    prefix = f"test:{uuid.uuid4().hex}:"
    requests = RedisRateLimiter(client, prefix=prefix).awaited(async_client())
    run = requests._take
    lost = []

    async def answer_lost(*args: Any, **kwargs: Any) -> Any:
        answer = await run(*args, **kwargs)
        if not lost:
            lost.append(answer)
            raise redis.ConnectionError("Connection closed by server.")
        return answer

    requests._take = answer_lost
    now = datetime.now(UTC)

    async def scenario() -> None:
        # The budget's last unit (of one): the lost answer's unit is the call's own.
        assert await requests.acquire("k", 1, WINDOW, now) is None
        assert lost  # the first answer was lost, and the call tried again
        assert client.zcard(prefix + "k") == 1  # one unit for one call
        assert await requests.acquire("k", 1, WINDOW, now) is not None  # now it is spent
        assert not requests.degraded

    try:
        asyncio.run(_closing(requests, scenario()))
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
