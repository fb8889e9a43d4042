"""The Post aggregate's methods: what each allows, what it changes and the events it
records (domain/post.py)."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from post_management.domain import events
from post_management.domain.errors import FailedPrecondition, InvalidArgument
from post_management.domain.post import (
    FRONT_OF_QUEUE,
    NO_CAMPAIGN,
    Post,
    PostEdit,
    PostState,
    Priority,
)

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(hours=3)


def a_post(state: PostState = PostState.DRAFT, **fields: object) -> Post:
    post = Post(
        id=uuid.uuid4(),
        user_id="alice",
        account_id=uuid.uuid4(),
        text="hello",
        created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1),
        state=state,
    )
    for name, value in fields.items():
        setattr(post, name, value)
    return post


def assert_refused(call: Callable[[], object], post: Post, reason: str) -> None:
    """The call raised `reason`: nothing of the post changed and nothing was recorded."""
    before = copy.deepcopy(post)
    with pytest.raises(FailedPrecondition) as raised:
        call()
    assert raised.value.reason == reason
    assert post == before
    assert post.pull_events() == []


def test_scheduling_a_draft_records_scheduled_and_queue_added() -> None:
    post = a_post()
    assert post.schedule(LATER, "Europe/Berlin", Priority.HIGH, NOW) is False
    assert (post.state, post.scheduled_for, post.timezone, post.priority, post.updated_at) == (
        PostState.SCHEDULED,
        LATER,
        "Europe/Berlin",
        Priority.HIGH,
        NOW,
    )
    scheduled, queued = post.pull_events()
    assert isinstance(scheduled, events.PostScheduled)
    assert (scheduled.post_id, scheduled.account_id, scheduled.user_id) == (
        post.id,
        post.account_id,
        "alice",
    )
    assert (scheduled.scheduled_for, scheduled.timezone, scheduled.priority) == (
        LATER,
        "Europe/Berlin",
        Priority.HIGH,
    )
    assert scheduled.previous_scheduled_for is None and scheduled.occurred_at == NOW
    assert isinstance(queued, events.PostQueueAdded)
    assert (queued.due_at, queued.priority, queued.occurred_at) == (LATER, Priority.HIGH, NOW)
    # Handed over once.
    assert post.pull_events() == []


def test_rescheduling_names_the_time_it_had() -> None:
    post = a_post(PostState.SCHEDULED, scheduled_for=LATER)
    again = LATER + timedelta(hours=1)
    assert post.schedule(again, "UTC", Priority.NORMAL, NOW) is True
    scheduled, _ = post.pull_events()
    assert isinstance(scheduled, events.PostScheduled)
    assert (scheduled.scheduled_for, scheduled.previous_scheduled_for) == (again, LATER)
    failed = a_post(PostState.FAILED, scheduled_for=NOW - timedelta(hours=1))
    assert failed.schedule(LATER, "UTC", Priority.LOW, NOW) is False  # not a reschedule
    assert failed.state is PostState.SCHEDULED


@pytest.mark.parametrize(
    "state",
    [PostState.PUBLISHING, PostState.PUBLISHED, PostState.CANCELLED, PostState.DEAD_LETTERED],
)
def test_only_drafts_scheduled_and_failed_posts_are_scheduled(state: PostState) -> None:
    post = a_post(state)
    assert_refused(
        lambda: post.schedule(LATER, "UTC", Priority.NORMAL, NOW), post, "INVALID_POST_STATE"
    )
    with pytest.raises(FailedPrecondition, match=f"cannot schedule a post in state {state}"):
        post.ensure_can("schedule")


def test_cancelling_records_why_and_a_cancelled_post_stays_as_it_is() -> None:
    post = a_post(PostState.SCHEDULED, scheduled_for=LATER)
    assert post.cancel("cancelled by user:alice", NOW) is True
    assert (post.state, post.updated_at) == (PostState.CANCELLED, NOW)
    (cancelled,) = post.pull_events()
    assert isinstance(cancelled, events.PostCancelled)
    assert (cancelled.reason, cancelled.scheduled_for) == ("cancelled by user:alice", LATER)
    version = post.version
    assert post.cancel("again", NOW + timedelta(minutes=1)) is False
    assert (post.updated_at, post.version, post.pull_events()) == (NOW, version, [])
    for state in (PostState.DRAFT, PostState.PUBLISHED, PostState.FAILED):
        other = a_post(state)
        assert_refused(lambda p=other: p.cancel("r", NOW), other, "INVALID_POST_STATE")


def test_queueing_now_puts_the_post_ahead_of_its_priority() -> None:
    post = a_post(priority=Priority.LOW)
    post.queue_now(NOW)
    assert (post.state, post.scheduled_for, post.timezone) == (
        PostState.SCHEDULED,
        NOW - FRONT_OF_QUEUE,
        "UTC",
    )
    (queued,) = post.pull_events()
    assert isinstance(queued, events.PostQueueAdded)
    assert (queued.due_at, queued.priority) == (NOW - FRONT_OF_QUEUE, Priority.LOW)
    kept = a_post(PostState.FAILED, timezone="Asia/Tokyo")
    kept.queue_now(NOW)
    assert kept.timezone == "Asia/Tokyo"


def test_queueing_now_needs_the_override_for_a_post_scheduled_later() -> None:
    post = a_post(PostState.SCHEDULED, scheduled_for=LATER)
    assert_refused(lambda: post.queue_now(NOW), post, "SCHEDULED_FOR_LATER")
    post.queue_now(NOW, override_schedule=True)
    assert post.scheduled_for == NOW - FRONT_OF_QUEUE
    done = a_post(PostState.PUBLISHED)
    assert_refused(lambda: done.queue_now(NOW, override_schedule=True), done, "INVALID_POST_STATE")


def test_queueing_now_may_move_the_post_but_not_a_thread_partly_on_x() -> None:
    post, other = a_post(), uuid.uuid4()
    post.queue_now(NOW, account_id=other)
    (queued,) = post.pull_events()
    assert post.account_id == other and isinstance(queued, events.PostQueueAdded)
    assert queued.account_id == other
    thread = a_post(PostState.FAILED, thread=["two"], segment_x_post_ids=["1"])
    assert_refused(
        lambda: thread.queue_now(NOW, account_id=uuid.uuid4()),
        thread,
        "SEGMENTS_ALREADY_PUBLISHED",
    )


@pytest.mark.parametrize("state", [PostState.DEAD_LETTERED, PostState.FAILED])
def test_requeueing_starts_the_attempts_again_due_now(state: PostState) -> None:
    post = a_post(state, attempt_count=5, scheduled_for=NOW - timedelta(days=1))
    post.requeue(NOW)
    assert (post.state, post.scheduled_for, post.attempt_count, post.updated_at) == (
        PostState.SCHEDULED,
        NOW,
        0,
        NOW,
    )
    (queued,) = post.pull_events()
    assert isinstance(queued, events.PostQueueAdded) and queued.due_at == NOW


def test_only_failed_posts_are_requeued() -> None:
    for state in (PostState.DRAFT, PostState.SCHEDULED, PostState.PUBLISHED):
        post = a_post(state)
        assert_refused(lambda p=post: p.requeue(NOW), post, "INVALID_POST_STATE")


def test_editing_changes_what_is_given_and_records_nothing() -> None:
    campaign, account = uuid.uuid4(), uuid.uuid4()
    post = a_post(PostState.SCHEDULED, campaign_id=campaign, media_ids=["123"])
    post.edit(PostEdit(text="new text", priority=Priority.URGENT, account_id=account), NOW)
    assert (post.text, post.priority, post.account_id, post.updated_at) == (
        "new text",
        Priority.URGENT,
        account,
        NOW,
    )
    assert (post.media_ids, post.campaign_id, post.state) == (
        ["123"],
        campaign,
        PostState.SCHEDULED,
    )
    post.edit(PostEdit(campaign_id=NO_CAMPAIGN, thread=["second"], media_ids=[]), NOW)
    assert (post.campaign_id, post.thread, post.media_ids) == (None, ["second"], [])
    assert post.pull_events() == []


def test_editing_refuses_a_post_past_editing_content_x_refuses_and_changes_to_what_is_on_x() -> (
    None
):
    published = a_post(PostState.PUBLISHED)
    assert_refused(lambda: published.edit(PostEdit(text="x"), NOW), published, "POST_NOT_EDITABLE")
    post = a_post()
    with pytest.raises(InvalidArgument) as raised:
        post.edit(PostEdit(text=""), NOW)
    assert raised.value.violations
    thread = a_post(PostState.FAILED, text="one", thread=["two"], segment_x_post_ids=["1"])
    assert_refused(
        lambda: thread.edit(PostEdit(text="changed"), NOW), thread, "SEGMENTS_ALREADY_PUBLISHED"
    )
    assert_refused(
        lambda: thread.edit(PostEdit(account_id=uuid.uuid4()), NOW),
        thread,
        "SEGMENTS_ALREADY_PUBLISHED",
    )
    thread.edit(PostEdit(thread=["two", "three"]), NOW)  # the rest may still change
    assert thread.segments == ["one", "two", "three"]


def test_recorded_events_are_no_part_of_the_post_as_stored_or_compared() -> None:
    post = a_post()
    twin = dataclasses.replace(post)
    post.schedule(LATER, "UTC", Priority.NORMAL, NOW)
    assert post != twin
    twin.schedule(LATER, "UTC", Priority.NORMAL, NOW)
    assert post == twin
    assert "_events" not in dataclasses.asdict(post)
    assert len(post.pull_events()) == 2 and len(twin.pull_events()) == 2
