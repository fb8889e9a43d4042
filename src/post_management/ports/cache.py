"""The cache ports: serialised values with a TTL, for every read path that caches
answers (posts by id, analytics); `ports.analytics` re-exports them. The same cache
has two faces: `Cache` for the background jobs' threads, `AsyncCache` awaited on the
serving loop (a cache behind the network must not stall it)."""

from __future__ import annotations

from typing import Protocol


class Cache(Protocol):
    """A TTL cache of serialised answers. Failures read as misses."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_seconds: float) -> None: ...

    def delete(self, *keys: str) -> None: ...


class AsyncCache(Protocol):
    """Cache, awaited: the request path's face of the same entries."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: float) -> None: ...

    async def delete(self, *keys: str) -> None: ...
