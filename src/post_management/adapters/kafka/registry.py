"""Event type -> protobuf message class of proto/xmp/posts/v1/events.proto."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import Message
from xmp.posts.v1 import events_pb2

from post_management.domain import events

EVENT_MESSAGES: Mapping[str, type[Message]] = {
    events.POST_SCHEDULED: events_pb2.PostScheduled,
    events.POST_PUBLISHED: events_pb2.PostPublished,
    events.POST_FAILED: events_pb2.PostFailed,
    events.POST_CANCELLED: events_pb2.PostCancelled,
    events.POST_METRICS_UPDATED: events_pb2.PostMetricsUpdated,
    events.POST_QUEUE_ADDED: events_pb2.PostQueueAdded,
    events.POST_QUEUE_PROCESSED: events_pb2.PostQueueProcessed,
    events.OPTIMAL_TIMING_ANALYZED: events_pb2.OptimalTimingAnalyzed,
    events.RATE_LIMIT_REACHED: events_pb2.RateLimitReached,
    events.ACCOUNT_SUSPENDED: events_pb2.AccountSuspended,
    events.X_SPEND_BUDGET_REACHED: events_pb2.XSpendBudgetReached,
    events.ANALYTICS_TREND_DETECTED: events_pb2.TrendDetected,
}


class UnknownEventType(KeyError):
    """An outbox row or a Kafka record names an event type with no message."""


def message_class(event_type: str) -> type[Message]:
    try:
        return EVENT_MESSAGES[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None
