"""The request path's reads (ports/post_reads.py): GetPost's and ListScheduledPosts'
answers from the memory twin and from psycopg over PostgreSQL, committed rows only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from post_management.domain.post import PostState, Priority
from post_management.ports.schedule_queries import DueCursor, ScheduledQuery
from tests.contract.builders import a_post, an_account, store, stored_post
from tests.contract.conftest import PostReads, World


def run(world: World, scenario: Callable[[PostReads], Awaitable[None]]) -> None:
    async def opened() -> None:
        async with world.post_reads() as reads:
            await scenario(reads)

    asyncio.run(opened())


def test_get_answers_the_stored_post_or_none(world: World) -> None:
    _, post = stored_post(world.uow, world.time.now(), priority=Priority.HIGH)

    async def scenario(reads: PostReads) -> None:
        found = await reads.get(post.id)
        assert found == post
        assert found is not None and found.priority is Priority.HIGH
        found.text = "changed by the caller"  # a copy: the next read is unchanged
        assert (await reads.get(post.id)) == post
        assert await reads.get(uuid.uuid4()) is None

    run(world, scenario)


def test_account_owner(world: World) -> None:
    account = an_account(world.time.now(), user_id="carol")
    store(world.uow, account)

    async def scenario(reads: PostReads) -> None:
        assert await reads.account_owner(account.id) == "carol"
        assert await reads.account_owner(uuid.uuid4()) is None

    run(world, scenario)


def test_reads_see_only_committed_rows(world: World) -> None:
    _, post = stored_post(world.uow, world.time.now())

    async def scenario(reads: PostReads) -> None:
        async with world.async_uow() as units:
            async with units() as work:
                loaded = await work.posts.get(post.id, for_update=True)
                assert loaded is not None
                loaded.text = "not committed yet"
                assert await work.posts.save(loaded, loaded.version)
                # The memory twin waits for the unit to end; PostgreSQL answers the
                # committed row at once. Either way, never the uncommitted text.
                read = asyncio.ensure_future(reads.get(post.id))
                await asyncio.sleep(0.05)
                if read.done():
                    seen = read.result()
                    assert seen is not None and seen.text == post.text
                await work.commit()
            seen = await read
            if world.name == "memory":
                # It waited for the unit: what it read is what the unit committed.
                assert seen is not None and seen.text == "not committed yet"
            else:
                # Sent before the COMMIT on a slow machine's connection, or after it.
                assert seen is not None and seen.text in {post.text, "not committed yet"}
        after = await reads.get(post.id)
        assert after is not None and after.text == "not committed yet"

    run(world, scenario)


def test_scheduled_page_in_due_order_with_filters_and_count(world: World) -> None:
    now = world.time.now()
    account, other_account = an_account(now), an_account(now)
    later = a_post(account, now, due_in=timedelta(hours=2), priority=Priority.HIGH)
    soon = a_post(account, now, due_in=timedelta(hours=1))
    past = a_post(account, now, due_in=timedelta(hours=-5))
    elsewhere = a_post(other_account, now, due_in=timedelta(hours=3))
    failed = a_post(account, now, due_in=timedelta(hours=4), state=PostState.FAILED)
    draft = a_post(account, now, due_in=None, state=PostState.DRAFT)
    theirs_account = an_account(now, user_id="bob")
    theirs = a_post(theirs_account, now, due_in=timedelta(hours=1))
    store(world.uow, account, other_account, theirs_account)
    store(world.uow, later, soon, past, elsewhere, failed, draft, theirs)

    async def scenario(reads: PostReads) -> None:
        async def ids(
            query: ScheduledQuery, after: DueCursor | None = None, offset: int = 0, limit: int = 10
        ) -> tuple[list[uuid.UUID], int]:
            posts, total = await reads.scheduled_page(query, after, offset, limit)
            return [p.id for p in posts], total

        scheduled = ScheduledQuery("alice", PostState.SCHEDULED)
        assert await ids(scheduled) == ([past.id, soon.id, later.id, elsewhere.id], 4)
        assert await ids(scheduled, limit=2) == ([past.id, soon.id], 4)
        assert await ids(scheduled, offset=1, limit=2) == ([soon.id, later.id], 4)
        # After a cursor the count is still of the whole filter.
        cursor = DueCursor(soon.scheduled_for, soon.id)  # type: ignore[arg-type]
        assert await ids(scheduled, cursor) == ([later.id, elsewhere.id], 4)
        assert await ids(scheduled, cursor, offset=1) == ([elsewhere.id], 4)
        # A page past the end is empty and still counts them all.
        assert await ids(scheduled, offset=50) == ([], 4)
        assert await ids(scheduled, DueCursor(elsewhere.scheduled_for, elsewhere.id)) == ([], 4)  # type: ignore[arg-type]
        on_account = ScheduledQuery("alice", PostState.SCHEDULED, account_id=other_account.id)
        assert await ids(on_account) == ([elsewhere.id], 1)
        high = ScheduledQuery("alice", PostState.SCHEDULED, priority=Priority.HIGH)
        assert await ids(high) == ([later.id], 1)
        window = ScheduledQuery(
            "alice", PostState.SCHEDULED, start=soon.scheduled_for, end=later.scheduled_for
        )
        assert await ids(window) == ([soon.id], 1)  # [start, end)
        assert await ids(ScheduledQuery("alice", PostState.FAILED)) == ([failed.id], 1)
        assert await ids(ScheduledQuery("alice", PostState.DRAFT)) == ([], 0)  # no due time
        assert await ids(ScheduledQuery("nobody", PostState.SCHEDULED)) == ([], 0)
        found, _ = await reads.scheduled_page(high, None, 0, 1)
        assert found == [later]

    run(world, scenario)


def test_equal_due_times_are_ordered_by_id(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    twins = [a_post(account, now, due_in=timedelta(hours=1)) for _ in range(5)]
    for post in twins[1:]:
        post.scheduled_for = twins[0].scheduled_for
    store(world.uow, account, *twins)
    by_id = sorted(post.id for post in twins)

    async def scenario(reads: PostReads) -> None:
        query = ScheduledQuery("alice", PostState.SCHEDULED)
        first, total = await reads.scheduled_page(query, None, 0, 2)
        assert [p.id for p in first] == by_id[:2] and total == 5
        cursor = DueCursor(first[-1].scheduled_for, first[-1].id)  # type: ignore[arg-type]
        rest, _ = await reads.scheduled_page(query, cursor, 0, 10)
        assert [p.id for p in rest] == by_id[2:]

    run(world, scenario)
