"""Domain events as events.proto messages (adapters/kafka/serialization.py): the outbox
payload of every event type is exactly the proto3 JSON the outbox held before events
were typed (tests/unit/data/event_payloads.json), and parses back into its message."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from post_management.adapters.kafka.registry import EVENT_MESSAGES
from post_management.adapters.kafka.serialization import (
    InvalidPayload,
    _plan_of,
    message_of,
    message_payload,
    outbox_payload,
    to_message,
)
from post_management.domain import events
from post_management.domain.events import (
    AccountSuspended,
    OptimalTimingAnalyzed,
    PostCancelled,
    PostFailed,
    PostMetricsUpdated,
    PostPublished,
    PostQueueAdded,
    PostQueueProcessed,
    PostScheduled,
    RateLimitReached,
    RateLimitScope,
    TimingSuggestion,
    TrendDetected,
    TrendKind,
    XSpendBudgetReached,
)
from post_management.domain.post import PostState, Priority

EXPECTED = Path(__file__).parent / "data" / "event_payloads.json"

P = uuid.UUID("11111111-1111-4111-8111-111111111111")
A = uuid.UUID("22222222-2222-4222-8222-222222222222")
T0 = datetime(2026, 3, 29, 0, 30, 15, tzinfo=UTC)
T1 = datetime(2026, 3, 29, 0, 30, 15, 123000, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
T3 = datetime(2026, 1, 1, 12, 0, 0, 120, tzinfo=UTC)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def samples() -> list[events.DomainEvent]:
    """Every event type, with times of 0, 3 and 6 fraction digits and other offsets,
    unset optional times, negative and zero durations, int64 counts and empty lists."""
    ids: dict[str, Any] = {"post_id": P, "account_id": A, "user_id": "user-1"}
    acc: dict[str, Any] = {"account_id": A, "user_id": "user-1"}
    moved = {"previous_scheduled_for": T2}
    return [
        PostScheduled(**ids, scheduled_for=T1, timezone="Europe/Berlin",
                      priority=Priority.HIGH, **moved, occurred_at=T0, event_id=_id(1)),
        PostScheduled(**ids, scheduled_for=T3, timezone="UTC", priority=Priority.LOW,
                      occurred_at=T2, event_id=_id(2)),
        PostPublished(**ids, x_post_id="190001", published_at=T1, attempt=2, occurred_at=T1,
                      event_id=_id(3)),
        PostFailed(**ids, error_code="X_UNAVAILABLE", reason="X answered 503", attempt=1,
                   state=PostState.SCHEDULED, next_attempt_at=T2, occurred_at=T0,
                   event_id=_id(4)),
        PostFailed(**ids, error_code="DUPLICATE", reason="dup", attempt=3,
                   state=PostState.DEAD_LETTERED, occurred_at=T3, event_id=_id(5)),
        PostCancelled(**ids, reason="cancelled by user:alice", scheduled_for=T1,
                      occurred_at=T0, event_id=_id(6)),
        PostCancelled(**ids, reason="user", occurred_at=T0, event_id=_id(7)),
        PostMetricsUpdated(**ids, x_post_id="190001", collected_at=T2,
                           counts={"impressions": 12_000_000_000, "likes": 7, "video_views": 3},
                           occurred_at=T2, event_id=_id(8)),
        PostMetricsUpdated(**ids, x_post_id="9", collected_at=T0, counts={}, occurred_at=T0,
                           event_id=_id(9)),
        PostQueueAdded(**ids, due_at=T1, priority=Priority.URGENT, occurred_at=T0,
                       event_id=_id(10)),
        PostQueueProcessed(**ids, state=PostState.PUBLISHED, attempt=1,
                           delay=timedelta(seconds=1, milliseconds=250), occurred_at=T0,
                           event_id=_id(11)),
        PostQueueProcessed(**ids, state=PostState.DEAD_LETTERED, attempt=5,
                           delay=timedelta(microseconds=-1_500_010), occurred_at=T3,
                           event_id=_id(12)),
        PostQueueProcessed(**ids, state=PostState.FAILED, attempt=0, delay=timedelta(0),
                           occurred_at=T3, event_id=_id(13)),
        OptimalTimingAnalyzed(**acc, timezone="America/New_York", days_analyzed=30,
                              sample_size=41,
                              suggestions=[TimingSuggestion(T1, 0.93), TimingSuggestion(T2, 0.5),
                                           TimingSuggestion(T3, 1)],
                              occurred_at=T0, event_id=_id(14)),
        OptimalTimingAnalyzed(**acc, timezone="UTC", days_analyzed=90, sample_size=0,
                              suggestions=[], occurred_at=T0, event_id=_id(15)),
        RateLimitReached(**acc, scope=RateLimitScope.USER, endpoint="POST /2/tweets",
                         limit=100, reset_at=T1, occurred_at=T0, event_id=_id(16)),
        RateLimitReached(**acc, scope=RateLimitScope.APP, endpoint="POST /1.1/media/upload.json",
                         limit=0, reset_at=T2, occurred_at=T0, event_id=_id(17)),
        AccountSuspended(**acc, x_user_id="4242", reason="user-suspended", affected_posts=3,
                         occurred_at=T0, event_id=_id(18)),
        XSpendBudgetReached(**acc, month="2026-03", budget_micros=1_000_000,
                            spent_micros=990_000, needed_micros=15_000, post_id=P,
                            occurred_at=T0, event_id=_id(19)),
        TrendDetected(**acc, post_id=P, kind=TrendKind.POST_ABOVE_NORM, metric="engagements",
                      observed=240.0, expected=31.5, score=6.25,
                      age=timedelta(hours=1, minutes=30), summary="far above", occurred_at=T0,
                      event_id=_id(20)),
        TrendDetected(**acc, post_id=P, kind=TrendKind.POST_BELOW_NORM, metric="engagements",
                      observed=0, expected=3, score=-2.1,
                      age=timedelta(minutes=45, microseconds=5), summary="below",
                      occurred_at=T0, event_id=_id(21)),
        TrendDetected(**acc, kind=TrendKind.FOLLOWER_DROP, metric="followers", observed=950.0,
                      expected=1000.0, score=-0.05, summary="followers fell 5.0%",
                      occurred_at=T1, event_id=_id(22)),
    ]  # fmt: skip


def test_every_payload_is_the_one_the_outbox_held_before() -> None:
    built = samples()
    assert {e.event_type for e in built} == set(events.EVENT_TYPES) == set(EVENT_MESSAGES)
    rows = [
        {
            "event_type": e.event_type,
            "aggregate_type": e.aggregate_type,
            "aggregate_id": e.aggregate_id,
            "occurred_at": e.occurred_at.isoformat(),
            "payload": outbox_payload(e),
        }
        for e in built
    ]
    expected = json.loads(EXPECTED.read_text())
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert row == want


def test_payloads_parse_back_into_the_same_message() -> None:
    for event in samples():
        message = to_message(event.event_type, outbox_payload(event))
        assert type(message) is EVENT_MESSAGES[event.event_type]
        assert message == message_of(event)
        rendered = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
        # The outbox numbers post events when it stores them; a built one has none yet.
        if event.aggregate_type == events.AGGREGATE_POST:
            assert rendered.pop("sequence") == "0"
        assert "sequence" not in rendered
        assert rendered == outbox_payload(event)
        assert rendered["eventId"] == str(event.event_id)


def test_wrong_payloads_are_refused() -> None:
    with pytest.raises(InvalidPayload):
        to_message(events.POST_PUBLISHED, {"attempt": "many"})
    with pytest.raises(InvalidPayload):
        to_message(events.POST_SCHEDULED, {"scheduledFor": "tomorrow"})


def test_direct_rendering_is_json_format_for_every_event_type() -> None:
    # Every event the publishing engine writes is rendered without its message.
    direct = {type(e) for e in samples() if _plan_of(type(e)) is not None}
    assert {
        PostPublished,
        PostFailed,
        PostQueueProcessed,
        RateLimitReached,
        AccountSuspended,
        XSpendBudgetReached,
    } <= direct
    for event in samples():
        assert outbox_payload(event) == message_payload(event), event.event_type


_aware_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone(timedelta(hours=h, minutes=m)) for h, m in
                               ((-12, 0), (-5, 0), (5, 30), (14, 0), (0, 0))]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    at=_aware_times,
    other=st.none() | _aware_times,
    delay=st.timedeltas(min_value=timedelta(days=-3_650_000), max_value=timedelta(days=3_650_000)),
    attempt=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    big=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    text=st.text(),
    state=st.sampled_from(list(PostState)),
    priority=st.sampled_from(list(Priority)),
    scope=st.sampled_from(list(RateLimitScope)),
)
def test_direct_rendering_is_json_format_for_any_values(
    at: datetime,
    other: datetime | None,
    delay: timedelta,
    attempt: int,
    big: int,
    text: str,
    state: PostState,
    priority: Priority,
    scope: RateLimitScope,
) -> None:
    ids: dict[str, Any] = {"post_id": P, "account_id": A, "user_id": text, "occurred_at": at}
    acc: dict[str, Any] = {"account_id": A, "user_id": text, "occurred_at": at}
    built: list[events.DomainEvent] = [
        PostScheduled(**ids, scheduled_for=at, timezone=text, priority=priority,
                      previous_scheduled_for=other),
        PostPublished(**ids, x_post_id=text, published_at=at, attempt=attempt),
        PostFailed(**ids, error_code=text, reason=text, attempt=attempt, state=state,
                   next_attempt_at=other),
        PostCancelled(**ids, reason=text, scheduled_for=other),
        PostQueueAdded(**ids, due_at=at, priority=priority),
        PostQueueProcessed(**ids, state=state, attempt=attempt, delay=delay),
        RateLimitReached(**acc, scope=scope, endpoint=text, limit=attempt, reset_at=at),
        AccountSuspended(**acc, x_user_id=text, reason=text, affected_posts=attempt),
        XSpendBudgetReached(**acc, month=text, budget_micros=big, spent_micros=big,
                            needed_micros=big, post_id=P),
    ]  # fmt: skip
    for event in built:
        assert _plan_of(type(event)) is not None
        assert outbox_payload(event) == message_payload(event), event.event_type


def test_direct_rendering_refuses_what_the_message_refuses() -> None:
    wrong = PostPublished(post_id=P, account_id=A, user_id="u", x_post_id="1",
                          published_at=T0, attempt="2", occurred_at=T0)  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(TypeError):
        message_payload(wrong)
    with pytest.raises(TypeError):
        outbox_payload(wrong)
