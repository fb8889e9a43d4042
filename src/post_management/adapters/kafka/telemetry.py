"""Relay batches: duration, rows relayed, failures, leadership, and a span for each
batch that did something (the relay polls twice a second; empty polls make no trace)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from post_management.observability import metrics, tracing


def observed_batch(run_once: Callable[[Any], int]) -> Callable[[Any], int]:
    """For OutboxRelay.run_once (which returns the rows it marked sent)."""

    @functools.wraps(run_once)
    def wrapper(relay: Any) -> int:
        metrics.OUTBOX_RELAY_CONFIGURED.set(1)
        started_ns = time.time_ns()
        started = time.perf_counter()
        sent = 0
        error: Exception | None = None
        try:
            sent = run_once(relay)
        except Exception as exc:
            error = exc
            metrics.OUTBOX_RELAY_FAILURES.inc()
            raise
        finally:
            metrics.OUTBOX_RELAY_BATCH.observe(time.perf_counter() - started)
            metrics.OUTBOX_RELAY_LEADER.set(1 if relay.is_active else 0)
            if sent or error is not None:
                _span(started_ns, sent, error)
        metrics.OUTBOX_RELAYED.inc(sent)
        return sent

    return wrapper


def _span(started_ns: int, sent: int, error: Exception | None) -> None:
    span = tracing.tracer.start_span(
        "outbox relay batch", kind=SpanKind.PRODUCER, start_time=started_ns
    )
    span.set_attribute("outbox.relayed", sent)
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()
