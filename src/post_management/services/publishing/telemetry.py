"""Telemetry of the publishing engine: what each settlement means for the metrics,
spans around publishes and reconciliations, and the dispatcher's tick statistics.

Kept apart from the engine so its code stays about publishing; the engine uses
`observed()` on its queue and the decorators below.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, cast
from uuid import UUID

from post_management.domain import events
from post_management.domain.post import PostState
from post_management.domain.publishing import Claim, Settlement
from post_management.observability import context, metrics, tracing
from post_management.ports.publishing import PublishQueue

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

_FINAL_COUNTERS = {
    PostState.PUBLISHED: metrics.POSTS_PUBLISHED,
    PostState.FAILED: metrics.POSTS_FAILED,
    PostState.DEAD_LETTERED: metrics.POSTS_DEAD_LETTERED,
}


def record_settlement(claim: Claim, settlement: Settlement) -> None:
    """Count a settlement that was applied (its transaction committed)."""
    metrics.PUBLISH_SETTLEMENTS.labels(settlement.outcome).inc()
    priority = metrics.priority_label(claim.priority)
    counter = _FINAL_COUNTERS.get(settlement.state)
    if counter is not None:
        counter.labels(priority).inc()
    if settlement.state is PostState.PUBLISHED:
        late = (settlement.published_at or claim.now()) - claim.due_at
        metrics.PUBLISH_LATENESS.labels(priority).observe(max(late, timedelta(0)).total_seconds())
    for event in settlement.events:
        if isinstance(event, events.RateLimitReached):
            metrics.RATE_LIMIT_WAITS.labels(event.scope.value).inc()
    log.info(
        "publish settled",
        extra={
            "outcome": settlement.outcome,
            "state": str(settlement.state),
            "attempt": claim.attempt_number,
        },
    )


def app_budget_spent() -> None:
    """A dispatcher tick that claimed nothing because the app's posting budget is spent."""
    metrics.RATE_LIMIT_WAITS.labels("app").inc()
    log.debug("app posting budget spent; nothing claimed this tick")


class _ObservedQueue:
    """A PublishQueue that spans its transactions and counts applied settlements."""

    def __init__(self, inner: PublishQueue) -> None:
        self._inner = inner

    def claim_due(self, limit: int, lease: timedelta) -> list[Claim]:
        with tracing.span("queue claim_due", {"limit": limit}):
            return self._inner.claim_due(limit, lease)

    def claim_post(self, post_id: UUID, lease: timedelta) -> Claim | None:
        with tracing.span("queue claim_post", {"post.id": str(post_id)}):
            return self._inner.claim_post(post_id, lease)

    def claim_for_reconcile(self, limit: int, lease: timedelta) -> list[Claim]:
        with tracing.span("queue claim_for_reconcile", {"limit": limit}):
            claims = self._inner.claim_for_reconcile(limit, lease)
        metrics.RECONCILED.inc(len(claims))
        return claims

    def settle(self, claim: Claim, settlement: Settlement) -> bool:
        with tracing.span("queue settle", {"outcome": settlement.outcome}) as span:
            applied = self._inner.settle(claim, settlement)
            span.set_attribute("settle.applied", applied)
        if applied:
            record_settlement(claim, settlement)
        return applied

    def settle_many(self, items: Sequence[tuple[Claim, Settlement]]) -> list[bool | Exception]:
        with tracing.span("queue settle_many", {"settle.batch": len(items)}):
            results = self._inner.settle_many(items)
        for (claim, settlement), applied in zip(items, results, strict=True):
            if applied is True:
                record_settlement(claim, settlement)
        return results

    def __getattr__(self, name: str) -> Any:
        # Everything else (extend, ...) passes through untouched.
        return getattr(self._inner, name)


def observed(queue: PublishQueue) -> PublishQueue:
    if isinstance(queue, _ObservedQueue):
        return queue
    return cast(PublishQueue, _ObservedQueue(queue))


@contextmanager
def _claim_scope(name: str, claim: Claim) -> Iterator[None]:
    """A span and log fields for work on one claim; a correlation id unless one is current."""
    with (
        context.correlated(
            context.current() or None, post_id=str(claim.post_id), account_id=str(claim.account_id)
        ),
        tracing.span(name, {"post.id": str(claim.post_id)}),
    ):
        yield


def _claim_of(args: tuple[Any, ...]) -> Claim:
    return next(arg for arg in args if isinstance(arg, Claim))


def publishing(
    function: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """For Publisher.run: one span (a trace of its own when dispatched) per claim."""

    @functools.wraps(function)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _claim_scope("publish", _claim_of(args)):
            return await function(*args, **kwargs)

    return wrapper


def reconciling(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """For Reconciler.reconcile: one span per claim whose outcome on X is unknown."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _claim_scope("reconcile", _claim_of(args)):
            return function(*args, **kwargs)

    return wrapper


def dispatch_tick(function: Callable[_P, int]) -> Callable[_P, int]:
    """For Dispatcher.tick: batch size and duration. No span: most ticks find nothing,
    and each publish starts its own trace."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> int:
        started = time.perf_counter()
        claimed = function(*args, **kwargs)
        metrics.DISPATCH_TICK.observe(time.perf_counter() - started)
        metrics.DISPATCH_BATCH.observe(claimed)
        return claimed

    return wrapper
