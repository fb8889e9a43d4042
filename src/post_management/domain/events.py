"""Domain events: what the services write to the outbox in the same transaction
as the change they describe.

Each builder returns a `DomainEvent` whose `payload` is the proto3 JSON form of
the matching message in proto/xmp/posts/v1/events.proto, exactly as
`json_format.MessageToDict(message, always_print_fields_with_no_presence=True)`
renders it: camelCase keys, timestamps as RFC 3339 strings in UTC ("...Z"),
int64 as decimal strings, enums by name, unset timestamps left out; only the
`sequence` of post events is left out, as the outbox numbers them when they are
stored (docs/events.md) and the relay sets it in the message. The domain
stays free of protobuf; the Kafka relay parses payloads into the messages and
so refuses a payload that drifts from the schema.

Services store one with (fields match `ports.repositories.OutboxEvent`):

    uow.outbox.add(OutboxEvent(**dataclasses.asdict(event)))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from post_management.domain.analytics import COUNT_FIELDS
from post_management.domain.post import PostState, Priority

POST_SCHEDULED = "post.scheduled"
POST_PUBLISHED = "post.published"
POST_FAILED = "post.failed"
POST_CANCELLED = "post.cancelled"
POST_METRICS_UPDATED = "post.metrics_updated"
POST_QUEUE_ADDED = "post.queue_added"
POST_QUEUE_PROCESSED = "post.queue_processed"
OPTIMAL_TIMING_ANALYZED = "optimal_timing.analyzed"
RATE_LIMIT_REACHED = "rate_limit.reached"
ACCOUNT_SUSPENDED = "account.suspended"
X_SPEND_BUDGET_REACHED = "x_spend.budget_reached"
ANALYTICS_TREND_DETECTED = "analytics.trend_detected"

EVENT_TYPES: tuple[str, ...] = (
    POST_SCHEDULED,
    POST_PUBLISHED,
    POST_FAILED,
    POST_CANCELLED,
    POST_METRICS_UPDATED,
    POST_QUEUE_ADDED,
    POST_QUEUE_PROCESSED,
    OPTIMAL_TIMING_ANALYZED,
    RATE_LIMIT_REACHED,
    ACCOUNT_SUSPENDED,
    X_SPEND_BUDGET_REACHED,
    ANALYTICS_TREND_DETECTED,
)

AGGREGATE_POST = "post"
AGGREGATE_ACCOUNT = "account"
# Trend alerts are keyed by their post or account but are not post events: they take
# no number in the post's event sequence.
AGGREGATE_TREND = "trend"

# TrendKind values of events.proto.
TREND_POST_ABOVE_NORM = "TREND_KIND_POST_ABOVE_NORM"
TREND_POST_BELOW_NORM = "TREND_KIND_POST_BELOW_NORM"
TREND_FOLLOWER_DROP = "TREND_KIND_FOLLOWER_DROP"
TREND_KINDS = (TREND_POST_ABOVE_NORM, TREND_POST_BELOW_NORM, TREND_FOLLOWER_DROP)

# RateLimitScope values of events.proto.
RATE_LIMIT_SCOPE_USER = "RATE_LIMIT_SCOPE_USER"
RATE_LIMIT_SCOPE_APP = "RATE_LIMIT_SCOPE_APP"

# MetricsSnapshot fields (analytics_service.proto); all int64 counts.
METRIC_NAMES = COUNT_FIELDS


@dataclass(frozen=True)
class DomainEvent:
    """One outbox row to be. `aggregate_id` becomes the Kafka key."""

    event_id: UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any] = field(repr=False)
    occurred_at: datetime


def json_timestamp(value: datetime) -> str:
    """A Timestamp in proto3 JSON: UTC, "Z", 0/3/6 fraction digits like protobuf."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("event timestamps must be timezone-aware")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    micros = utc.microsecond
    if micros == 0:
        return text + "Z"
    if micros % 1000 == 0:
        return f"{text}.{micros // 1000:03d}Z"
    return f"{text}.{micros:06d}Z"


def json_duration(value: timedelta) -> str:
    """A Duration in proto3 JSON ("1.500s"), with the same fraction rule."""
    total_micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if total_micros < 0 else ""
    seconds, micros = divmod(abs(total_micros), 1_000_000)
    if micros == 0:
        return f"{sign}{seconds}s"
    if micros % 1000 == 0:
        return f"{sign}{seconds}.{micros // 1000:03d}s"
    return f"{sign}{seconds}.{micros:06d}s"


def _priority(priority: Priority) -> str:
    return f"PRIORITY_{priority.name}"


def _state(state: PostState) -> str:
    return f"POST_STATE_{state.value}"


def _event(
    event_type: str,
    aggregate_type: str,
    aggregate_id: UUID,
    occurred_at: datetime,
    event_id: UUID | None,
    body: dict[str, Any],
) -> DomainEvent:
    event_id = event_id or uuid4()
    payload: dict[str, Any] = {"eventId": str(event_id), "occurredAt": json_timestamp(occurred_at)}
    # Unset timestamps are absent in proto3 JSON, not null.
    payload.update({key: value for key, value in body.items() if value is not None})
    return DomainEvent(
        event_id=event_id,
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload,
        occurred_at=occurred_at.astimezone(UTC),
    )


def _opt_ts(value: datetime | None) -> str | None:
    return None if value is None else json_timestamp(value)


def _post_ids(post_id: UUID, account_id: UUID, user_id: str) -> dict[str, Any]:
    return {"postId": str(post_id), "accountId": str(account_id), "userId": user_id}


def post_scheduled(
    *,
    post_id: UUID,
    account_id: UUID,
    user_id: str,
    scheduled_for: datetime,
    timezone: str,
    priority: Priority,
    occurred_at: datetime,
    previous_scheduled_for: datetime | None = None,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = _post_ids(post_id, account_id, user_id) | {
        "scheduledFor": json_timestamp(scheduled_for),
        "timezone": timezone,
        "priority": _priority(priority),
        "previousScheduledFor": _opt_ts(previous_scheduled_for),
    }
    return _event(POST_SCHEDULED, AGGREGATE_POST, post_id, occurred_at, event_id, body)


def post_published(
    *,
    post_id: UUID,
    account_id: UUID,
    user_id: str,
    x_post_id: str,
    published_at: datetime,
    attempt: int,
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = _post_ids(post_id, account_id, user_id) | {
        "xPostId": x_post_id,
        "publishedAt": json_timestamp(published_at),
        "attempt": attempt,
    }
    return _event(POST_PUBLISHED, AGGREGATE_POST, post_id, occurred_at, event_id, body)


def post_failed(
    *,
    post_id: UUID,
    account_id: UUID,
    user_id: str,
    error_code: str,
    reason: str,
    attempt: int,
    state: PostState,
    occurred_at: datetime,
    next_attempt_at: datetime | None = None,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = _post_ids(post_id, account_id, user_id) | {
        "errorCode": error_code,
        "reason": reason,
        "attempt": attempt,
        "willRetry": next_attempt_at is not None,
        "nextAttemptAt": _opt_ts(next_attempt_at),
        "state": _state(state),
    }
    return _event(POST_FAILED, AGGREGATE_POST, post_id, occurred_at, event_id, body)


def post_cancelled(
    *,
    post_id: UUID,
    account_id: UUID,
    user_id: str,
    reason: str,
    occurred_at: datetime,
    scheduled_for: datetime | None = None,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = _post_ids(post_id, account_id, user_id) | {
        "reason": reason,
        "scheduledFor": _opt_ts(scheduled_for),
    }
    return _event(POST_CANCELLED, AGGREGATE_POST, post_id, occurred_at, event_id, body)


def post_metrics_updated(
    *,
    post_id: UUID,
    account_id: UUID,
    user_id: str,
    x_post_id: str,
    collected_at: datetime,
    counts: Mapping[str, int],
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    """`counts` is keyed by METRIC_NAMES (snake_case); missing counts are 0."""
    unknown = set(counts) - set(METRIC_NAMES)
    if unknown:
        raise ValueError(f"unknown metrics: {sorted(unknown)}")
    metrics: dict[str, Any] = {"collectedAt": json_timestamp(collected_at)}
    for name in METRIC_NAMES:
        metrics[_camel(name)] = str(int(counts.get(name, 0)))
    body = _post_ids(post_id, account_id, user_id) | {"xPostId": x_post_id, "metrics": metrics}
    return _event(POST_METRICS_UPDATED, AGGREGATE_POST, post_id, occurred_at, event_id, body)


def post_queue_added(
    *,
    post_id: UUID,
    account_id: UUID,
    user_id: str,
    due_at: datetime,
    priority: Priority,
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = _post_ids(post_id, account_id, user_id) | {
        "dueAt": json_timestamp(due_at),
        "priority": _priority(priority),
    }
    return _event(POST_QUEUE_ADDED, AGGREGATE_POST, post_id, occurred_at, event_id, body)


def post_queue_processed(
    *,
    post_id: UUID,
    account_id: UUID,
    user_id: str,
    state: PostState,
    attempt: int,
    delay: timedelta,
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = _post_ids(post_id, account_id, user_id) | {
        "state": _state(state),
        "attempt": attempt,
        "delay": json_duration(delay),
    }
    return _event(POST_QUEUE_PROCESSED, AGGREGATE_POST, post_id, occurred_at, event_id, body)


def optimal_timing_analyzed(
    *,
    account_id: UUID,
    user_id: str,
    timezone: str,
    days_analyzed: int,
    sample_size: int,
    suggestions: Sequence[tuple[datetime, float]],
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    """`suggestions` are (start time, score) pairs, best first."""
    body = {
        "accountId": str(account_id),
        "userId": user_id,
        "timezone": timezone,
        "daysAnalyzed": days_analyzed,
        "sampleSize": sample_size,
        "suggestions": [
            {"startTime": json_timestamp(start), "score": float(score)}
            for start, score in suggestions
        ],
    }
    return _event(
        OPTIMAL_TIMING_ANALYZED, AGGREGATE_ACCOUNT, account_id, occurred_at, event_id, body
    )


def rate_limit_reached(
    *,
    account_id: UUID,
    user_id: str,
    scope: str,
    endpoint: str,
    limit: int,
    reset_at: datetime,
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    """`scope` is RATE_LIMIT_SCOPE_USER or RATE_LIMIT_SCOPE_APP."""
    if scope not in (RATE_LIMIT_SCOPE_USER, RATE_LIMIT_SCOPE_APP):
        raise ValueError(f"unknown rate-limit scope {scope!r}")
    body = {
        "accountId": str(account_id),
        "userId": user_id,
        "scope": scope,
        "endpoint": endpoint,
        "limit": limit,
        "resetAt": json_timestamp(reset_at),
    }
    return _event(RATE_LIMIT_REACHED, AGGREGATE_ACCOUNT, account_id, occurred_at, event_id, body)


def account_suspended(
    *,
    account_id: UUID,
    user_id: str,
    x_user_id: str,
    reason: str,
    affected_posts: int,
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = {
        "accountId": str(account_id),
        "userId": user_id,
        "xUserId": x_user_id,
        "reason": reason,
        "affectedPosts": affected_posts,
    }
    return _event(ACCOUNT_SUSPENDED, AGGREGATE_ACCOUNT, account_id, occurred_at, event_id, body)


def x_spend_budget_reached(
    *,
    account_id: UUID,
    user_id: str,
    month: str,
    budget_micros: int,
    spent_micros: int,
    needed_micros: int,
    post_id: UUID,
    occurred_at: datetime,
    event_id: UUID | None = None,
) -> DomainEvent:
    body = {
        "accountId": str(account_id),
        "userId": user_id,
        "month": month,
        "budgetMicros": str(budget_micros),
        "spentMicros": str(spent_micros),
        "neededMicros": str(needed_micros),
        "postId": str(post_id),
    }
    return _event(
        X_SPEND_BUDGET_REACHED, AGGREGATE_ACCOUNT, account_id, occurred_at, event_id, body
    )


def trend_detected(
    *,
    account_id: UUID,
    user_id: str,
    kind: str,
    metric: str,
    observed: float,
    expected: float,
    score: float,
    summary: str,
    occurred_at: datetime,
    post_id: UUID | None = None,
    age: timedelta | None = None,
    event_id: UUID | None = None,
) -> DomainEvent:
    """A post far from its account's norm (`post_id`, `age`) or a follower drop; keyed
    by the post, or by the account for a drop."""
    if kind not in TREND_KINDS:
        raise ValueError(f"unknown trend kind {kind!r}")
    body = {
        "accountId": str(account_id),
        "userId": user_id,
        "postId": str(post_id) if post_id else "",
        "kind": kind,
        "metric": metric,
        "observed": float(observed),
        "expected": float(expected),
        "score": float(score),
        "age": json_duration(age) if age is not None else None,
        "summary": summary,
    }
    key = post_id or account_id
    return _event(ANALYTICS_TREND_DETECTED, AGGREGATE_TREND, key, occurred_at, event_id, body)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
