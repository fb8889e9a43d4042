"""Command use cases on the memory unit of work: create, schedule and cancel a post,
with their replay, audit and events, without a database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.auth import Principal, Role
from post_management.domain.errors import FailedPrecondition, PermissionDenied
from post_management.domain.post import Post, PostState
from post_management.domain.requested_time import parse_requested_time
from post_management.domain.slots import SlotPolicy
from post_management.ports.analytics import SOURCE_POLL
from post_management.services.analytics.optimal_times import BestFreeTime
from post_management.services.posts.posts import NewPost, PostService
from post_management.services.scheduling.scheduling import SchedulingService
from post_management.services.scheduling.support import ScheduleRequest
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)


@pytest.fixture
def world() -> EngineWorld:
    return EngineWorld()


def services(world: EngineWorld) -> tuple[PostService, SchedulingService]:
    return PostService(world.async_uow, world.clock), SchedulingService(
        world.async_uow, world.clock
    )


def test_create_schedule_cancel_with_audit_and_events(world: EngineWorld) -> None:
    posts, scheduling = services(world)
    account = world.account()
    new = NewPost("alice", account.id, "from a command", [])
    created = asyncio.run(posts.create(ALICE, new, request_id="req-1"))
    assert created.state is PostState.DRAFT
    # The same request id answers with the same post, stored once.
    assert asyncio.run(posts.create(ALICE, new, request_id="req-1")).id == created.id
    assert len(world.store.tables.posts) == 1

    due = world.clock.now() + timedelta(hours=2)
    request = ScheduleRequest(
        created.id, "alice", scheduled_for=parse_requested_time(due.isoformat())
    )
    result = asyncio.run(scheduling.schedule(ALICE, request))
    assert result.post.state is PostState.SCHEDULED
    assert result.post.scheduled_for == due
    cancelled = asyncio.run(scheduling.cancel(ALICE, created.id, "alice"))
    assert cancelled.state is PostState.CANCELLED
    # Cancelling again changes nothing.
    assert asyncio.run(scheduling.cancel(ALICE, created.id, "alice")).version == cancelled.version

    stored = asyncio.run(posts.get(ALICE, created.id))
    assert (stored.state, stored.version) == (PostState.CANCELLED, cancelled.version)
    actions = [entry.action for _, entry in world.store.tables.audit]
    assert actions[0] == "post.create" and "post.cancel" in actions
    kinds = [e.event_type for e in world.store.tables.outbox]
    assert any("scheduled" in k for k in kinds) and any("cancelled" in k for k in kinds)


def test_a_published_post_cannot_be_cancelled_and_nothing_is_written(world: EngineWorld) -> None:
    posts, scheduling = services(world)
    account = world.account()
    post = world.post(account, "already going out")
    world.dispatch()
    before = len(world.store.tables.audit)
    with pytest.raises(FailedPrecondition):
        asyncio.run(scheduling.cancel(ALICE, post.id, "alice"))
    assert asyncio.run(posts.get(ALICE, post.id)).state is PostState.PUBLISHED
    assert len(world.store.tables.audit) == before


def test_another_users_post_is_refused(world: EngineWorld) -> None:
    posts, _ = services(world)
    account = world.account()
    with pytest.raises(PermissionDenied):
        asyncio.run(
            posts.create(Principal("bob", Role.USER), NewPost("alice", account.id, "not yours", []))
        )
    assert world.store.tables.posts == {}


def test_a_synchronous_memory_unit_is_refused_while_an_asynchronous_one_is_open(
    world: EngineWorld,
) -> None:
    """Refused, not left to deadlock: the asynchronous one holds the store's lock."""

    async def scenario() -> None:
        async with world.async_uow():
            with pytest.raises(RuntimeError), world.uow():
                pass

    asyncio.run(scenario())
    with world.uow() as work:  # and welcome again once it closed
        assert work.posts.get(uuid.uuid4()) is None


def test_the_best_slot_reads_the_accounts_history_in_the_commands_unit_of_work(
    world: EngineWorld,
) -> None:
    """SLOT_POLICY_BEST on the memory unit of work: the history is read in the
    schedule's own (asynchronous) unit of work, and the best hour of the week wins."""
    posts = PostService(world.async_uow, world.clock)
    scheduling = SchedulingService(world.async_uow, world.clock, best_time=BestFreeTime(None))
    account = world.account()
    now = world.clock.now()  # a Monday, 12:00 UTC
    # Wednesdays at 03:00 UTC, a quiet hour by the prior, drew fifty times the
    # engagement of the noons of the week.
    wednesday = now.replace(hour=3) + timedelta(days=2)
    history = [(wednesday - timedelta(weeks=w), 500) for w in range(1, 7)] + [
        (now - timedelta(weeks=w, days=d), 10) for w in range(1, 7) for d in range(-2, 4)
    ]
    for index, (at, likes) in enumerate(history):
        published = Post(
            id=uuid.uuid4(),
            user_id="alice",
            account_id=account.id,
            text=f"history {index}",
            created_at=at,
            updated_at=at,
            state=PostState.PUBLISHED,
            scheduled_for=at,
            published_at=at,
            x_post_id=str(uuid.uuid4().int % 10**18),
        )
        with world.uow() as uow:
            uow.posts.add(published)
            snapshot = Snapshot(at + timedelta(hours=1), Counts(impressions=1000, likes=likes))
            uow.analytics.add_snapshot(published.id, snapshot, SOURCE_POLL)
            uow.commit()
    draft = asyncio.run(posts.create(ALICE, NewPost("alice", account.id, "at its best", [])))

    request = ScheduleRequest(draft.id, "alice", slot_policy=SlotPolicy.BEST)
    result = asyncio.run(scheduling.schedule(ALICE, request))

    assert result.post.scheduled_for == wednesday
