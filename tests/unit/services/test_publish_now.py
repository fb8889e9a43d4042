"""PublishPost with immediate publish answers with the outcome, also when a
dispatcher claims the post between the commit that queued it and the call's own
claim, or a lock keeps the claim from it for a moment."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from post_management.adapters.memory.publish_queue import MemoryPublishQueue
from post_management.adapters.memory.x_api import ANSWER_LOST
from post_management.domain.auth import Principal, Role
from post_management.domain.post import Post, PostState
from post_management.domain.publishing import Claim
from post_management.services.publishing.commands import (
    CLAIM_RETRY,
    DEADLINE_MARGIN,
    PublishCommands,
    PublishRequest,
)
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)
LEASE = timedelta(seconds=90)


class RacedQueue(MemoryPublishQueue):
    """The memory queue, where a dispatcher claims the post just before the
    command's first claim (`dispatcher_first`), or the claim is refused once as if
    another claim held the account's lock (`lock_busy_once`)."""

    def __init__(self, world: EngineWorld) -> None:
        super().__init__(world.store)  # the same rows as the engine's queue
        self.dispatcher_first = False
        self.lock_busy_once = False
        self.theirs: list[Claim] = []
        self.own_claims = 0

    def claim_post(self, post_id: UUID, lease: timedelta) -> Claim | None:
        if self.dispatcher_first:
            self.dispatcher_first = False
            self.theirs = self.claim_due(10, lease)
        if self.lock_busy_once:
            self.lock_busy_once = False
            return None
        claim = super().claim_post(post_id, lease)
        self.own_claims += claim is not None
        return claim


def _commands(world: EngineWorld, queue: RacedQueue, outcome_wait: float) -> PublishCommands:
    return PublishCommands(
        world.async_uow,
        queue,
        world.publisher,
        world.clock,
        LEASE,
        outcome_wait=timedelta(seconds=outcome_wait),
    )


def _raced(
    text: str, *, dispatcher_first: bool = False, lock_busy_once: bool = False
) -> tuple[EngineWorld, RacedQueue, Post]:
    """A new account's post over a RacedQueue with the race given."""
    world = EngineWorld()
    queue = RacedQueue(world)
    post = world.post(world.account(), text)
    queue.dispatcher_first, queue.lock_busy_once = dispatcher_first, lock_busy_once
    return world, queue, post


def _second_in_line() -> tuple[EngineWorld, RacedQueue, Post]:
    """A post whose account must wait its turn: another publisher holds the account's
    first post."""
    world = EngineWorld()
    queue = RacedQueue(world)
    account = world.account()
    first = world.post(account, "the account's post in flight")
    assert [claim.post_id for claim in queue.claim_due(1, LEASE)] == [first.id]
    return world, queue, world.post(account, "second in line")


def _timed(commands: PublishCommands, request: PublishRequest) -> tuple[PostState, bool, float]:
    """The answer's state, its `queued` and the seconds it took."""
    started = time.monotonic()
    answer, queued = asyncio.run(commands.publish(ALICE, request))
    return answer.state, queued, time.monotonic() - started


def _request(post_id: UUID) -> PublishRequest:
    return PublishRequest(post_id, "alice", None, immediate=True, override_schedule=False)


def _publish_theirs_after(world: EngineWorld, queue: RacedQueue, seconds: float) -> None:
    """The dispatcher that claimed first publishes a moment later, on its own thread."""

    def publish() -> None:
        time.sleep(seconds)
        for claim in queue.theirs:
            world.publisher.publish(claim)

    threading.Thread(target=publish, daemon=True).start()


def test_a_dispatcher_claiming_first_still_answers_with_the_outcome() -> None:
    world, queue, post = _raced("raced by a dispatcher", dispatcher_first=True)
    commands = _commands(world, queue, outcome_wait=10)
    # The dispatcher's X call ends after the command read the post once.
    _publish_theirs_after(world, queue, 0.2)

    state, queued, _ = _timed(commands, _request(post.id))

    assert (state, queued) == (PostState.PUBLISHED, False)
    assert [claim.post_id for claim in queue.theirs] == [post.id]
    assert queue.own_claims == 0
    assert len(world.x.posts()) == 1


def test_a_claim_kept_by_a_lock_is_tried_again() -> None:
    world, queue, post = _raced("lock busy once", lock_busy_once=True)
    commands = _commands(world, queue, outcome_wait=10)

    state, queued, _ = _timed(commands, _request(post.id))

    assert (state, queued) == (PostState.PUBLISHED, False)
    assert queue.own_claims == 1
    assert len(world.x.posts()) == 1


def test_an_account_that_may_not_publish_leaves_the_post_queued_without_waiting() -> None:
    world, queue, post = _second_in_line()
    outcome_wait = 30.0
    commands = _commands(world, queue, outcome_wait)

    state, queued, waited = _timed(commands, _request(post.id))

    assert (state, queued) == (PostState.SCHEDULED, True)
    # Gave up after the claim's retries, not after the wait for another's outcome.
    assert CLAIM_RETRY.total_seconds() <= waited < outcome_wait / 3
    assert world.x.posts() == []


def test_another_publishers_outcome_is_awaited_for_one_x_call_only() -> None:
    world, queue, post = _raced("its X call hangs", dispatcher_first=True)  # never settled
    commands = _commands(world, queue, outcome_wait=0.3)

    state, queued, waited = _timed(commands, _request(post.id))

    assert (state, queued) == (PostState.PUBLISHING, True)
    assert waited >= 0.3
    assert world.x.posts() == []


def test_the_wait_for_another_publisher_ends_before_the_callers_deadline() -> None:
    world, queue, post = _raced("its X call hangs", dispatcher_first=True)  # never settled
    commands = _commands(world, queue, outcome_wait=30)
    request = replace(_request(post.id), deadline_in=timedelta(seconds=1.5))

    state, queued, waited = _timed(commands, request)

    assert (state, queued) == (PostState.PUBLISHING, True)
    # Answered when the deadline less its margin for sending the answer was up.
    assert 1.5 - DEADLINE_MARGIN.total_seconds() <= waited < 1.5


def test_an_answer_lost_on_this_calls_own_attempt_is_not_called_the_outcome() -> None:
    world, queue, post = _raced("X's answer lost")
    world.x.script_create(ANSWER_LOST)
    commands = _commands(world, queue, outcome_wait=10)

    state, queued, _ = _timed(commands, _request(post.id))

    # The reconciler decides; the caller is told the answer is not the outcome.
    assert (state, queued) == (PostState.PUBLISHING, True)
    assert queue.own_claims == 1


def test_a_replay_answers_queued_as_the_post_is_now() -> None:
    world, queue, post = _second_in_line()
    commands = _commands(world, queue, outcome_wait=10)
    plain = PublishRequest(
        post.id, "alice", None, immediate=False, override_schedule=False, request_id="r-1"
    )

    first = asyncio.run(commands.publish(ALICE, plain))
    replayed = asyncio.run(commands.publish(ALICE, plain))

    assert (first[0].state, first[1]) == (PostState.SCHEDULED, True)
    assert (replayed[0].state, replayed[1]) == (PostState.SCHEDULED, True)
