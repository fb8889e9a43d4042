"""A cache wrapper that counts hits and misses (the hit ratio is computed in PromQL)."""

from __future__ import annotations

from prometheus_client import Counter

from post_management.observability.metrics import PREFIX
from post_management.ports.analytics import AsyncCache

CACHE_REQUESTS = Counter(
    PREFIX + "cache_requests_total",
    "Cache lookups by cache and result (hit, miss).",
    ["cache", "result"],
)


class CountedCache:
    """An AsyncCache whose lookups are counted (only the request path looks up)."""

    def __init__(self, inner: AsyncCache, name: str) -> None:
        self._inner = inner
        self._hit = CACHE_REQUESTS.labels(name, "hit")
        self._miss = CACHE_REQUESTS.labels(name, "miss")

    async def get(self, key: str) -> str | None:
        value = await self._inner.get(key)
        (self._miss if value is None else self._hit).inc()
        return value

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        await self._inner.set(key, value, ttl_seconds)

    async def delete(self, *keys: str) -> None:
        await self._inner.delete(*keys)
