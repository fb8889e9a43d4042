"""The two X clients under test as one create-post call each: the synchronous
TweepyXApi and the dispatcher's asynchronous TweepyXPoster, so that the outcomes both
must give alike are checked by one test (tests/integration/test_x_create_post.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from post_management.adapters.x import TweepyXApi, TweepyXPoster, XClientSettings
from post_management.ports.x_api import NewPost, PublishOutcome, XCredentials

ALICE = XCredentials("alice-access-token", "alice-access-secret")
BOB = XCredentials("bob-access-token", "bob-access-secret")
T = TypeVar("T")


class CreatePost(Protocol):
    """One create-post call through the client under test."""

    def __call__(self, text: str, creds: XCredentials = ALICE) -> PublishOutcome: ...


def run(poster: TweepyXPoster, call: Callable[[TweepyXPoster], Awaitable[T]]) -> T:
    """One call on a loop of its own, then the session closed on that loop."""

    async def once() -> T:
        try:
            return await call(poster)
        finally:
            await poster.aclose()

    return asyncio.run(once())


def post(
    poster: TweepyXPoster, text: str, creds: XCredentials = ALICE, **fields: object
) -> PublishOutcome:
    return run(poster, lambda p: p.create_post(creds, NewPost(text, **fields)))  # type: ignore[arg-type]


@contextmanager
def through_api(settings: XClientSettings) -> Iterator[CreatePost]:
    api = TweepyXApi(settings)
    try:
        yield lambda text, creds=ALICE: api.create_post(creds, NewPost(text))
    finally:
        api.close()


@contextmanager
def through_poster(settings: XClientSettings) -> Iterator[CreatePost]:
    poster = TweepyXPoster(settings)
    yield lambda text, creds=ALICE: post(poster, text, creds)
