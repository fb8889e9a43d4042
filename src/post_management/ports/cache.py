"""The one cache port: serialised values with a TTL, for every read path that
caches answers (posts by id, analytics); `ports.analytics` re-exports it."""

from __future__ import annotations

from typing import Protocol


class Cache(Protocol):
    """A TTL cache of serialised answers. Failures read as misses."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_seconds: float) -> None: ...

    def delete(self, *keys: str) -> None: ...
