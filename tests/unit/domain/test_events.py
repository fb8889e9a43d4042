"""Domain event payloads are exactly the proto3 JSON of their messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import json_format

from post_management.adapters.kafka.registry import EVENT_MESSAGES
from post_management.adapters.kafka.serialization import InvalidPayload, to_message
from post_management.domain import events
from post_management.domain.post import PostState, Priority


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 1, 1, 12, 0, 0, 120, tzinfo=UTC),
    ],
)
def test_payloads_round_trip_through_the_messages(moment: datetime) -> None:
    post, account = uuid.uuid4(), uuid.uuid4()
    built = [
        events.post_scheduled(
            post_id=post,
            account_id=account,
            user_id="u",
            scheduled_for=moment,
            timezone="UTC",
            priority=Priority.LOW,
            occurred_at=moment,
        ),
        events.post_failed(
            post_id=post,
            account_id=account,
            user_id="u",
            error_code="DUPLICATE_CONTENT",
            reason="duplicate",
            attempt=3,
            state=PostState.FAILED,
            occurred_at=moment,
        ),
        events.post_queue_processed(
            post_id=post,
            account_id=account,
            user_id="u",
            state=PostState.DEAD_LETTERED,
            attempt=5,
            delay=timedelta(microseconds=-1_500_010),
            occurred_at=moment,
        ),
        events.post_metrics_updated(
            post_id=post,
            account_id=account,
            user_id="u",
            x_post_id="9",
            collected_at=moment,
            counts={},
            occurred_at=moment,
        ),
    ]
    for event in built:
        message = to_message(event.event_type, event.payload)
        assert type(message) is EVENT_MESSAGES[event.event_type]
        rendered = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
        # The outbox numbers post events when they are stored; a built one has none yet.
        assert rendered.pop("sequence") == "0"
        assert rendered == event.payload
        assert event.aggregate_id == str(post)


def test_builders_refuse_naive_times_and_unknown_values() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        events.json_timestamp(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown metrics"):
        events.post_metrics_updated(
            post_id=uuid.uuid4(),
            account_id=uuid.uuid4(),
            user_id="u",
            x_post_id="1",
            collected_at=datetime.now(UTC),
            counts={"retweets": 1},
            occurred_at=datetime.now(UTC),
        )
    with pytest.raises(InvalidPayload):
        to_message(events.POST_PUBLISHED, {"attempt": "many"})
