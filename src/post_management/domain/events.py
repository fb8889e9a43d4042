"""Domain events: typed values of what happened, in the domain's own types.

An aggregate records its events (`Post` in domain/post.py) or a use case adds one to
the unit of work's outbox; the unit of work writes them to the outbox table when it
commits, in the transaction of the change (adapters/db/outbox.py). The events carry
no wire format: adapters/kafka/serialization.py turns each into its message of
proto/xmp/posts/v1/events.proto (docs/events.md), and its fields are named after the
message's fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar
from uuid import UUID, uuid4

from post_management.domain.analytics import COUNT_FIELDS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    # Only annotations: domain/post.py records these events.
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

# Post metrics (MetricsSnapshot of analytics_service.proto).
METRIC_NAMES = COUNT_FIELDS


class RateLimitScope(enum.StrEnum):
    """Whose budget ran out: the account's (user) or the whole app's."""

    USER = "user"
    APP = "app"


class TrendKind(enum.StrEnum):
    """What a trend alert found; the values are what trend_alerts.kind stores."""

    POST_ABOVE_NORM = "TREND_KIND_POST_ABOVE_NORM"
    POST_BELOW_NORM = "TREND_KIND_POST_BELOW_NORM"
    FOLLOWER_DROP = "TREND_KIND_FOLLOWER_DROP"


def _require_aware_times(value: DataclassInstance) -> None:
    """ValueError for a datetime field of `value` without its UTC offset."""
    for item in fields(value):
        at = getattr(value, item.name)
        if isinstance(at, datetime) and at.utcoffset() is None:
            raise ValueError(f"event timestamps must be timezone-aware: {item.name}")


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """One event; `aggregate_id` becomes the Kafka key, `event_id` the consumers'
    duplicate check. Every time in it must be timezone-aware."""

    event_type: ClassVar[str]
    aggregate_type: ClassVar[str]

    occurred_at: datetime
    event_id: UUID = field(default_factory=uuid4)

    def __post_init__(self) -> None:
        _require_aware_times(self)
        object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))

    @property
    def aggregate_id(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class OwnedEvent(DomainEvent):
    """An event of one of a user's accounts, or of a post of it."""

    account_id: UUID
    user_id: str


@dataclass(frozen=True, kw_only=True)
class PostEvent(OwnedEvent):
    """An event of one post: numbered in the post's sequence when stored."""

    aggregate_type: ClassVar[str] = AGGREGATE_POST

    post_id: UUID

    @property
    def aggregate_id(self) -> str:
        return str(self.post_id)


@dataclass(frozen=True, kw_only=True)
class AccountEvent(OwnedEvent):
    aggregate_type: ClassVar[str] = AGGREGATE_ACCOUNT

    @property
    def aggregate_id(self) -> str:
        return str(self.account_id)


@dataclass(frozen=True, kw_only=True)
class PostScheduled(PostEvent):
    """Scheduled or rescheduled (`previous_scheduled_for` then says from when)."""

    event_type: ClassVar[str] = POST_SCHEDULED

    scheduled_for: datetime
    timezone: str
    priority: Priority
    previous_scheduled_for: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PostPublished(PostEvent):
    event_type: ClassVar[str] = POST_PUBLISHED

    x_post_id: str
    published_at: datetime
    attempt: int


@dataclass(frozen=True, kw_only=True)
class PostFailed(PostEvent):
    """An attempt failed; `state` is the post's state afterwards, `next_attempt_at`
    when it will be tried again (None: it will not)."""

    event_type: ClassVar[str] = POST_FAILED

    error_code: str
    reason: str
    attempt: int
    state: PostState
    next_attempt_at: datetime | None = None

    @property
    def will_retry(self) -> bool:
        return self.next_attempt_at is not None


@dataclass(frozen=True, kw_only=True)
class PostCancelled(PostEvent):
    event_type: ClassVar[str] = POST_CANCELLED

    reason: str
    scheduled_for: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PostMetricsUpdated(PostEvent):
    """`counts` is keyed by METRIC_NAMES; a missing count is 0."""

    event_type: ClassVar[str] = POST_METRICS_UPDATED

    x_post_id: str
    collected_at: datetime
    counts: Mapping[str, int]

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = set(self.counts) - set(METRIC_NAMES)
        if unknown:
            raise ValueError(f"unknown metrics: {sorted(unknown)}")


@dataclass(frozen=True, kw_only=True)
class PostQueueAdded(PostEvent):
    event_type: ClassVar[str] = POST_QUEUE_ADDED

    due_at: datetime
    priority: Priority


@dataclass(frozen=True, kw_only=True)
class PostQueueProcessed(PostEvent):
    """The engine is done with the post; `delay` runs from its due time to now."""

    event_type: ClassVar[str] = POST_QUEUE_PROCESSED

    state: PostState
    attempt: int
    delay: timedelta


@dataclass(frozen=True)
class TimingSuggestion:
    start_time: datetime
    score: float

    def __post_init__(self) -> None:
        _require_aware_times(self)


@dataclass(frozen=True, kw_only=True)
class OptimalTimingAnalyzed(AccountEvent):
    """`suggestions` best first."""

    event_type: ClassVar[str] = OPTIMAL_TIMING_ANALYZED

    timezone: str
    days_analyzed: int
    sample_size: int
    suggestions: Sequence[TimingSuggestion]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "suggestions", tuple(self.suggestions))


@dataclass(frozen=True, kw_only=True)
class RateLimitReached(AccountEvent):
    event_type: ClassVar[str] = RATE_LIMIT_REACHED

    scope: RateLimitScope
    endpoint: str
    limit: int
    reset_at: datetime


@dataclass(frozen=True, kw_only=True)
class AccountSuspended(AccountEvent):
    """The account's queue stopped: X suspended it, or a streak of failures paused it."""

    event_type: ClassVar[str] = ACCOUNT_SUSPENDED

    x_user_id: str
    reason: str
    affected_posts: int


@dataclass(frozen=True, kw_only=True)
class XSpendBudgetReached(AccountEvent):
    """`month` is UTC "YYYY-MM"; amounts in micro-dollars (docs/x-spend.md)."""

    event_type: ClassVar[str] = X_SPEND_BUDGET_REACHED

    month: str
    budget_micros: int
    spent_micros: int
    needed_micros: int
    post_id: UUID


@dataclass(frozen=True, kw_only=True)
class TrendDetected(AccountEvent):
    """A post far from its account's norm (`post_id`, `age`) or a follower drop; keyed
    by the post, or by the account for a drop."""

    event_type: ClassVar[str] = ANALYTICS_TREND_DETECTED
    aggregate_type: ClassVar[str] = AGGREGATE_TREND

    kind: TrendKind
    metric: str
    observed: float
    expected: float
    score: float
    summary: str
    post_id: UUID | None = None
    age: timedelta | None = None

    @property
    def aggregate_id(self) -> str:
        return str(self.post_id or self.account_id)


class EventLog:
    """Events recorded and not yet written: an aggregate's, or a unit of work's until
    it commits. `drain` hands them over in the order they were added, once."""

    def __init__(self) -> None:
        self._events: list[DomainEvent] = []

    def add(self, *events: DomainEvent) -> None:
        self._events.extend(events)

    def drain(self) -> list[DomainEvent]:
        taken, self._events = self._events, []
        return taken

    def __len__(self) -> int:
        return len(self._events)
