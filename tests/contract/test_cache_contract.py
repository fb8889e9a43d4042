"""The cache ports (ports/cache.py): the in-process cache and the Redis-backed failover
cache answer alike, through the background jobs' face and the request path's, and the
two faces of one cache see the same entries."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from pydantic import SecretStr

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.adapters.shared_cache import FailoverCache
from post_management.bootstrap.infrastructure import redis_async_client, redis_client
from post_management.ports.cache import AsyncCache, Cache

REDIS_URL = SecretStr("redis://127.0.0.1:6379/0")


@dataclass
class Faces:
    name: str
    jobs: Cache
    requests: AsyncCache


@pytest.fixture(params=["in-process", "redis"])
def faces(request: pytest.FixtureRequest) -> Iterator[Faces]:
    if request.param == "in-process":
        local = InProcessCache()
        yield Faces("in-process", local, AwaitedInProcessCache(local))
        return
    client = redis_client(REDIS_URL)
    client.ping()  # the machine's Redis: a missing one fails here, it is not skipped
    prefix = f"pm:contract:{uuid.uuid4().hex}:"
    shared = FailoverCache(client, InProcessCache, prefix=prefix)
    yield Faces("redis", shared, shared.awaited(redis_async_client(REDIS_URL)))
    # Served by Redis throughout, not by the in-process fallback it hides behind.
    assert not shared.degraded
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def run(faces: Faces, scenario: object) -> None:
    async def opened() -> None:
        try:
            await scenario(faces.requests)  # type: ignore[operator]
        finally:
            close = getattr(faces.requests, "close", None)
            if close is not None:
                await close()

    asyncio.run(opened())


def test_set_get_delete_through_the_jobs_face(faces: Faces) -> None:
    cache = faces.jobs
    assert cache.get("a") is None
    cache.set("a", "1", 60)
    cache.set("b", "2 é", 60)
    assert (cache.get("a"), cache.get("b")) == ("1", "2 é")
    cache.set("a", "3", 60)  # a set replaces
    assert cache.get("a") == "3"
    cache.delete("a", "b", "never-there")
    assert (cache.get("a"), cache.get("b")) == (None, None)
    cache.delete()  # nothing to drop: no error


def test_set_get_delete_awaited(faces: Faces) -> None:
    async def scenario(cache: AsyncCache) -> None:
        assert await cache.get("a") is None
        await cache.set("a", "1", 60)
        await cache.set("b", '{"json": true}', 60)
        assert (await cache.get("a"), await cache.get("b")) == ("1", '{"json": true}')
        await cache.delete("a", "never-there")
        assert (await cache.get("a"), await cache.get("b")) == (None, '{"json": true}')
        await cache.delete()

    run(faces, scenario)


def test_entries_expire_after_their_ttl(faces: Faces) -> None:
    async def scenario(cache: AsyncCache) -> None:
        await cache.set("short", "v", 0.2)
        faces.jobs.set("short-too", "v", 0.2)
        assert await cache.get("short") == "v"
        await asyncio.sleep(0.5)
        assert await cache.get("short") is None
        assert faces.jobs.get("short-too") is None

    run(faces, scenario)


def test_both_faces_see_the_same_entries(faces: Faces) -> None:
    async def scenario(cache: AsyncCache) -> None:
        faces.jobs.set("from-jobs", "j", 60)
        assert await cache.get("from-jobs") == "j"
        await cache.set("from-requests", "r", 60)
        assert faces.jobs.get("from-requests") == "r"
        faces.jobs.delete("from-requests")
        assert await cache.get("from-requests") is None

    run(faces, scenario)


def test_redis_down_reads_as_misses_and_keeps_entries_in_process() -> None:
    """The failover cache on a Redis that is not there: no error reaches the caller,
    either face, and what is set meanwhile is served from the process."""
    gone = SecretStr("redis://127.0.0.1:1/0")  # nothing listens on port 1
    shared = FailoverCache(redis_client(gone), InProcessCache, retry_after=60)

    async def scenario() -> None:
        awaited = shared.awaited(redis_async_client(gone))
        try:
            began = time.monotonic()
            assert await awaited.get("k") is None
            assert shared.degraded
            await awaited.set("k", "local", 60)
            assert shared.get("k") == "local" and await awaited.get("k") == "local"
            assert time.monotonic() - began < 2.0  # one failed attempt, then in process
        finally:
            await awaited.close()

    asyncio.run(scenario())
    with pytest.raises(redis.ConnectionError):
        redis_client(gone).ping()
