"""The outcome table (domain/publishing/outcomes.py): what each X answer means for a
claimed post, and the events each settlement records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from post_management.domain import events
from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing import Claim, Settlement, outcomes
from post_management.domain.x_answers import (
    AccountSuspended,
    Duplicate,
    PermanentFailure,
    Published,
    PublishOutcome,
    Quota,
    RateLimited,
    RateLimitInfo,
    Unauthorized,
    UnknownOutcome,
)
from tests.unit.domain.claims import TIMING, a_claim

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _claim(attempt: int = 1) -> Claim:
    return a_claim(NOW, attempt)


def _types(settlement: Settlement) -> list[str]:
    return [event.event_type for event in settlement.events]


E = TypeVar("E", bound=events.DomainEvent)


def _event(settlement: Settlement, index: int, kind: type[E]) -> E:
    event = settlement.events[index]
    assert isinstance(event, kind)
    return event


def test_published_records_the_post_and_its_delay() -> None:
    claim = _claim()
    settled = outcomes.published(claim, "777", NOW, "published")
    assert (settled.state, settled.outcome, settled.x_post_id) == (
        PostState.PUBLISHED,
        "published",
        "777",
    )
    assert settled.published_at == NOW and settled.account_rate_limited_until is None
    assert _types(settled) == [events.POST_PUBLISHED, events.POST_QUEUE_PROCESSED]
    published = _event(settled, 0, events.PostPublished)
    processed = _event(settled, 1, events.PostQueueProcessed)
    assert published.aggregate_id == str(claim.post_id)
    assert published.x_post_id == "777"
    assert processed.delay == timedelta(seconds=5)


def test_published_with_a_spent_quota_holds_the_account_until_its_reset() -> None:
    window_reset, day_reset = NOW + timedelta(minutes=15), NOW + timedelta(hours=20)
    info = RateLimitInfo(
        window=Quota(100, 0, window_reset),
        app_day=Quota(10_000, 0, day_reset),
        user_day=Quota(50, 3, NOW + timedelta(hours=30)),
    )
    settled = outcomes.published(_claim(), "777", NOW, "published", info)
    assert settled.account_rate_limited_until == day_reset
    assert _types(settled)[-1] == events.RATE_LIMIT_REACHED
    reached = _event(settled, -1, events.RateLimitReached)
    # The quota spent longest (the app's day) is the one reported.
    assert reached.scope is events.RateLimitScope.APP and reached.limit == 10_000


def test_a_transient_failure_retries_with_backoff_until_the_attempts_are_spent() -> None:
    retry = outcomes.retry_or_dead_letter(_claim(attempt=1), "X_UNREACHABLE", "down", NOW, TIMING)
    assert (retry.state, retry.outcome, retry.detail) == (PostState.SCHEDULED, "retry", "down")
    assert retry.due_in is not None
    assert timedelta(seconds=15) <= retry.due_in <= timedelta(seconds=30)
    assert len(retry.events) == 1
    failed = _event(retry, 0, events.PostFailed)
    assert failed.event_type == events.POST_FAILED and failed.will_retry is True

    dead = outcomes.retry_or_dead_letter(_claim(attempt=3), "X_UNREACHABLE", "down", NOW, TIMING)
    assert (dead.state, dead.outcome) == (PostState.DEAD_LETTERED, "dead_lettered")
    assert dead.detail == "gave up after 3 attempts: down" and dead.due_in is None
    assert _types(dead) == [events.POST_FAILED, events.POST_QUEUE_PROCESSED]
    assert _event(dead, 0, events.PostFailed).will_retry is False


def test_a_rate_limit_waits_without_spending_an_attempt() -> None:
    reset = NOW + timedelta(minutes=15)
    settled = outcomes.rate_limited(_claim(), reset, events.RateLimitScope.USER, 100, NOW)
    assert (settled.state, settled.outcome) == (PostState.SCHEDULED, "rate_limited")
    assert settled.refund_attempt and settled.account_rate_limited_until == reset
    assert settled.due_in is None  # keeps its due time and priority
    assert _types(settled) == [events.RATE_LIMIT_REACHED]


def test_the_x_budget_holds_the_account_for_the_month() -> None:
    settled = outcomes.budget_wait(
        _claim(), budget=1_000_000, spent=990_000, needed=20_000, now=NOW
    )
    assert (settled.state, settled.outcome) == (PostState.SCHEDULED, "x_budget")
    assert settled.refund_attempt and settled.account_budget_month == "2026-06"
    assert "0.020 USD more" in settled.detail
    assert _types(settled) == [events.X_SPEND_BUDGET_REACHED]


@pytest.mark.parametrize(
    ("decide", "outcome", "account_state"),
    [
        (outcomes.suspended, "account_suspended", AccountState.SUSPENDED),
        (outcomes.parked, "parked", AccountState.PAUSED),
    ],
)
def test_a_stopped_account_keeps_the_post_waiting(
    decide: Callable[[Claim, str, datetime], Settlement],
    outcome: str,
    account_state: AccountState,
) -> None:
    claim = _claim()
    settled = decide(claim, "why", NOW)
    assert (settled.state, settled.outcome, settled.detail) == (PostState.SCHEDULED, outcome, "why")
    assert settled.refund_attempt and settled.account_state is account_state
    assert len(settled.events) == 1
    stopped = _event(settled, 0, events.AccountSuspended)
    assert stopped.event_type == events.ACCOUNT_SUSPENDED
    assert stopped.aggregate_id == str(claim.account_id)
    assert stopped.reason == "why" and stopped.affected_posts == 1


def test_an_unknown_outcome_stays_publishing_for_the_reconciler() -> None:
    settled = outcomes.unknown(_claim(), "no_answer", "timeout", NOW, TIMING)
    assert (settled.state, settled.outcome, settled.unknown_cause) == (
        PostState.PUBLISHING,
        "unknown",
        "no_answer",
    )
    assert settled.reconcile_in == TIMING.settle_delay and settled.events == ()


def test_an_outcome_x_cannot_tell_dead_letters_and_may_suspend_the_account() -> None:
    dead = outcomes.outcome_unknown(_claim(), "X is down", NOW)
    assert dead.state is PostState.DEAD_LETTERED and dead.account_state is None
    assert dead.detail.startswith("outcome on X unknown, check X before requeueing")
    assert _event(dead, 0, events.PostFailed).error_code == "X_OUTCOME_UNKNOWN"
    assert _types(dead) == [events.POST_FAILED, events.POST_QUEUE_PROCESSED]

    both = outcomes.outcome_unknown(_claim(), "X is down", NOW, suspend_reason="tokens revoked")
    assert both.state is PostState.DEAD_LETTERED
    assert both.account_state is AccountState.SUSPENDED
    assert _types(both) == [
        events.POST_FAILED,
        events.POST_QUEUE_PROCESSED,
        events.ACCOUNT_SUSPENDED,
    ]
    assert _event(both, -1, events.AccountSuspended).reason == "tokens revoked"


def test_resuming_a_thread_is_progress_not_failure() -> None:
    settled = outcomes.resume()
    assert (settled.state, settled.outcome, settled.due_in) == (
        PostState.SCHEDULED,
        "adopted_segment",
        timedelta(0),
    )
    assert settled.events == ()


@pytest.mark.parametrize(
    ("answer", "state", "outcome", "detail"),
    [
        (Published("9"), PostState.PUBLISHED, "published", ""),
        (RateLimited(NOW + timedelta(minutes=1)), PostState.SCHEDULED, "rate_limited", "rate"),
        (Duplicate(), PostState.PUBLISHING, "unknown", "X refused duplicate content"),
        (AccountSuspended("banned"), PostState.SCHEDULED, "account_suspended", "account"),
        (Unauthorized("revoked"), PostState.SCHEDULED, "account_suspended", "tokens revoked"),
        (PermanentFailure("too long", 400), PostState.FAILED, "failed", "too long"),
        (UnknownOutcome("refused", request_sent=False), PostState.SCHEDULED, "retry", "refused"),
        (UnknownOutcome("timeout"), PostState.PUBLISHING, "unknown", "timeout"),
    ],
)
def test_each_create_post_answer_settles_the_post(
    answer: PublishOutcome, state: PostState, outcome: str, detail: str
) -> None:
    settled = outcomes.settle_publish(_claim(), answer, NOW, TIMING)
    assert (settled.state, settled.outcome) == (state, outcome)
    assert settled.detail.startswith(detail)


def test_only_an_answer_that_never_reached_x_is_retried_at_once() -> None:
    sent = outcomes.settle_publish(_claim(), UnknownOutcome("timeout"), NOW, TIMING)
    assert sent.unknown_cause == "no_answer" and sent.due_in is None
    duplicate = outcomes.settle_publish(_claim(), Duplicate(), NOW, TIMING)
    assert duplicate.unknown_cause == "duplicate"
    failed = outcomes.settle_publish(_claim(), PermanentFailure("bad", 403), NOW, TIMING)
    assert _event(failed, 0, events.PostFailed).error_code == "X_403"


@pytest.mark.parametrize(
    ("answer", "state", "outcome", "code"),
    [
        (UnknownOutcome("timeout"), PostState.SCHEDULED, "retry", "X_MEDIA_UNKNOWN"),
        (PermanentFailure("bad media", 400), PostState.FAILED, "failed", "X_MEDIA_400"),
        (PermanentFailure("bad media"), PostState.FAILED, "failed", "X_MEDIA_REJECTED"),
    ],
)
def test_a_media_failure_never_waits_for_the_reconciler(
    answer: UnknownOutcome | PermanentFailure, state: PostState, outcome: str, code: str
) -> None:
    settled = outcomes.settle_media_failure(_claim(), answer, NOW, TIMING)
    assert (settled.state, settled.outcome) == (state, outcome)
    assert settled.detail.startswith("media: ")
    assert _event(settled, 0, events.PostFailed).error_code == code


def test_a_media_rate_limit_names_the_upload_endpoint() -> None:
    reset = NOW + timedelta(minutes=15)
    settled = outcomes.settle_media_failure(_claim(), RateLimited(reset, limit=50), NOW, TIMING)
    assert settled.outcome == "rate_limited" and settled.account_rate_limited_until == reset
    limited = _event(settled, 0, events.RateLimitReached)
    assert limited.endpoint == "POST /1.1/media/upload.json" and limited.limit == 50
    suspended = outcomes.settle_media_failure(_claim(), Unauthorized("gone"), NOW, TIMING)
    assert suspended.account_state is AccountState.SUSPENDED
    assert suspended.detail == "tokens revoked: gone"
