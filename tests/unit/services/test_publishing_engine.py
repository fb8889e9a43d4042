"""The engine's exactly-once decisions on the memory queue and a scripted X: a post is
sent again only when X's timeline proves it is not there, and never twice on X."""

from __future__ import annotations

from datetime import timedelta

import pytest

from post_management.adapters.memory.x_api import ANSWER_LOST
from post_management.domain.post import PostState
from post_management.ports.x_api import PermanentFailure, Timeline, UnknownOutcome
from tests.unit.services.engine_world import TIMING, EngineWorld


@pytest.fixture
def world() -> EngineWorld:
    return EngineWorld()


def test_a_due_post_is_published_once(world: EngineWorld) -> None:
    account = world.account()
    post = world.post(account, "hello from memory")
    assert world.dispatch() == 1
    stored = world.get(post)
    (on_x,) = world.x.posts(account.x_user_id)
    assert (stored.state, stored.x_post_id, stored.attempt_count) == (
        PostState.PUBLISHED,
        on_x.id,
        1,
    )
    assert stored.published_at is not None
    assert len(world.x.calls) == 1
    assert world.dispatch() == 0
    audited = [(e.actor, e.action) for _, e in world.store.tables.audit]
    assert audited == [("system:publisher", "post.published")]


def test_a_lost_answer_is_adopted_from_the_timeline_without_a_second_send(
    world: EngineWorld,
) -> None:
    account = world.account()
    post = world.post(account, "answer lost on the way back")
    world.x.script_create(ANSWER_LOST)
    world.dispatch()
    assert world.get(post).state is PostState.PUBLISHING
    # Before the settle delay the reconciler leaves it alone.
    assert world.reconciler.tick() == 0
    world.wait(TIMING.settle_delay)
    assert world.reconciler.tick() == 1
    stored = world.get(post)
    (on_x,) = world.x.posts(account.x_user_id)
    assert (stored.state, stored.x_post_id) == (PostState.PUBLISHED, on_x.id)
    assert len(world.x.calls) == 1


def test_not_on_x_is_believed_only_after_the_lag_bound_then_retried(
    world: EngineWorld,
) -> None:
    account = world.account()
    post = world.post(account, "X failed before acting")
    world.x.script_create(UnknownOutcome("X answered 503"))
    world.dispatch()
    world.wait(TIMING.settle_delay)
    assert world.reconciler.tick() == 1
    # Absent, but within the lag bound: still PUBLISHING, looked at again.
    assert world.get(post).state is PostState.PUBLISHING
    assert len(world.x.calls) == 1
    world.wait(TIMING.lag_bound)
    assert world.reconciler.tick() == 1
    retried = world.get(post)
    assert retried.state is PostState.SCHEDULED and retried.attempt_count == 1
    assert "not on X" in retried.last_error
    world.wait(TIMING.policy.base)
    assert world.dispatch() == 1
    stored = world.get(post)
    assert (stored.state, stored.attempt_count) == (PostState.PUBLISHED, 2)
    assert len(world.x.calls) == 2
    assert len(world.x.posts(account.x_user_id)) == 1


def test_attempts_exhausted_dead_letter_the_post(world: EngineWorld) -> None:
    account = world.account()
    post = world.post(account, "never reaches X")
    world.x.script_create(*[UnknownOutcome("X answered 503")] * TIMING.policy.max_attempts)
    for _ in range(TIMING.policy.max_attempts):
        assert world.dispatch() == 1
        world.wait(TIMING.settle_delay)
        world.reconciler.tick()
        world.wait(TIMING.lag_bound)
        world.reconciler.tick()
        world.wait(TIMING.policy.cap)
    stored = world.get(post)
    assert stored.state is PostState.DEAD_LETTERED
    assert stored.attempt_count == TIMING.policy.max_attempts
    assert "gave up after 3 attempts" in stored.last_error
    assert world.x.posts(account.x_user_id) == []
    assert "post.failed" in " ".join(world.event_types())


def test_a_timeline_that_never_answers_is_given_up_and_dead_lettered(
    world: EngineWorld,
) -> None:
    account = world.account()
    post = world.post(account, "X cannot say")
    world.x.script_create(ANSWER_LOST)
    world.dispatch()
    world.x.script_timeline(*[UnknownOutcome("timeline down")] * 100)
    looks = 0
    while world.get(post).state is PostState.PUBLISHING:
        world.wait(TIMING.settle_delay)
        looks += world.reconciler.tick()
        assert looks < 100
    stored = world.get(post)
    assert stored.state is PostState.DEAD_LETTERED
    assert "check X before requeueing" in stored.last_error
    # It was given up only after the bound, never sent again.
    assert looks >= TIMING.give_up // TIMING.settle_delay
    assert len(world.x.calls) == 1


def test_a_cut_short_timeline_proves_nothing(world: EngineWorld) -> None:
    account = world.account()
    post = world.post(account, "only part of the timeline")
    world.x.script_create(UnknownOutcome("X answered 503"))
    world.dispatch()
    world.wait(TIMING.settle_delay + TIMING.lag_bound)
    world.x.script_timeline(Timeline((), complete=False))
    world.reconciler.tick()
    assert world.get(post).state is PostState.PUBLISHING
    world.wait(TIMING.settle_delay)
    world.reconciler.tick()
    assert world.get(post).state is PostState.SCHEDULED


def test_a_publisher_that_died_before_sending_is_retried_without_asking_x(
    world: EngineWorld,
) -> None:
    account = world.account()
    post = world.post(account, "claimed, never sent")
    (claim,) = world.queue.claim_due(1, world.settings.lease)
    world.wait(world.settings.lease + timedelta(seconds=1))
    world.x.script_timeline(UnknownOutcome("must not be asked"))
    assert world.reconciler.tick() == 1
    stored = world.get(post)
    assert stored.state is PostState.SCHEDULED
    assert world.x.calls == []
    assert not world.queue.renew(claim, world.settings.lease)  # the dead publisher lost it


def test_a_thread_is_published_in_order_and_a_refusal_fails_the_post(
    world: EngineWorld,
) -> None:
    account = world.account()
    post = world.post(account, "one", thread=("two", "three"))
    world.dispatch()
    stored = world.get(post)
    on_x = world.x.posts(account.x_user_id)
    assert stored.state is PostState.PUBLISHED
    assert stored.segment_x_post_ids == [p.id for p in on_x]
    assert [p.in_reply_to for p in on_x] == [None, on_x[0].id, on_x[1].id]

    second = world.post(account, "four", thread=("five",))
    world.x.script_create(PermanentFailure("refused", status=403))
    world.dispatch()
    assert world.get(second).state is PostState.FAILED
