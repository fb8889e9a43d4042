"""The asynchronous unit of work (the request path's commands'): the same answers from the
memory twin and from psycopg over PostgreSQL, and the same rows as the synchronous
unit of work sees them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest

from post_management.domain.account import Account
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.campaigns import Campaign
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post, PostState, Priority
from post_management.domain.publishing import Settlement
from post_management.domain.x_spend import CallKind, Metered, Outcome, Purpose
from post_management.ports.analytics import (
    SOURCE_POLL,
    SOURCE_WEBHOOK,
    MeasuredPost,
    PublishedRef,
    TrendAlert,
)
from post_management.ports.async_unit_of_work import AsyncUnitOfWorkFactory
from post_management.ports.repositories import (
    AuditEntry,
    Cursor,
    DuplicateKey,
    IdempotencyRecord,
    PostFilter,
)
from post_management.ports.x_spend import SpendScope
from tests.contract.builders import a_post, an_account, published, snap, store, stored_post
from tests.contract.conftest import World


def run(world: World, scenario: Callable[[AsyncUnitOfWorkFactory], Awaitable[None]]) -> None:
    async def opened() -> None:
        async with world.async_uow() as factory:
            await scenario(factory)

    asyncio.run(opened())


def stored_draft(world: World) -> Post:
    """A draft of a new account, stored through the synchronous unit of work."""
    return stored_post(world.uow, world.time.now(), state=PostState.DRAFT, due_in=None)[1]


def published_pair(world: World, now: datetime) -> tuple[Account, Post, Post]:
    """A new account with a post published five hours before `now` and one at `now`,
    stored through the synchronous unit of work."""
    account = an_account(now)
    earlier, latest = published(account, now - timedelta(hours=5)), published(account, now)
    store(world.uow, account, earlier, latest)
    return account, earlier, latest


def test_a_commit_stays_and_leaving_without_one_undoes_everything(world: World) -> None:
    post = stored_draft(world)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            loaded = await work.posts.get(post.id)
            assert loaded is not None
            loaded.text = "not kept"
            assert await work.posts.save(loaded, 1)  # no commit
        with pytest.raises(RuntimeError):
            async with uow() as work:
                loaded = await work.posts.get(post.id, for_update=True)
                assert loaded is not None and loaded.text == post.text
                loaded.text = "not kept either"
                assert await work.posts.save(loaded, 1)
                raise RuntimeError("boom")
        async with uow() as work:
            loaded = await work.posts.get(post.id)
            assert loaded is not None
            loaded.text = "kept"
            assert await work.posts.save(loaded, 1)
            assert loaded.version == 2
            await work.commit()

    run(world, scenario)
    with world.uow() as uow:
        stored = uow.posts.get(post.id)
    assert stored is not None and (stored.text, stored.version) == ("kept", 2)


def test_a_save_over_a_stale_version_is_refused(world: World) -> None:
    post = stored_draft(world)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            loaded = await work.posts.get(post.id)
            assert loaded is not None
            assert await work.posts.save(loaded, 1)
            assert not await work.posts.save(loaded, 1)
            assert await work.posts.get(uuid.uuid4()) is None
            await work.commit()

    run(world, scenario)
    with world.uow() as uow:
        stored = uow.posts.get(post.id)
    assert stored is not None and stored.version == 2


def test_a_scheduled_posts_events_reach_the_outbox_at_commit_only(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    kept, dropped = (a_post(account, now, state=PostState.DRAFT, due_in=None) for _ in "ab")
    store(world.uow, account, kept, dropped)
    due = now + timedelta(hours=2)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            post = await work.posts.get(dropped.id)
            assert post is not None
            post.schedule(due, "UTC", Priority.NORMAL, now)
            assert await work.posts.save(post, 1)  # left without commit
        async with uow() as work:
            post = await work.posts.get(kept.id)
            assert post is not None
            post.schedule(due, "Europe/Paris", Priority.HIGH, now)
            assert await work.posts.save(post, 1)
            assert len(work.outbox) > 0  # recorded by the post, written at commit
            await work.commit()

    run(world, scenario)
    written = world.outbox()
    assert [e.event_type for e in written] == ["post.scheduled", "post.queue_added"]
    assert {e.aggregate_id for e in written} == {str(kept.id)}
    assert written[0].payload["scheduledFor"]
    with world.uow() as uow:
        stored = uow.posts.get(kept.id)
    assert stored is not None
    assert (stored.state, stored.scheduled_for, stored.timezone, stored.priority) == (
        PostState.SCHEDULED,
        due,
        "Europe/Paris",
        Priority.HIGH,
    )


def test_lock_with_post_answers_only_the_posts_owner(world: World) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now, state=PostState.DRAFT, due_in=None)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            locked = await work.accounts.lock_with_post(post.id, "alice")
            assert locked is not None
            found_account, found_post = locked
            assert (found_account.id, found_account.credentials) == (
                account.id,
                account.credentials,
            )
            assert (found_post.id, found_post.text, found_post.version) == (post.id, post.text, 1)
            assert await work.accounts.lock_with_post(post.id, "bob") is None
            assert await work.accounts.lock_with_post(uuid.uuid4(), "alice") is None
            again = await work.accounts.get(account.id, for_update=True)
            assert again is not None and again.handle == account.handle
            assert await work.accounts.get(uuid.uuid4()) is None

    run(world, scenario)


def test_idempotency_keys_audit_rows_and_a_twin_key(world: World) -> None:
    post = stored_draft(world)
    record = IdempotencyRecord("hash-1", post.id)
    entry = AuditEntry("user:alice", "post.schedule", "post", post.id, "alice", None, {"a": 1})

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            assert await work.idempotency.get("SchedulePost:alice", "r-1") is None
            await work.idempotency.put("SchedulePost:alice", "r-1", record)
            await work.audit.record(entry)
            # What the unit of work wrote, it reads back before its commit.
            assert await work.idempotency.get("SchedulePost:alice", "r-1") == record
            await work.commit()
        async with uow() as work:
            assert await work.idempotency.get("SchedulePost:alice", "r-1") == record
            assert await work.idempotency.get("SchedulePost:bob", "r-1") is None
        with pytest.raises(DuplicateKey):
            async with uow() as work:
                await work.idempotency.put("SchedulePost:alice", "r-1", record)
                await work.commit()

    run(world, scenario)
    assert world.audit(post.id) == [("user:alice", "post.schedule", {"a": 1})]
    with world.uow() as uow:
        assert uow.idempotency.get("SchedulePost:alice", "r-1") == record


def test_a_key_read_ahead_answers_as_a_key_read_now(world: World) -> None:
    post = stored_draft(world)
    record = IdempotencyRecord("hash-1", post.id)
    with world.uow() as uow:
        uow.idempotency.put("SchedulePost:alice", "known", record)
        uow.commit()

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            # Read with the next statement (the post's lock), then asked for.
            work.idempotency.read_ahead("SchedulePost:alice", "known")
            work.idempotency.read_ahead("SchedulePost:alice", "unknown")
            assert await work.posts.get(post.id, for_update=True) is not None
            assert await work.idempotency.get("SchedulePost:alice", "known") == record
            assert await work.idempotency.get("SchedulePost:alice", "unknown") is None
            # Asked for before any statement went: read then, the same answer.
            work.idempotency.read_ahead("SchedulePost:alice", "known")
            assert await work.idempotency.get("SchedulePost:alice", "known") == record
            # A key written by this unit, then read ahead: the read sees the write.
            await work.idempotency.put("SchedulePost:alice", "mine", record)
            work.idempotency.read_ahead("SchedulePost:alice", "mine")
            assert await work.posts.get(post.id) is not None
            assert await work.idempotency.get("SchedulePost:alice", "mine") == record
            # Read ahead and never asked for: the commit does not mind.
            work.idempotency.read_ahead("SchedulePost:alice", "never-asked")
            await work.commit()
        async with uow() as work:
            assert await work.idempotency.get("SchedulePost:alice", "mine") == record

    run(world, scenario)


def test_taken_times_in_time_order_without_drafts_or_the_excluded_post(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now)
    later = a_post(account, now, due_in=timedelta(hours=3))
    sooner = a_post(account, now, due_in=timedelta(hours=1))
    published = a_post(
        account, now, state=PostState.PUBLISHED, due_in=None, published_at=now - timedelta(hours=1)
    )
    old = a_post(account, now, due_in=-timedelta(days=30))
    draft = a_post(account, now, state=PostState.DRAFT, due_in=timedelta(hours=2))
    elsewhere = a_post(other, now, due_in=timedelta(hours=2))
    store(world.uow, account, other, later, sooner, published, old, draft, elsewhere)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            since = now - timedelta(days=1)
            taken = await work.schedule.taken_times(account.id, since)
            assert [t.post_id for t in taken] == [published.id, sooner.id, later.id]
            assert [t.text for t in taken] == [published.text, sooner.text, later.text]
            assert taken[1].at == sooner.scheduled_for
            but = await work.schedule.taken_times(account.id, since, exclude_post_id=sooner.id)
            assert [t.post_id for t in but] == [published.id, later.id]

    run(world, scenario)


def test_taken_times_read_ahead_beside_a_post_answer_as_read_now(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now)
    mine = a_post(account, now, due_in=timedelta(hours=5))
    sooner = a_post(account, now, due_in=timedelta(hours=1))
    edge = a_post(account, now, due_in=timedelta(minutes=-90))
    elsewhere = a_post(other, now, due_in=timedelta(hours=2))
    lone_account = an_account(now)
    alone = a_post(lone_account, now, state=PostState.DRAFT, due_in=None)
    store(world.uow, account, other, lone_account, mine, sooner, edge, elsewhere, alone)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            since = now - timedelta(hours=2)
            direct = await work.schedule.taken_times(account.id, since, exclude_post_id=mine.id)
            assert [t.post_id for t in direct] == [edge.id, sooner.id]
            # Read with the next statement (the post's lock), from an earlier `since`:
            # the answer for the later one is the same.
            work.schedule.read_ahead_beside(mine.id, since - timedelta(minutes=5))
            assert await work.posts.get(mine.id, for_update=True) is not None
            ahead = await work.schedule.taken_times(account.id, since, exclude_post_id=mine.id)
            assert ahead == direct
            later = now - timedelta(hours=1)  # past the edge post: it is left out
            work.schedule.read_ahead_beside(mine.id, since)
            assert await work.posts.get(mine.id) is not None
            assert await work.schedule.taken_times(account.id, later, exclude_post_id=mine.id) == [
                t for t in direct if t.at >= later
            ]
            # Asked for another account than the post's: that account's times.
            work.schedule.read_ahead_beside(mine.id, since)
            assert await work.posts.get(mine.id) is not None
            assert [
                t.post_id for t in await work.schedule.taken_times(other.id, since, mine.id)
            ] == [elsewhere.id]
            # Asked for before any statement went, and a post with no other times.
            work.schedule.read_ahead_beside(mine.id, since)
            assert await work.schedule.taken_times(account.id, since, mine.id) == direct
            work.schedule.read_ahead_beside(alone.id, since)
            assert await work.posts.get(alone.id) is not None
            assert await work.schedule.taken_times(lone_account.id, since, alone.id) == []

    run(world, scenario)


def test_added_posts_list_in_pages_and_delete_over_their_version(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    store(world.uow, account)
    posts = [
        a_post(account, now, state=PostState.DRAFT, due_in=None, created_at=now + timedelta(0, i))
        for i in range(3)
    ]
    failed = a_post(account, now, state=PostState.FAILED, due_in=None, last_error="X said 50%_off")

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            for post in [*posts, failed]:
                await work.posts.add(post)
            await work.commit()
        async with uow() as work:
            mine = PostFilter(user_id="alice", states=(PostState.DRAFT,))
            first = await work.posts.list(mine, None, 2)
            assert [p.id for p in first] == [posts[0].id, posts[1].id]
            after = Cursor(first[-1].created_at, first[-1].id)
            assert [p.id for p in await work.posts.list(mine, after, 5)] == [posts[2].id]
            errors = PostFilter(error_contains="50%_")
            assert [p.id for p in await work.posts.list(errors, None, 5)] == [failed.id]
            assert await work.posts.list(PostFilter(user_id="bob"), None, 5) == []
            assert not await work.posts.delete(posts[0].id, expected_version=2)
            assert await work.posts.delete(posts[0].id, expected_version=1)
            await work.commit()

    run(world, scenario)
    with world.uow() as uow:
        assert uow.posts.get(posts[0].id) is None
        assert uow.posts.get(posts[1].id) == posts[1]


def test_campaigns_media_kinds_and_erasures_as_the_synchronous_unit_sees_them(
    world: World,
) -> None:
    now = world.time.now()
    campaign = Campaign(uuid.uuid4(), "alice", "spring", now, now)
    mine = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, 4, now)
    theirs = Media(uuid.uuid4(), "bob", "video/mp4", MediaKind.VIDEO, 4, now)
    with world.uow() as uow:
        uow.campaigns.add(campaign)
        uow.media.add(mine, b"\x89PNG")
        uow.media.add(theirs, b"mp4!")
        uow.commit()
    world.erase("carol")

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            found = await work.campaigns.get(campaign.id)
            assert found is not None and (found.name, found.user_id) == ("spring", "alice")
            assert await work.campaigns.get(uuid.uuid4()) is None
            kinds = await work.media.kinds("alice", [mine.id, theirs.id])
            assert kinds == {mine.id: MediaKind.IMAGE}
            assert await work.media.kinds("alice", []) == {}
            assert await work.erasures.is_erased("carol")
            assert not await work.erasures.is_erased("alice")

    run(world, scenario)


def test_accounts_add_list_save_and_delete_over_their_version(world: World) -> None:
    now = world.time.now()
    first = an_account(now)
    second = an_account(now + timedelta(seconds=1))
    bobs = an_account(now, user_id="bob")
    twin = an_account(now, x_user_id=first.x_user_id)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            for account in (second, first, bobs):
                await work.accounts.add(account)
            await work.commit()
        with pytest.raises(DuplicateKey):
            async with uow() as work:
                await work.accounts.add(twin)
                await work.commit()
        async with uow() as work:
            page = await work.accounts.list("alice", None, 1)
            assert [a.id for a in page] == [first.id]
            assert page[0].credentials == first.credentials
            after = Cursor(page[0].created_at, page[0].id)
            assert [a.id for a in await work.accounts.list("alice", after, 5)] == [second.id]
            assert len(await work.accounts.list(None, None, 10)) == 3
            loaded = await work.accounts.get(first.id)
            assert loaded is not None
            loaded.handle = "renamed"
            assert await work.accounts.save(loaded, 1)
            assert loaded.version == 2
            assert not await work.accounts.save(loaded, 1)
            assert not await work.accounts.delete(second.id, 2)
            assert await work.accounts.delete(second.id, 1)
            await work.commit()

    run(world, scenario)
    with world.uow() as uow:
        stored = uow.accounts.get(first.id)
        assert stored is not None
        assert (stored.handle, stored.version, stored.credentials) == (
            "renamed",
            2,
            first.credentials,
        )
        assert uow.accounts.get(second.id) is None
        assert uow.accounts.get(twin.id) is None


def test_an_account_save_keeps_the_budget_mark_unless_the_budget_changes(world: World) -> None:
    now = world.time.now()
    account = an_account(now, x_monthly_budget_micros=5_000_000)
    store(world.uow, account, a_post(account, now))
    claims = world.queue.claim_due(10, timedelta(minutes=1))
    month = claims[0].now().strftime("%Y-%m")
    budget = Settlement(PostState.SCHEDULED, "budget", account_budget_month=month)
    assert world.queue.settle(claims[0], budget)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            loaded = await work.accounts.get(account.id)
            assert loaded is not None and loaded.x_budget_reached_month == month
            loaded.handle = "renamed"
            assert await work.accounts.save(loaded, 1)
            kept = await work.accounts.get(account.id)
            assert kept is not None and kept.x_budget_reached_month == month
            loaded.x_monthly_budget_micros = 9_000_000
            assert await work.accounts.save(loaded, 2)
            await work.commit()

    run(world, scenario)
    with world.uow() as uow:
        stored = uow.accounts.get(account.id)
    assert stored is not None
    kept = (stored.handle, stored.x_monthly_budget_micros, stored.version)
    assert kept == ("renamed", 9_000_000, 3) and stored.x_budget_reached_month is None


def test_count_active_for_account_counts_scheduled_and_publishing_posts(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now)
    store(
        world.uow,
        account,
        other,
        a_post(account, now, due_in=timedelta(hours=1)),
        a_post(account, now, state=PostState.PUBLISHING),
        a_post(account, now, state=PostState.DRAFT, due_in=None),
        a_post(account, now, state=PostState.PUBLISHED, published_at=now),
        a_post(other, now, due_in=timedelta(hours=1)),
    )

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            assert await work.posts.count_active_for_account(account.id) == 2
            assert await work.posts.count_active_for_account(uuid.uuid4()) == 0

    run(world, scenario)


def test_campaigns_add_and_list_newest_first_per_user(world: World) -> None:
    now = world.time.now()
    older = Campaign(uuid.uuid4(), "alice", "older", now, now)
    newer = Campaign(uuid.uuid4(), "alice", "newer", now + timedelta(seconds=1), now)
    bobs = Campaign(uuid.uuid4(), "bob", "bob's", now, now)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            for campaign in (older, newer, bobs):
                await work.campaigns.add(campaign)
            await work.commit()
        async with uow() as work:
            page = await work.campaigns.list("alice", None, 1)
            assert [c.id for c in page] == [newer.id]
            after = Cursor(page[0].created_at, page[0].id)
            assert [c.id for c in await work.campaigns.list("alice", after, 5)] == [older.id]
            assert [c.id for c in await work.campaigns.list("bob", None, 5)] == [bobs.id]

    run(world, scenario)
    with world.uow() as uow:
        stored = uow.campaigns.get(newer.id)
    assert stored is not None and (stored.name, stored.created_at) == ("newer", newer.created_at)


def test_media_add_get_and_usage_as_the_synchronous_unit_sees_them(world: World) -> None:
    now = world.time.now()
    kept = Media(uuid.uuid4(), "bob", "video/mp4", MediaKind.VIDEO, 2, now)
    with world.uow() as uow:
        uow.media.add(kept, b"mp")
        uow.commit()
    first = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, 3, now)
    second = Media(uuid.uuid4(), "alice", "image/gif", MediaKind.GIF, 5, now)
    twin = Media(first.id, "alice", "image/png", MediaKind.IMAGE, 1, now)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            assert await work.media.usage("alice") == (0, 0)
            await work.media.add(first, b"png")
            await work.media.add(second, b"gif89")
            assert await work.media.usage("alice") == (2, 8)
            await work.commit()
        with pytest.raises(DuplicateKey):
            async with uow() as work:
                await work.media.add(twin, b"x")
                await work.commit()
        async with uow() as work:
            assert await work.media.get(first.id) == first
            assert await work.media.get(kept.id) == kept
            assert await work.media.get(uuid.uuid4()) is None
            assert await work.media.usage("alice") == (2, 8)
            assert await work.media.usage("bob") == (1, 2)

    run(world, scenario)
    with world.uow() as uow:
        assert uow.media.get(second.id) == second
        assert uow.media.usage("alice") == (2, 8)
    assert world.uploads.content(first.id) == (b"png", "image/png")


def test_media_usage_counts_one_users_concurrent_uploads_one_after_another(
    world: World,
) -> None:
    now = world.time.now()
    item = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, 4, now)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async def counted_next() -> tuple[int, int]:
            async with uow() as work:
                return await work.media.usage("alice")

        async with uow() as work:
            assert await work.media.usage("alice") == (0, 0)
            second = asyncio.create_task(counted_next())
            done, _ = await asyncio.wait([second], timeout=0.3)
            assert not done  # held until the first upload's unit of work ends
            await work.media.add(item, b"\x89PNG")
            await work.commit()
        assert await second == (1, 4)

    run(world, scenario)


def test_a_posts_snapshots_read_back_oldest_first_with_withheld_counts_unknown(
    world: World,
) -> None:
    now = world.time.now()
    _, post, unmeasured = published_pair(world, now)
    early, later = now - timedelta(hours=4), now - timedelta(hours=3)
    withheld = Snapshot(early, Counts(50, 2, 0, 0, 0, 0, 9, 9, 12), private_known=False)
    full = Snapshot(later, Counts(100, 5, 1, 1, 0, 2, 7, 3, 40))
    tied = snap(later, impressions=120)
    with world.uow() as uow:
        for taken in (full, withheld, tied):
            uow.analytics.add_snapshot(post.id, taken, SOURCE_POLL)
        uow.analytics.mark_deleted(post.id, now)
        uow.commit()
    read_back = Snapshot(early, Counts(50, 2, 0, 0, 0, 0, 0, 0, 12), private_known=False)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            # Oldest first, withheld counts unknown; equal instants in the order written.
            series = await work.analytics.series(post.id)
            assert series == [read_back, full, tied]
            assert not series[0].private_known and series[0].counts.url_link_clicks == 0
            assert await work.analytics.latest(post.id) == tied
            assert await work.analytics.deleted_on_x(post.id)
            assert await work.analytics.series(unmeasured.id) == []
            assert await work.analytics.latest(unmeasured.id) is None
            assert not await work.analytics.deleted_on_x(unmeasured.id)

    run(world, scenario)


def test_an_accounts_and_a_users_measured_posts(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now, user_id="bob")
    old = published(account, now - timedelta(days=10))
    recent = published(account, now - timedelta(days=2))
    draft = a_post(account, now - timedelta(days=1), due_in=None, state=PostState.DRAFT)
    at_end = a_post(account, now - timedelta(days=30), due_in=timedelta(days=30))
    bobs = published(other, now - timedelta(hours=1))
    store(world.uow, account, other, old, recent, draft, at_end, bobs)
    with world.uow() as uow:
        uow.analytics.add_snapshot(recent.id, snap(now - timedelta(days=1)), SOURCE_POLL)
        uow.analytics.add_snapshot(recent.id, snap(now, impressions=300), SOURCE_POLL)
        uow.commit()

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            every = await work.analytics.account_posts(account.id, None)
            assert [p.post_id for p in every] == [old.id, recent.id]
            since = await work.analytics.account_posts(account.id, recent.published_at)
            assert [p.post_id for p in since] == [recent.id]
            measured = since[0]
            assert measured.latest == snap(now, impressions=300)
            assert (measured.account_id, measured.state) == (account.id, PostState.PUBLISHED)
            assert measured.published_at == recent.published_at
            assert every[0].latest is None
            # coalesce(published_at, due_at, created_at) in [start, end).
            window = await work.analytics.user_posts("alice", now - timedelta(days=7), now)
            assert [(p.post_id, p.state) for p in window] == [
                (recent.id, PostState.PUBLISHED),
                (draft.id, PostState.DRAFT),
            ]
            assert window[0].latest == snap(now, impressions=300)
            assert await work.analytics.user_posts("bob", now - timedelta(days=7), now) == [
                *await work.analytics.account_posts(other.id, None)
            ]

    run(world, scenario)


def test_a_posts_trend_alerts_and_the_follower_drops_covering_it(world: World) -> None:
    now = world.time.now()
    account, covered, outside = published_pair(world, now)
    spike = TrendAlert(
        "spike-1",
        account.id,
        covered.id,
        "VELOCITY_SPIKE",
        "engagements",
        12.5,
        3.25,
        4.0,
        "faster than usual",
        now - timedelta(hours=2),
        age=timedelta(minutes=90),
    )
    drop = TrendAlert(
        "drop-1",
        account.id,
        None,
        "FOLLOWER_DROP",
        "followers",
        90.0,
        100.0,
        -3.5,
        "followers fell",
        now - timedelta(hours=3),
        window_start=now - timedelta(hours=6),
    )
    with world.uow() as uow:
        assert uow.insights.add_trend_alert(spike) and uow.insights.add_trend_alert(drop)
        uow.commit()

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            alerts = work.insights.trend_alerts_for_post
            assert await alerts(covered.id, account.id, covered.published_at) == [drop, spike]
            assert await alerts(outside.id, account.id, outside.published_at) == []
            assert await alerts(outside.id, account.id, None) == []
            # The window is [window_start, detected_at).
            assert await alerts(outside.id, account.id, drop.window_start) == [drop]
            assert await alerts(outside.id, account.id, drop.detected_at) == []

    run(world, scenario)


def test_several_posts_snapshots_and_an_accounts_follower_counts(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    first, second, unmeasured = (published(account, now - timedelta(hours=h)) for h in (5, 4, 3))
    store(world.uow, account, first, second, unmeasured)
    early, late = snap(now - timedelta(hours=2)), snap(now - timedelta(hours=1), impressions=300)
    tied = snap(late.collected_at, impressions=320)
    withheld = Snapshot(now, Counts(50, 2, 0, 0, 0, 0, 9, 9, 12), private_known=False)
    day = now.date()
    older = FollowerSnapshot(day - timedelta(days=1), now - timedelta(days=1), 90)
    today = FollowerSnapshot(day, now - timedelta(minutes=10), 100, 10, 50, 2)
    with world.uow() as uow:
        uow.analytics.add_snapshot(first.id, late, SOURCE_POLL)
        uow.analytics.add_snapshot(first.id, early, SOURCE_POLL)
        uow.analytics.add_snapshot(first.id, tied, SOURCE_POLL)
        uow.analytics.add_snapshot(second.id, withheld, SOURCE_POLL)
        assert uow.insights.add_follower_snapshot(account.id, today)
        assert uow.insights.add_follower_snapshot(account.id, older)
        uow.commit()

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            # Each post's snapshots oldest first, equal instants in the order written;
            # unmeasured and unknown posts left out.
            ids = [first.id, second.id, unmeasured.id, uuid.uuid4()]
            series = await work.insights.series_of(ids)
            # Withheld counts read back as 0, not known.
            read_back = Snapshot(now, Counts(50, 2, 0, 0, 0, 0, 0, 0, 12), private_known=False)
            assert series == {first.id: [early, late, tied], second.id: [read_back]}
            assert await work.insights.series_of([]) == {}
            followers = work.insights.follower_snapshots
            assert await followers(account.id, now - timedelta(days=2), now) == [older, today]
            # [start, end)
            assert await followers(account.id, today.collected_at, now) == [today]
            assert await followers(account.id, older.collected_at, today.collected_at) == [older]
            assert await followers(uuid.uuid4(), now - timedelta(days=2), now) == []

    run(world, scenario)


def test_a_campaigns_posts_and_the_accounts_posts_outside_it(world: World) -> None:
    now = world.time.now()
    account, other, third = an_account(now), an_account(now), an_account(now)
    with world.uow() as uow:
        campaign_id, elsewhere_id = uuid.uuid4(), uuid.uuid4()
        for cid in (campaign_id, elsewhere_id):
            uow.campaigns.add(Campaign(cid, "alice", "launch", now, now))
        uow.commit()
    sent = published(account, now - timedelta(days=2), campaign_id=campaign_id)
    queued = a_post(
        account, now - timedelta(days=5), due_in=timedelta(days=4), campaign_id=campaign_id
    )
    draft = a_post(
        other, now - timedelta(days=4), due_in=None, state=PostState.DRAFT, campaign_id=campaign_id
    )
    loose = published(account, now - timedelta(days=1))
    other_campaign = published(other, now - timedelta(hours=30), campaign_id=elsewhere_id)
    too_old = published(account, now - timedelta(days=9))
    not_listed = published(third, now - timedelta(days=1))
    store(
        world.uow,
        account,
        other,
        third,
        sent,
        queued,
        draft,
        loose,
        other_campaign,
        too_old,
        not_listed,
    )
    with world.uow() as uow:
        uow.analytics.add_snapshot(sent.id, snap(now), SOURCE_POLL)
        uow.commit()
    found: dict[str, list[MeasuredPost]] = {}

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            found["inside"] = await work.insights.campaign_posts(campaign_id)
            found["outside"] = await work.insights.published_outside(
                campaign_id, [account.id, other.id], now - timedelta(days=7), now
            )
            week = now - timedelta(days=7)
            assert await work.insights.published_outside(campaign_id, [], week, now) == []
            assert await work.insights.campaign_posts(uuid.uuid4()) == []

    run(world, scenario)
    inside, outside = found["inside"], found["outside"]
    # Every state, by reference time: the draft's creation, the sent one's publication,
    # the queued one's due time.
    assert [p.post_id for p in inside] == [draft.id, sent.id, queued.id]
    assert [p.state for p in inside] == [PostState.DRAFT, PostState.PUBLISHED, PostState.SCHEDULED]
    assert inside[1].x_post_id == sent.x_post_id and inside[1].latest == snap(now)
    assert inside[0].latest is None
    assert [p.post_id for p in outside] == [other_campaign.id, loose.id]
    assert outside[1].x_post_id == loose.x_post_id


def test_published_posts_are_found_by_their_x_ids(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    mine = published(account, now - timedelta(hours=1))
    failed = a_post(account, now, state=PostState.FAILED, x_post_id="777")
    store(world.uow, account, mine, failed)
    found: dict[str, PublishedRef] = {}

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            found.update(await work.analytics.published_by_x_id([mine.x_post_id, "777", "888"]))
            assert await work.analytics.published_by_x_id([]) == {}

    run(world, scenario)
    assert list(found) == [mine.x_post_id]
    ref = found[mine.x_post_id]
    assert (ref.post_id, ref.account_id, ref.user_id) == (mine.id, account.id, "alice")


def test_a_webhook_event_is_recorded_once(world: World) -> None:
    now = world.time.now()

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            record = work.analytics.record_webhook_event
            assert await record("evt-1", "favorite_events", now)
            assert not await record("evt-1", "favorite_events", now)
            assert await record("evt-2", "tweet_delete_events", now)
            await work.commit()
        async with uow() as work:
            assert not await work.analytics.record_webhook_event(
                "evt-2", "tweet_delete_events", now
            )
            # Left without a commit: not kept.
            assert await work.analytics.record_webhook_event("evt-3", "favorite_events", now)
        async with uow() as work:
            assert await work.analytics.record_webhook_event("evt-3", "favorite_events", now)

    run(world, scenario)


def test_snapshots_and_a_deletion_mark_are_kept_at_commit_only(world: World) -> None:
    now = world.time.now()
    _, post, other = published_pair(world, now)
    full = Snapshot(now - timedelta(hours=1), Counts(100, 5, 1, 1, 0, 2, 7, 3, 40))
    # X withheld the private counts: kept as unknown, video views kept.
    withheld = Snapshot(now, Counts(50, 2, 0, 0, 0, 0, 9, 9, 12), private_known=False)

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            await work.analytics.add_snapshot(other.id, snap(now), SOURCE_WEBHOOK)
            await work.analytics.mark_deleted(other.id, now)  # left without a commit
        async with uow() as work:
            await work.analytics.add_snapshot(post.id, full, SOURCE_WEBHOOK)
            await work.analytics.add_snapshot(post.id, withheld, SOURCE_WEBHOOK)
            await work.analytics.mark_deleted(post.id, now)
            await work.analytics.mark_deleted(post.id, now)  # again: still one mark
            await work.commit()

    read_back = Snapshot(now, Counts(50, 2, 0, 0, 0, 0, 0, 0, 12), private_known=False)

    async def kept(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            assert await work.analytics.series(post.id) == [full, read_back]
            assert await work.analytics.deleted_on_x(post.id)
            assert await work.analytics.series(other.id) == []
            assert not await work.analytics.deleted_on_x(other.id)

    run(world, scenario)
    run(world, kept)
    with world.uow() as uow:
        # Marked deleted: it never falls due again; the other one is due since publishing.
        assert [d.post_id for d in uow.analytics.due_for_refresh(now, 10)] == [other.id]


def test_the_spend_ledger_reads_as_the_synchronous_unit_of_work_reads_it(world: World) -> None:
    now = world.time.now()
    account = an_account(now, x_monthly_budget_micros=10_000_000)
    unbudgeted = an_account(now)
    post = a_post(account, now, state=PostState.PUBLISHED, published_at=now)
    queued = a_post(account, now, due_in=timedelta(minutes=5), thread=["more"])
    store(world.uow, account, unbudgeted, post, queued)
    create = Metered(now, CallKind.POST_CREATE, Purpose.PUBLISH, "alice", account.id, post.id)
    read = Metered(
        now, CallKind.POST_READ, Purpose.RECONCILE, "alice", account.id, post.id, 2, Outcome.CHARGED
    )
    refused = Metered(
        now, CallKind.POST_CREATE, Purpose.PUBLISH, "alice", account.id, post.id, 1, Outcome.REFUSED
    )
    with world.uow() as uow:
        spent = uow.spend.record([create, read, refused])
        uow.commit()
    start, end = now - timedelta(days=1), now + timedelta(days=1)
    scopes = (
        SpendScope(account_id=account.id),
        SpendScope(user_id="alice"),
        SpendScope(user_id="bob"),
        SpendScope(campaign_id=uuid.uuid4()),
    )
    with world.uow() as uow:
        rows = [uow.spend.rows(scope, start, end) for scope in scopes]
        published = [uow.spend.published_posts(scope, start, end) for scope in scopes]
        states = uow.spend.budget_states([account.id, unbudgeted.id, uuid.uuid4()])

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            assert [await work.spend.rows(scope, start, end) for scope in scopes] == rows
            assert [(r.kind, r.outcome, r.calls) for r in rows[0]] == [
                ("post_create", "charged", 1),
                ("post_create", "refused", 1),
                ("post_read", "charged", 1),
            ]
            assert rows[2] == rows[3] == []
            counted = [await work.spend.published_posts(scope, start, end) for scope in scopes]
            assert counted == published == [1, 1, 0, 0]
            assert await work.spend.published_posts(scopes[0], now, now) == 0  # [start, end)
            budgets = await work.spend.budget_states([account.id, unbudgeted.id, uuid.uuid4()])
            assert budgets == states and list(budgets) == [account.id]
            state = budgets[account.id]
            assert (state.budget_micros, state.spent_micros) == (10_000_000, spent)
            assert state.reserved_micros > 0  # the queued post's cost
            assert await work.spend.budget_states([]) == {}
            assert await work.spend.budget_states([unbudgeted.id]) == {}

    run(world, scenario)


def test_engagement_history_of_an_account_and_of_every_account(
    world: World,
) -> None:
    now = world.time.now()
    account = an_account(now, timezone="Europe/Paris")
    other = an_account(now, timezone="America/New_York")
    cutoff = now - timedelta(days=1)
    oldest = published(account, now - timedelta(days=5), text="oldest")
    legacy = published(account, now - timedelta(days=3), media_ids=["12345"])
    unseen = published(account, now - timedelta(days=2))  # no impressions yet
    too_young = published(account, now - timedelta(hours=2))
    others = published(other, now - timedelta(days=6))
    store(world.uow, account, other, oldest, legacy, unseen, too_young, others)
    with world.uow() as uow:
        for post, impressions in ((oldest, 100), (legacy, 400), (too_young, 50), (others, 10)):
            uow.analytics.add_snapshot(post.id, snap(now, impressions, likes=10), SOURCE_POLL)
        uow.analytics.add_snapshot(unseen.id, snap(now, 0, likes=0), SOURCE_POLL)
        uow.commit()

    async def scenario(uow: AsyncUnitOfWorkFactory) -> None:
        async with uow() as work:
            history = work.insights.engagement_history
            mine = await history(account.id, cutoff, 10)
            newest = await history(account.id, cutoff, 1)
            every = await history(None, cutoff, 10)
            assert [(p.draft.at, p.draft.media) for p in mine] == [
                (oldest.published_at, None),
                (legacy.published_at, MediaKind.IMAGE),
            ]
            assert mine[0].draft.text == "oldest"
            assert [(p.account_id, p.timezone) for p in mine] == [
                (str(account.id), "Europe/Paris")
            ] * 2
            assert [(p.impressions, p.engagement_rate) for p in mine] == [(100, 0.1), (400, 0.025)]
            assert newest == mine[1:]
            assert [p.draft.at for p in every] == [others.published_at, *[p.draft.at for p in mine]]
            assert every[0].timezone == "America/New_York"

    run(world, scenario)
