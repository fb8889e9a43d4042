"""GetPost and ListScheduledPosts on the memory reads: pages, tokens, counts, refusals
and the post cache's generation rule, without a database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.domain.auth import Principal, Role
from post_management.domain.errors import InvalidArgument, NotFound, PermissionDenied
from post_management.domain.post import Post, PostState, Priority
from post_management.domain.reasons import Reason
from post_management.services.posts.cache import PostCache
from post_management.services.posts.queries import PostQueries
from post_management.services.scheduling.listing import Paging, ScheduledFilter, ScheduledListing
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)
BOB = Principal("bob", Role.USER)


@pytest.fixture
def world() -> EngineWorld:
    return EngineWorld()


def _scheduled(world: EngineWorld, count: int) -> list[Post]:
    account = world.account()
    posts = [world.post(account, f"post {i}") for i in range(count)]
    with world.uow() as uow:
        for i, post in enumerate(posts):
            stored = uow.posts.get(post.id)
            assert stored is not None
            # Pairs share a due time: the id orders them.
            stored.scheduled_for = world.clock.now() + timedelta(hours=i // 2)
            stored.priority = Priority.HIGH if i % 3 == 0 else Priority.NORMAL
            uow.posts.save(stored, stored.version)
        uow.commit()
    return [world.get(post) for post in posts]


def _due_order(posts: list[Post]) -> list[uuid.UUID]:
    return [p.id for p in sorted(posts, key=lambda p: (p.scheduled_for, p.id))]


def test_pages_by_token_cover_every_post_once_in_due_order(world: EngineWorld) -> None:
    posts = _scheduled(world, 9)
    listing = ScheduledListing(world.post_reads)
    seen, token = [], ""
    while True:
        page = asyncio.run(listing.list(ALICE, ScheduledFilter("alice"), Paging(4, 0, token)))
        assert page.total_count == 9 and page.limit == 4
        seen += [p.id for p in page.posts]
        token = page.next_page_token
        if not token:
            break
    assert seen == _due_order(posts)


def test_offset_filters_and_an_empty_page_past_the_end(world: EngineWorld) -> None:
    posts = _scheduled(world, 6)
    listing = ScheduledListing(world.post_reads)
    page = asyncio.run(listing.list(ALICE, ScheduledFilter("alice"), Paging(2, 3)))
    assert [p.id for p in page.posts] == _due_order(posts)[3:5] and page.total_count == 6
    past = asyncio.run(listing.list(ALICE, ScheduledFilter("alice"), Paging(2, 50)))
    assert (past.posts, past.total_count, past.next_page_token) == ([], 6, "")
    high = asyncio.run(
        listing.list(ALICE, ScheduledFilter("alice", priority=Priority.HIGH), Paging())
    )
    assert {p.id for p in high.posts} == {p.id for p in posts if p.priority is Priority.HIGH}
    failed = asyncio.run(
        listing.list(ALICE, ScheduledFilter("alice", state=PostState.FAILED), Paging())
    )
    assert (failed.posts, failed.total_count) == ([], 0)


def test_refusals(world: EngineWorld) -> None:
    posts = _scheduled(world, 3)
    listing = ScheduledListing(world.post_reads)
    with pytest.raises(PermissionDenied):
        asyncio.run(listing.list(BOB, ScheduledFilter("alice"), Paging()))
    # A filter on another user's account is refused like the account itself.
    with pytest.raises(PermissionDenied):
        asyncio.run(
            listing.list(BOB, ScheduledFilter("bob", account_id=posts[0].account_id), Paging())
        )
    # An account that does not exist: an empty page.
    empty = asyncio.run(
        listing.list(ALICE, ScheduledFilter("alice", account_id=uuid.uuid4()), Paging())
    )
    assert empty.total_count == 0
    for paging, field in (
        (Paging(limit=-1), "limit"),
        (Paging(offset=-1), "offset"),
        (Paging(offset=2, page_token="x"), "page_token"),
    ):
        with pytest.raises(InvalidArgument) as refused:
            asyncio.run(listing.list(ALICE, ScheduledFilter("alice"), paging))
        assert refused.value.violations[0].field == field
    first = asyncio.run(listing.list(ALICE, ScheduledFilter("alice"), Paging(1)))
    # A token of one filter is refused by another.
    with pytest.raises(InvalidArgument) as other:
        asyncio.run(
            listing.list(
                ALICE,
                ScheduledFilter("alice", priority=Priority.HIGH),
                Paging(1, 0, first.next_page_token),
            )
        )
    assert other.value.reason == Reason.PAGE_TOKEN_MISMATCH


def test_get_post_reads_through_the_cache_by_generation(world: EngineWorld) -> None:
    [post] = _scheduled(world, 1)
    cache = PostCache(AwaitedInProcessCache(InProcessCache()), ttl_seconds=60)
    queries = PostQueries(world.post_reads, cache)
    assert asyncio.run(queries.get(ALICE, post.id)) == post
    with world.uow() as uow:
        stored = uow.posts.get(post.id)
        assert stored is not None
        stored.text = "edited"
        uow.posts.save(stored, stored.version)
        uow.commit()
    # Nothing told the cache (no generation change): the entry still answers.
    assert asyncio.run(queries.get(ALICE, post.id)).text == post.text
    asyncio.run(cache.invalidate_all())  # what every committed post write does
    assert asyncio.run(queries.get(ALICE, post.id)).text == "edited"
    with pytest.raises(PermissionDenied):
        asyncio.run(queries.get(BOB, post.id))
    with pytest.raises(NotFound):
        asyncio.run(PostQueries(world.post_reads, None).get(ALICE, uuid.uuid4()))
