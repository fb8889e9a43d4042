"""A cache wrapper that counts hits and misses (the hit ratio is computed in PromQL)."""

from __future__ import annotations

from prometheus_client import Counter

from post_management.observability.metrics import PREFIX
from post_management.ports.analytics import Cache

CACHE_REQUESTS = Counter(
    PREFIX + "cache_requests_total",
    "Cache lookups by cache and result (hit, miss).",
    ["cache", "result"],
)


class CountedCache:
    def __init__(self, inner: Cache, name: str) -> None:
        self._inner = inner
        self._hit = CACHE_REQUESTS.labels(name, "hit")
        self._miss = CACHE_REQUESTS.labels(name, "miss")

    def get(self, key: str) -> str | None:
        value = self._inner.get(key)
        (self._miss if value is None else self._hit).inc()
        return value

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        self._inner.set(key, value, ttl_seconds)

    def delete(self, *keys: str) -> None:
        self._inner.delete(*keys)
