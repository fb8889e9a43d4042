"""Domain events are typed values: aware times, known metrics, their aggregate's key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from post_management.domain import events
from post_management.domain.post import PostState, Priority

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
POST, ACCOUNT = uuid.uuid4(), uuid.uuid4()


def test_events_name_their_aggregate_and_keep_times_in_utc() -> None:
    scheduled = events.PostScheduled(
        post_id=POST,
        account_id=ACCOUNT,
        user_id="u",
        scheduled_for=NOW,
        timezone="UTC",
        priority=Priority.LOW,
        occurred_at=NOW,
    )
    assert (scheduled.event_type, scheduled.aggregate_type) == (events.POST_SCHEDULED, "post")
    assert scheduled.aggregate_id == str(POST)
    assert scheduled.occurred_at == NOW and scheduled.occurred_at.tzinfo is UTC
    # Each event has an id of its own unless given one.
    fields = {k: v for k, v in scheduled.__dict__.items() if k != "event_id"}
    assert events.PostScheduled(**fields).event_id != scheduled.event_id
    paused = events.AccountSuspended(
        account_id=ACCOUNT,
        user_id="u",
        x_user_id="1",
        reason="r",
        affected_posts=3,
        occurred_at=NOW,
    )
    assert (paused.aggregate_type, paused.aggregate_id) == ("account", str(ACCOUNT))
    trend = {
        "account_id": ACCOUNT,
        "user_id": "u",
        "metric": "m",
        "observed": 1.0,
        "expected": 2.0,
        "score": 3.0,
        "summary": "s",
        "occurred_at": NOW,
    }
    above = events.TrendDetected(**trend, kind=events.TrendKind.POST_ABOVE_NORM, post_id=POST)
    drop = events.TrendDetected(**trend, kind=events.TrendKind.FOLLOWER_DROP)
    assert (above.aggregate_type, above.aggregate_id) == ("trend", str(POST))
    assert drop.aggregate_id == str(ACCOUNT)
    failed = events.PostFailed(
        post_id=POST,
        account_id=ACCOUNT,
        user_id="u",
        error_code="E",
        reason="r",
        attempt=1,
        state=PostState.SCHEDULED,
        occurred_at=NOW,
    )
    assert not failed.will_retry
    assert events.PostFailed(**{**failed.__dict__, "next_attempt_at": NOW}).will_retry
    assert {cls.event_type for cls in _concrete(events.DomainEvent)} == set(events.EVENT_TYPES)


def _concrete(cls: type[events.DomainEvent]) -> list[type[events.DomainEvent]]:
    found = []
    for sub in cls.__subclasses__():
        found += _concrete(sub)
        if "event_type" in sub.__dict__:
            found.append(sub)
    return found


def test_events_refuse_naive_times_and_unknown_metrics() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        events.PostCancelled(
            post_id=POST,
            account_id=ACCOUNT,
            user_id="u",
            reason="r",
            occurred_at=datetime(2026, 1, 1),
        )
    with pytest.raises(ValueError, match="timezone-aware: scheduled_for"):
        events.PostCancelled(
            post_id=POST,
            account_id=ACCOUNT,
            user_id="u",
            reason="r",
            scheduled_for=datetime(2026, 1, 1),
            occurred_at=NOW,
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        events.TimingSuggestion(datetime(2026, 1, 1), 0.5)
    with pytest.raises(ValueError, match="unknown metrics"):
        events.PostMetricsUpdated(
            post_id=POST,
            account_id=ACCOUNT,
            user_id="u",
            x_post_id="1",
            collected_at=datetime.now(UTC),
            counts={"retweets": 1},
            occurred_at=datetime.now(UTC),
        )


def test_an_event_log_hands_its_events_over_once_in_order() -> None:
    log = events.EventLog()
    first, second, third = (
        events.PostCancelled(
            post_id=POST, account_id=ACCOUNT, user_id="u", reason=r, occurred_at=NOW
        )
        for r in "abc"
    )
    log.add(first, second)
    log.add(third)
    assert len(log) == 3
    assert log.drain() == [first, second, third]
    assert log.drain() == [] and len(log) == 0
