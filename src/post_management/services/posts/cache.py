"""Posts by id, cached as JSON behind a generation token.

Every committed write to the posts table replaces the generation token (the
composition root hooks `invalidate_all` onto the database engine), and an entry
only counts when it carries the current token. A reader takes the token before
it reads the database and stores its entry under that token, so a write that
commits during the read makes the entry stale at once. This costs a second
cache lookup per read and drops every entry on any post write, which keeps it
correct for writers that never name the posts they change (bulk claims,
settlements in raw SQL). The TTL bounds what no token can see: writes from
processes that cannot reach the same cache.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import types
import typing
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from post_management.domain.post import Post
from post_management.ports.cache import AsyncCache, Cache

log = logging.getLogger(__name__)

GENERATION_KEY = "posts:generation"
# Longer than any entry: an expired token only costs misses.
GENERATION_TTL_SECONDS = 86400.0

_HINTS = typing.get_type_hints(Post)
# The content screen's notes (Post.screening) are for writes, which never start from
# a cached post: they are not cached.
_FIELDS = [f.name for f in dataclasses.fields(Post) if f.name != "screening"]
# Replicas of another build (a rolling deploy) may shape Post differently: they
# use other keys instead of misreading each other's entries.
SCHEMA = hashlib.sha256(repr([(name, str(_HINTS[name])) for name in _FIELDS]).encode()).hexdigest()[
    :12
]


class PostCache:
    """The cache's entries for GetPost, awaited on the serving loop."""

    def __init__(self, cache: AsyncCache, ttl_seconds: float) -> None:
        self._cache = cache
        self._ttl = ttl_seconds

    async def read(self, post_id: UUID) -> tuple[Post | None, str]:
        """The cached post or None, and the generation to store a fresh read under."""
        generation = await self._cache.get(GENERATION_KEY)
        if generation is None:
            generation = await self.invalidate_all()
        raw = await self._cache.get(_key(post_id))
        if raw is None:
            return None, generation
        try:
            entry = json.loads(raw)
            if entry["generation"] != generation:
                return None, generation
            return decode_post(entry["post"]), generation
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable post cache entry dropped: %s", type(exc).__name__)
            await self._cache.delete(_key(post_id))
            return None, generation

    async def store(self, post: Post, generation: str) -> None:
        entry = {"generation": generation, "post": encode_post(post)}
        await self._cache.set(_key(post.id), json.dumps(entry, separators=(",", ":")), self._ttl)

    async def forget(self, post_id: UUID) -> None:
        await self._cache.delete(_key(post_id))

    async def invalidate_all(self) -> str:
        """Start a new generation; every entry stored so far stops counting."""
        generation = new_generation()
        await self._cache.set(GENERATION_KEY, generation, GENERATION_TTL_SECONDS)
        return generation


class PostGenerations:
    """The same generations from the background jobs' threads: a committed post write
    of the engine's starts a new one."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def invalidate_all(self) -> str:
        generation = new_generation()
        self._cache.set(GENERATION_KEY, generation, GENERATION_TTL_SECONDS)
        return generation


def new_generation() -> str:
    return uuid.uuid4().hex


def _key(post_id: UUID) -> str:
    return f"post:{SCHEMA}:{post_id}"


def encode_post(post: Post) -> dict[str, Any]:
    return {name: encode(getattr(post, name)) for name, encode in _ENCODERS}


def decode_post(data: dict[str, Any]) -> Post:
    return Post(**{name: decode(data[name]) for name, decode in _DECODERS})


def _field_encoder(hint: Any) -> Callable[[Any], Any]:
    """`_encode` for one field's type, chosen once instead of by isinstance per value
    (the entry is stored on every miss of GetPost). The same output as `_encode`."""
    if hint in (str, int, bool):
        return lambda value: value if type(value) is hint else _encode(value)
    if hint is UUID:
        return lambda value: str(value) if type(value) is UUID else _encode(value)
    if hint is datetime:
        return lambda value: value.isoformat() if type(value) is datetime else _encode(value)
    if hint == datetime | None:
        return lambda value: (
            None
            if value is None
            else value.isoformat()
            if type(value) is datetime
            else _encode(value)
        )
    if hint == list[str]:
        return lambda value: list(value) if all(type(v) is str for v in value) else _encode(value)
    return _encode


def _field_decoder(hint: Any) -> Callable[[Any], Any]:
    """`_decode` for one field's type, its type hint taken apart once."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        decode_inner = _field_decoder(inner)
        return lambda raw: None if raw is None else decode_inner(raw)
    if origin is list:
        (item,) = typing.get_args(hint)
        decode_item = _field_decoder(item)

        def decode_list(raw: Any) -> list[Any]:
            if not isinstance(raw, list):
                raise TypeError("expected a list")
            return [decode_item(value) for value in raw]

        return decode_list
    if isinstance(hint, type) and hint in (str, int, float, bool):

        def decode_plain(raw: Any) -> Any:
            if isinstance(raw, hint):
                return raw
            raise TypeError(f"cannot read {hint!r} from the cache")

        return decode_plain
    return lambda raw: _decode(hint, raw)


def _encode(value: object) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode(hint: Any, raw: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if raw is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(inner, raw)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(raw, list):
            raise TypeError("expected a list")
        return [_decode(item, value) for value in raw]
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return hint(raw)
        if hint is UUID:
            return UUID(raw)
        if hint is datetime:
            return datetime.fromisoformat(raw)
        if hint in (str, int, float, bool) and isinstance(raw, hint):
            return raw
    raise TypeError(f"cannot read {hint!r} from the cache")


_ENCODERS = [(name, _field_encoder(_HINTS[name])) for name in _FIELDS]
_DECODERS = [(name, _field_decoder(_HINTS[name])) for name in _FIELDS]
