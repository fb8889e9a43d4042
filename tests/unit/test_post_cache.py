"""The post cache's codec and generations, the post-write detector, and the
failover cache, without servers (a fake Redis client that can be switched off)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import redis

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.adapters.db.post_writes import writes_posts
from post_management.adapters.shared_cache import FailoverCache
from post_management.domain.post import Post, PostState, Priority
from post_management.services.posts.cache import (
    GENERATION_KEY,
    PostCache,
    PostGenerations,
    decode_post,
    encode_post,
)


def _full_post() -> Post:
    """Every field away from its default, so a field the codec mishandles shows."""
    now = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    return Post(
        id=uuid.uuid4(),
        user_id="alice",
        account_id=uuid.uuid4(),
        text="héllo 👋",
        created_at=now,
        updated_at=now,
        media_ids=["1", "2"],
        reply_to_x_post_id="99",
        attachment_ids=[uuid.uuid4()],
        thread=["two", "three"],
        segment_x_post_ids=["5", "6"],
        state=PostState.PUBLISHED,
        priority=Priority.URGENT,
        scheduled_for=now,
        timezone="Europe/Paris",
        published_at=now,
        x_post_id="5",
        attempt_count=2,
        last_error="boom",
        version=7,
    )


def test_codec_round_trips_every_field_through_json() -> None:
    post = _full_post()
    again = decode_post(json.loads(json.dumps(encode_post(post))))
    assert again == post
    assert isinstance(again.state, PostState) and isinstance(again.priority, Priority)
    assert again.scheduled_for is not None and again.scheduled_for.tzinfo is not None


def test_codec_keeps_absent_optionals() -> None:
    post = _full_post()
    post.scheduled_for = None
    post.published_at = None
    assert decode_post(json.loads(json.dumps(encode_post(post)))) == post


def _posts(cache: InProcessCache) -> PostCache:
    return PostCache(AwaitedInProcessCache(cache), ttl_seconds=60)


async def _stored(posts: PostCache) -> tuple[Post, str]:
    """A post read (a miss) and stored under the generation that read took."""
    post = _full_post()
    _, generation = await posts.read(post.id)
    await posts.store(post, generation)
    return post, generation


async def test_entry_of_an_older_generation_is_a_miss() -> None:
    posts = _posts(InProcessCache())
    post = _full_post()
    found, generation = await posts.read(post.id)
    assert found is None
    await posts.store(post, generation)
    assert (await posts.read(post.id))[0] == post
    await posts.invalidate_all()
    assert (await posts.read(post.id))[0] is None


async def test_the_jobs_generations_drop_the_request_paths_entries() -> None:
    cache = InProcessCache()
    posts = _posts(cache)
    post, _ = await _stored(posts)
    PostGenerations(cache).invalidate_all()  # the engine committed a post write
    assert (await posts.read(post.id))[0] is None


async def test_a_read_that_raced_a_write_stores_a_dead_entry() -> None:
    posts = _posts(InProcessCache())
    post = _full_post()
    _, generation = await posts.read(post.id)  # token taken before the database read
    await posts.invalidate_all()  # a write commits meanwhile
    await posts.store(post, generation)  # the (old) row read before that commit
    assert (await posts.read(post.id))[0] is None


async def test_unreadable_entry_is_a_miss_and_is_dropped() -> None:
    cache = InProcessCache()
    posts = _posts(cache)
    post, generation = await _stored(posts)
    key = next(k for k in cache._entries if k.startswith("post:"))
    cache.set(key, '{"generation": "' + generation + '", "post": {"id": "nope"}}', 60)
    assert (await posts.read(post.id))[0] is None
    assert cache.get(key) is None


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE posts SET text = %(text)s WHERE posts.id = %(id_1)s", True),
        ("UPDATE posts p SET state = 'PUBLISHING' FROM chosen", True),
        ("WITH s AS (SELECT 1) UPDATE public.posts SET x = 1", True),
        ("DELETE FROM posts WHERE posts.id = %(id_1)s", True),
        ("TRUNCATE posts, accounts CASCADE", True),
        ("INSERT INTO posts (id) VALUES (%(id)s)", False),
        ("INSERT INTO posts (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET text = 'x'", True),
        ("SELECT * FROM posts p FOR UPDATE OF p SKIP LOCKED", False),
        ("UPDATE post_attempts SET outcome = 'ok'", False),
        ("UPDATE accounts SET state = 'SUSPENDED'", False),
    ],
)
def test_post_write_detection(statement: str, expected: bool) -> None:
    assert writes_posts(statement) is expected


class SwitchableRedis:
    """The three commands the cache uses; raises ConnectionError while down."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.up = True
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if not self.up:
            raise redis.ConnectionError("down")

    def get(self, key: str) -> str | None:
        self._check()
        return self.data.get(key)

    def set(self, key: str, value: str, px: int) -> None:
        self._check()
        self.data[key] = value

    def delete(self, *keys: str) -> None:
        self._check()
        for key in keys:
            self.data.pop(key, None)

    def ping(self) -> bool:
        self._check()
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _failover(client: SwitchableRedis, clock: Clock) -> FailoverCache:
    return FailoverCache(client, InProcessCache, retry_after=1.0, monotonic=clock)  # type: ignore[arg-type]


def test_failover_cache_falls_back_retries_later_and_recovers() -> None:
    client, clock = SwitchableRedis(), Clock()
    cache = _failover(client, clock)
    recovered: list[bool] = []
    cache.on_recovery(lambda: recovered.append(True))
    cache.set("k", "shared", 60)
    assert client.data == {"pm:cache:k": "shared"}

    client.up = False
    assert cache.get("k") is None  # Redis is the only holder of "shared"
    assert cache.degraded and cache.last_error == "ConnectionError"
    calls = client.calls
    cache.set("k", "local", 60)
    assert cache.get("k") == "local"  # served in process
    assert client.calls == calls  # no Redis attempt inside the retry window

    clock.now += 1.5
    assert cache.get("k") == "local"  # one attempt, failed again
    assert client.calls == calls + 1

    client.up = True
    clock.now += 1.5
    assert cache.get("k") == "shared"
    assert not cache.degraded and recovered == [True]
    # The in-process copies are gone, so a later outage cannot serve them.
    client.up = False
    clock.now += 10
    assert cache.get("k") is None


def test_fallback_entries_live_briefly() -> None:
    client, clock = SwitchableRedis(), Clock()
    client.up = False
    cache = _failover(client, clock)
    cache.set("k", "v", 3600)
    fallback = cache._state.fallback
    assert isinstance(fallback, InProcessCache)
    expires, _ = fallback._entries["k"]
    assert expires - fallback._now() <= 5.0


def test_probe_reports_and_drives_recovery() -> None:
    client, clock = SwitchableRedis(), Clock()
    cache = _failover(client, clock)
    client.up = False
    assert cache.probe() is False and cache.degraded
    client.up = True
    assert cache.probe() is True and not cache.degraded


class SwitchableAsyncRedis:
    """SwitchableRedis's commands, awaited, on the same data and switch; `stale`
    connections each fail one command, as a pooled connection does after a restart."""

    def __init__(self, sync: SwitchableRedis) -> None:
        self.sync = sync
        self.stale = 0

    async def get(self, key: str) -> str | None:
        if self.stale:
            self.stale -= 1
            self.sync.calls += 1
            raise redis.ConnectionError("Connection closed by server.")
        return self.sync.get(key)

    async def set(self, key: str, value: str, px: int) -> None:
        self.sync.set(key, value, px)

    async def delete(self, *keys: str) -> None:
        self.sync.delete(*keys)

    async def aclose(self) -> None:
        pass


async def test_both_faces_share_the_outage_and_the_fallback() -> None:
    client, clock = SwitchableRedis(), Clock()
    cache = _failover(client, clock)
    awaited = cache.awaited(SwitchableAsyncRedis(client))  # type: ignore[arg-type]
    recovered: list[bool] = []
    cache.on_recovery(lambda: recovered.append(True))
    await awaited.set("k", "shared", 60)
    assert cache.get("k") == "shared" and client.data == {"pm:cache:k": "shared"}

    client.up = False
    assert await awaited.get("k") is None  # the request path meets the outage
    assert cache.degraded and cache.last_error == "ConnectionError"
    calls = client.calls
    cache.set("g", "from a job", 60)  # inside the retry window: in process, no attempt
    assert await awaited.get("g") == "from a job"
    await awaited.delete("g")
    assert cache.get("g") is None
    assert client.calls == calls

    client.up = True
    clock.now += 1.5
    await awaited.set("k", "again", 60)
    assert not cache.degraded and recovered == [True]
    assert cache.get("k") == "again"


async def test_a_connection_that_outlived_a_restart_is_retried_once_not_an_outage() -> None:
    client, clock = SwitchableRedis(), Clock()
    cache = _failover(client, clock)
    async_client = SwitchableAsyncRedis(client)
    awaited = cache.awaited(async_client)  # type: ignore[arg-type]
    cache.set("k", "shared", 60)
    async_client.stale = 1
    assert await awaited.get("k") == "shared"
    assert not cache.degraded
    # In an outage the first error is final: one attempt per retry window.
    client.up = False
    assert await awaited.get("k") is None and cache.degraded
    calls = client.calls
    clock.now += 1.5
    assert await awaited.get("k") is None
    assert client.calls == calls + 1


@pytest.mark.parametrize("face", ["awaited", "jobs"])
async def test_the_read_that_finds_redis_back_serves_no_entry_from_before_the_outage(
    face: str,
) -> None:
    """A post cached in Redis, changed while Redis was down (the new generation only
    in process): the very read that finds Redis back must not serve the old entry.
    The recovery renews the generation in Redis; the generation that read took
    before it (the old one) must not count."""
    client, clock = SwitchableRedis(), Clock()
    cache = _failover(client, clock)
    awaited = cache.awaited(SwitchableAsyncRedis(client))  # type: ignore[arg-type]
    cache.on_recovery(PostGenerations(cache).invalidate_all)
    posts = PostCache(awaited, 60)
    post = _full_post()
    cached, generation = await posts.read(post.id)
    assert cached is None
    await posts.store(post, generation)
    assert (await posts.read(post.id))[0] == post  # served from Redis

    client.up = False
    assert await awaited.get("anything") is None and cache.degraded
    await posts.invalidate_all()  # the post is written during the outage

    client.up = True
    clock.now += 1.5
    if face == "jobs":  # a background job's read finds Redis back: the renewed token
        assert cache.get(GENERATION_KEY) not in (None, generation)
        assert not cache.degraded
    found, fresh = await posts.read(post.id)
    assert found is None  # not the row from before the outage
    assert fresh != generation and not cache.degraded
