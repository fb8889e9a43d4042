"""The in-process cache: expiry and least-recently-used eviction."""

from __future__ import annotations

from post_management.adapters.cache import InProcessCache


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
