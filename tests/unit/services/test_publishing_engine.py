"""The engine's exactly-once decisions on the memory queue and a scripted X: a post is
sent again only when X's timeline proves it is not there, and never twice on X."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from post_management.adapters.memory.publish_queue import MemoryPublishQueue
from post_management.adapters.memory.x_api import ANSWER_LOST, AS_X
from post_management.adapters.rate_limit import InProcessRateLimiter
from post_management.domain.post import Post, PostState
from post_management.domain.publishing import Claim, outcomes
from post_management.ports.x_api import (
    NewPost,
    PermanentFailure,
    RateLimited,
    Timeline,
    UnknownOutcome,
    XCredentials,
)
from post_management.services.publishing.engine import (
    NOTE_TRIES,
    UPLOAD_THREADS,
    EngineSettings,
    Publisher,
)
from tests.unit.services.engine_world import TIMING, EngineWorld

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


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
    # The create-post call is metered with the settlement.
    assert [(e.kind, e.outcome, e.post_id) for e in world.store.tables.spend] == [
        ("post_create", "charged", post.id)
    ]


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
    # The call whose answer was lost is counted as billed; the timeline read per post.
    spent = [(e.kind, e.purpose, e.outcome, e.units) for e in world.store.tables.spend]
    assert spent == [
        ("post_create", "publish", "unknown", 1),
        ("post_read", "reconcile", "charged", 1),
    ]


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


def test_a_lost_answer_in_the_middle_of_a_thread_is_adopted_and_the_rest_follows(
    world: EngineWorld,
) -> None:
    account = world.account()
    post = world.post(account, "one", thread=("two", "three"))
    world.x.script_create(AS_X, ANSWER_LOST)
    world.dispatch()
    halfway = world.get(post)
    assert halfway.state is PostState.PUBLISHING and len(halfway.segment_x_post_ids) == 1
    world.wait(TIMING.settle_delay)
    assert world.reconciler.tick() == 1
    # The second segment is adopted from the timeline; the third waits in the queue.
    resumed = world.get(post)
    assert resumed.state is PostState.SCHEDULED and len(resumed.segment_x_post_ids) == 2
    world.dispatch()
    stored = world.get(post)
    on_x = world.x.posts(account.x_user_id)
    assert stored.state is PostState.PUBLISHED
    assert stored.segment_x_post_ids == [p.id for p in on_x]
    assert [p.text for p in on_x] == ["one", "two", "three"]
    assert len(world.x.calls) == 3


def test_attachments_are_uploaded_once_and_reused(world: EngineWorld) -> None:
    account = world.account()
    picture = world.media(PNG)
    first = world.post(account, "with a picture", attachments=(picture,))
    world.dispatch()
    (uploaded,) = world.x.uploads
    (on_x,) = world.x.posts(account.x_user_id)
    assert world.get(first).state is PostState.PUBLISHED
    assert on_x.media_keys == (f"3_{uploaded}",)
    second = world.post(account, "the same picture again", attachments=(picture,))
    world.wait(timedelta(hours=1))
    world.dispatch()
    assert world.get(second).state is PostState.PUBLISHED
    assert world.x.uploads == [uploaded]


def test_uploads_filling_every_io_thread_hold_back_no_send_or_settlement() -> None:
    """Twelve media posts whose uploads hang take every thread uploads run on; a text
    post claimed with them is still sent and settled meanwhile: the batched commits
    have threads of their own, so no lease runs out waiting behind uploads."""
    world = EngineWorld(max_in_flight=16)
    release = threading.Event()
    started: list[int] = []
    upload = world.x.upload_media

    def hanging_upload(*args: Any, **kwargs: Any) -> Any:
        started.append(1)
        release.wait(timeout=30)
        return upload(*args, **kwargs)

    world.x.upload_media = hanging_upload  # type: ignore[method-assign]
    media_posts = [
        world.post(world.account(), f"picture {i}", attachments=(world.media(PNG),))
        for i in range(12)
    ]
    text_post = world.post(world.account(), "words only")
    try:
        assert world.dispatcher.tick() == 13
        deadline = time.monotonic() + 10
        while len(started) < UPLOAD_THREADS:  # every upload thread hangs
            assert time.monotonic() < deadline, f"{len(started)} uploads started"
            time.sleep(0.01)
        while world.get(text_post).state is not PostState.PUBLISHED:
            assert time.monotonic() < deadline, "the text post waited behind the uploads"
            time.sleep(0.01)
        assert len(started) == UPLOAD_THREADS
        assert all(world.get(p).state is PostState.PUBLISHING for p in media_posts)
    finally:
        release.set()
        world.dispatcher.drain()
    assert all(world.get(p).state is PostState.PUBLISHED for p in media_posts)


def test_a_rate_limit_refunds_the_attempt_and_holds_the_account_until_the_reset(
    world: EngineWorld,
) -> None:
    account = world.account()
    post = world.post(account, "too fast")
    reset = world.clock.now() + timedelta(minutes=15)
    world.x.script_create(RateLimited(reset_at=reset))
    world.dispatch()
    waiting = world.get(post)
    assert (waiting.state, waiting.attempt_count) == (PostState.SCHEDULED, 0)
    world.wait(timedelta(minutes=5))
    assert world.dispatch() == 0
    world.wait(timedelta(minutes=11))
    assert world.dispatch() == 1
    assert world.get(post).state is PostState.PUBLISHED


def _noted_then_on_x(world: EngineWorld, text: str, late_by: timedelta) -> tuple[Post, Claim]:
    """A post claimed and its send noted, whose call reached X `late_by` after the note
    (X stored it; its answer never came back)."""
    account = world.account()
    post = world.post(account, text)
    (claim,) = world.queue.claim_due(1, world.settings.lease)
    assert world.queue.sending(claim, world.settings.lease)
    world.wait(late_by)
    creds = XCredentials("token-" + account.x_user_id, "secret")
    assert world.x.create_post(creds, NewPost(post.text))
    return post, claim


def test_not_on_x_counts_from_when_the_caller_gave_up_not_from_the_note(
    world: EngineWorld,
) -> None:
    # The process stalled after the note: the call reached X a minute later, and its
    # caller gave up without an answer.
    post, claim = _noted_then_on_x(world, "left a minute after its note", timedelta(minutes=1))
    settlement = outcomes.settle_publish(
        claim, UnknownOutcome("timeout"), world.clock.now(), TIMING
    )
    assert world.queue.settle(claim, settlement)
    # Past the lag bound since the note, not since the give-up: X's timeline, lagging,
    # does not list the post yet, and that proves nothing.
    world.wait(TIMING.lag_bound - timedelta(minutes=1) + timedelta(seconds=1))
    world.x.script_timeline(Timeline(()))
    assert world.reconciler.tick() == 1
    assert world.get(post).state is PostState.PUBLISHING
    # Once listed it is adopted: on X once, never sent again.
    world.wait(TIMING.settle_delay)
    assert world.reconciler.tick() == 1
    stored = world.get(post)
    (on_x,) = world.x.posts()
    assert (stored.state, stored.x_post_id) == (PostState.PUBLISHED, on_x.id)
    assert len(world.x.calls) == 1


class SlowNotes(MemoryPublishQueue):
    """The memory queue whose first `slow` notes of a send take longer than the
    publisher's send window (a stalled process, a slow commit)."""

    def __init__(self, world: EngineWorld, slow: int, stall_s: float) -> None:
        super().__init__(world.store)
        self.slow, self.stall_s, self.notes = slow, stall_s, 0

    def sending(self, claim: Claim, lease: timedelta, x_media_ids: Any = None) -> bool:
        self.notes += 1
        noted = super().sending(claim, lease, x_media_ids)
        if self.notes <= self.slow:
            time.sleep(self.stall_s)
        return noted


def _publisher_with(world: EngineWorld, queue: SlowNotes) -> Publisher:
    # A send window of 50 ms: the lease outlasts one X call by that much.
    settings = EngineSettings(TIMING, lease=timedelta(seconds=1), x_call=timedelta(seconds=0.95))
    return Publisher(queue, world.x, InProcessRateLimiter(), world.clock, settings)


def test_a_note_gone_stale_before_the_call_is_made_again() -> None:
    world = EngineWorld()
    queue = SlowNotes(world, slow=1, stall_s=0.2)
    post = world.post(world.account(), "noted twice")
    (claim,) = queue.claim_due(1, timedelta(seconds=1))

    assert _publisher_with(world, queue).publish(claim) is PostState.PUBLISHED
    assert queue.notes == 2
    assert len(world.x.calls) == 1
    assert world.get(post).state is PostState.PUBLISHED


def test_a_send_whose_every_note_goes_stale_is_retried_unsent() -> None:
    world = EngineWorld()
    queue = SlowNotes(world, slow=NOTE_TRIES, stall_s=0.1)
    post = world.post(world.account(), "never fresh")
    (claim,) = queue.claim_due(1, timedelta(seconds=1))

    assert _publisher_with(world, queue).publish(claim) is PostState.SCHEDULED
    assert queue.notes == NOTE_TRIES
    assert world.x.calls == []
    retried = world.get(post)
    assert "X not called" in retried.last_error
    # No reconciler needed: after the retry's backoff it is published, once.
    assert world.reconciler.tick() == 0
    world.wait(TIMING.policy.base)
    assert world.dispatch() == 1
    assert world.get(post).state is PostState.PUBLISHED
    assert len(world.x.calls) == 1


def test_a_holder_that_never_came_back_may_have_sent_up_to_the_send_window_late(
    world: EngineWorld,
) -> None:
    # The call left as late as the send window allows, then the process died.
    window = world.settings.send_window
    post, _ = _noted_then_on_x(world, "left late, then the holder died", window)
    # Past the lag bound since the note, not since the latest the call could leave:
    # a lagging timeline proves nothing yet.
    world.wait(TIMING.lag_bound - world.settings.send_window + timedelta(seconds=1))
    world.x.script_timeline(Timeline(()))
    assert world.reconciler.tick() == 1
    assert world.get(post).state is PostState.PUBLISHING
    world.wait(TIMING.settle_delay)
    assert world.reconciler.tick() == 1
    assert world.get(post).state is PostState.PUBLISHED
    assert len(world.x.calls) == 1
