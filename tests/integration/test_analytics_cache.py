"""The analytics cache adapters: expiry, deletion, and Redis on the machine's server."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from post_management.adapters.cache import InProcessCache, RedisCache


def test_in_process_entries_expire_and_the_oldest_go_first() -> None:
    now = [100.0]
    cache = InProcessCache(max_entries=2, monotonic=lambda: now[0])
    cache.set("a", "1", ttl_seconds=10)
    cache.set("b", "2", ttl_seconds=10)
    assert cache.get("a") == "1"  # a is now the most recently used
    cache.set("c", "3", ttl_seconds=10)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("1", None, "3")
    now[0] += 10
    assert cache.get("a") is None
    cache.set("d", "4", 10)
    cache.delete("d", "missing")
    assert cache.get("d") is None


def test_redis_cache_round_trip_expiry_and_outage() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("the development machine's Redis is not running on 127.0.0.1:6379")
    cache = RedisCache(client, prefix=f"test:{uuid.uuid4().hex}:")
    cache.set("k", "value", ttl_seconds=0.2)
    assert cache.get("k") == "value"
    time.sleep(0.3)
    assert cache.get("k") is None
    cache.set("k", "again", 60)
    cache.delete("k")
    assert cache.get("k") is None
    # No retries: the client's default back-off would only slow the test down.
    unreachable = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    down = RedisCache(unreachable)
    down.set("k", "v", 60)  # a Redis outage only costs the cache
    assert down.get("k") is None
