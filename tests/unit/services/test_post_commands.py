"""Command use cases on the memory unit of work: create, schedule and cancel a post,
with their replay, audit and events, without a database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from post_management.domain.auth import Principal, Role
from post_management.domain.errors import FailedPrecondition, PermissionDenied
from post_management.domain.post import PostState
from post_management.domain.requested_time import parse_requested_time
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
