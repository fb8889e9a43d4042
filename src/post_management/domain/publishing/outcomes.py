"""The outcome table: what each X answer means for a claimed post (docs/reliability.md),
as Settlements carrying the domain events they record."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypedDict
from uuid import UUID

from post_management.domain import events
from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing.claim import Claim
from post_management.domain.publishing.settlement import Settlement
from post_management.domain.retry import RetryPolicy
from post_management.domain.x_answers import (
    AccountSuspended,
    Duplicate,
    Failure,
    PermanentFailure,
    Published,
    PublishOutcome,
    RateLimited,
    RateLimitInfo,
    Unauthorized,
    UnknownOutcome,
)
from post_management.domain.x_spend import MICROS_PER_USD


@dataclass(frozen=True)
class Timing:
    policy: RetryPolicy
    # How long after an unknown outcome the reconciler first looks (and then how
    # often): most posts are listed by then and are adopted at the first look.
    settle_delay: timedelta
    # How long the reconciler keeps a post PUBLISHING while X cannot say whether it
    # is there: it blocks the account's queue meanwhile.
    give_up: timedelta = timedelta(hours=1)
    # X_TIMELINE_LAG_SECONDS: how long after the send "not on the timeline" proves
    # nothing yet (X's timeline lag, and X finishing a request after the caller gave
    # up); only after it may a post whose outcome is unknown be sent again.
    lag_bound: timedelta = timedelta(seconds=120)


class _PostIds(TypedDict):
    post_id: UUID
    account_id: UUID
    user_id: str


class _AccountIds(TypedDict):
    account_id: UUID
    user_id: str


def _ids(claim: Claim) -> _PostIds:
    return {"post_id": claim.post_id, "account_id": claim.account_id, "user_id": claim.user_id}


def _account_ids(claim: Claim) -> _AccountIds:
    return {"account_id": claim.account_id, "user_id": claim.user_id}


def published(
    claim: Claim,
    x_post_id: str,
    now: datetime,
    outcome: str,
    rate_limit: RateLimitInfo | None = None,
) -> Settlement:
    held = _spent_budget(claim, rate_limit, now)
    return Settlement(
        state=PostState.PUBLISHED,
        outcome=outcome,
        x_post_id=x_post_id,
        published_at=now,
        # X's headers say the budget is spent: the account waits for the reset
        # instead of spending a call on a certain 429.
        account_rate_limited_until=rate_limit.blocked_until() if rate_limit else None,
        events=(
            events.PostPublished(
                **_ids(claim),
                x_post_id=x_post_id,
                published_at=now,
                attempt=claim.attempt_number,
                occurred_at=now,
            ),
            _processed(claim, PostState.PUBLISHED, now),
            *held,
        ),
    )


def _spent_budget(
    claim: Claim, rate_limit: RateLimitInfo | None, now: datetime
) -> tuple[events.DomainEvent, ...]:
    """`rate_limit.reached` for the quota X's headers report spent, if any."""
    if rate_limit is None or rate_limit.blocked_until() is None:
        return ()
    scoped = (
        (rate_limit.window, events.RateLimitScope.USER),
        (rate_limit.user_day, events.RateLimitScope.USER),
        (rate_limit.app_day, events.RateLimitScope.APP),
    )
    quota, scope = max(
        ((q, sc) for q, sc in scoped if q is not None and q.remaining <= 0),
        key=lambda pair: pair[0].reset_at,
    )
    return (
        events.RateLimitReached(
            **_account_ids(claim),
            scope=scope,
            endpoint="POST /2/tweets",
            limit=quota.limit,
            reset_at=quota.reset_at,
            occurred_at=now,
        ),
    )


def _processed(claim: Claim, state: PostState, now: datetime) -> events.DomainEvent:
    return events.PostQueueProcessed(
        **_ids(claim),
        state=state,
        attempt=claim.attempt_number,
        delay=max(now - claim.due_at, timedelta(0)),
        occurred_at=now,
    )


def failed(claim: Claim, code: str, reason: str, now: datetime) -> Settlement:
    return _given_up(claim, PostState.FAILED, "failed", code, reason, now)


def _dead_lettered(claim: Claim, code: str, detail: str, now: datetime) -> Settlement:
    return _given_up(claim, PostState.DEAD_LETTERED, "dead_lettered", code, detail, now)


def _given_up(
    claim: Claim, state: PostState, outcome: str, code: str, reason: str, now: datetime
) -> Settlement:
    """No attempt follows: the post ends in `state` (FAILED or DEAD_LETTERED)."""
    return Settlement(
        state=state,
        outcome=outcome,
        detail=reason,
        events=(
            events.PostFailed(
                **_ids(claim),
                error_code=code,
                reason=reason,
                attempt=claim.attempt_number,
                state=state,
                occurred_at=now,
            ),
            _processed(claim, state, now),
        ),
    )


def retry_or_dead_letter(
    claim: Claim, code: str, reason: str, now: datetime, timing: Timing
) -> Settlement:
    """A transient failure: try again after a backoff, or give up for good."""
    if timing.policy.exhausted(claim.attempt_number):
        detail = f"gave up after {claim.attempt_number} attempts: {reason}"
        return _dead_lettered(claim, code, detail, now)
    delay = timing.policy.delay(claim.attempt_number)
    retry_at = now + delay
    return Settlement(
        state=PostState.SCHEDULED,
        outcome="retry",
        detail=reason,
        due_in=delay,
        events=(
            events.PostFailed(
                **_ids(claim),
                error_code=code,
                reason=reason,
                attempt=claim.attempt_number,
                state=PostState.SCHEDULED,
                occurred_at=now,
                next_attempt_at=retry_at,
            ),
        ),
    )


def not_sent(claim: Claim, reason: str, now: datetime, timing: Timing) -> Settlement:
    """This attempt never called X (its publisher stopped first, or every note of its
    send went stale): nothing of it can be on X, so it is retried without asking X."""
    return retry_or_dead_letter(claim, "X_NOT_SENT", reason, now, timing)


def rate_limited(
    claim: Claim,
    reset_at: datetime,
    scope: events.RateLimitScope,
    limit: int,
    now: datetime,
    endpoint: str = "POST /2/tweets",
) -> Settlement:
    """Back to the queue with its due time and priority: it waits, it does not fail."""
    return Settlement(
        state=PostState.SCHEDULED,
        outcome="rate_limited",
        detail=f"rate limited until {reset_at.isoformat()}",
        refund_attempt=True,
        account_rate_limited_until=reset_at,
        events=(
            events.RateLimitReached(
                **_account_ids(claim),
                scope=scope,
                endpoint=endpoint,
                limit=limit,
                reset_at=reset_at,
                occurred_at=now,
            ),
        ),
    )


def budget_wait(claim: Claim, budget: int, spent: int, needed: int, now: datetime) -> Settlement:
    """Publishing would take the month's X spend above the account's budget: the post
    waits in the queue (its attempt refunded) and the account's posts stay unclaimed
    until the budget changes or the month turns (docs/x-spend.md)."""
    month = now.astimezone(UTC).strftime("%Y-%m")
    return Settlement(
        state=PostState.SCHEDULED,
        outcome="x_budget",
        detail=(
            f"waiting for the X budget: {needed / MICROS_PER_USD:.3f} USD more would take "
            f"{month}'s spend ({spent / MICROS_PER_USD:.3f} USD) above the budget "
            f"({budget / MICROS_PER_USD:.3f} USD)"
        ),
        refund_attempt=True,
        account_budget_month=month,
        events=(
            events.XSpendBudgetReached(
                **_account_ids(claim),
                month=month,
                budget_micros=budget,
                spent_micros=spent,
                needed_micros=needed,
                post_id=claim.post_id,
                occurred_at=now,
            ),
        ),
    )


def suspended(claim: Claim, reason: str, now: datetime) -> Settlement:
    """The account's queue pauses until someone resumes it; the post waits."""
    return _account_stopped(claim, "account_suspended", reason, AccountState.SUSPENDED, now)


def parked(claim: Claim, reason: str, now: datetime) -> Settlement:
    """Something of the account, not of the post, stops it (its credentials cannot be
    read): the post waits in the queue, its attempt refunded, and the account's queue
    is paused with the reason until someone resumes it."""
    return _account_stopped(claim, "parked", reason, AccountState.PAUSED, now)


def _account_stopped(
    claim: Claim, outcome: str, reason: str, state: AccountState, now: datetime
) -> Settlement:
    """The post waits (attempt refunded) while its account is stopped in `state`."""
    return Settlement(
        state=PostState.SCHEDULED,
        outcome=outcome,
        detail=reason,
        refund_attempt=True,
        account_state=state,
        events=(
            events.AccountSuspended(
                **_account_ids(claim),
                x_user_id=claim.x_user_id,
                reason=reason,
                affected_posts=1,
                occurred_at=now,
            ),
        ),
    )


def unknown(claim: Claim, cause: str, reason: str, now: datetime, timing: Timing) -> Settlement:
    """X may have published it: stay PUBLISHING; the reconciler decides later."""
    return Settlement(
        state=PostState.PUBLISHING,
        outcome="unknown",
        detail=reason,
        reconcile_in=timing.settle_delay,
        unknown_cause=cause,
    )


def outcome_unknown(
    claim: Claim, reason: str, now: datetime, suspend_reason: str | None = None
) -> Settlement:
    """The reconciler could not learn from X whether the post is there: dead-letter
    it (freeing the account's queue) with a reason that sends an operator to X
    before any requeue, which would post it again. With `suspend_reason` (revoked
    tokens, a suspended account) the account is suspended as well."""
    detail = f"outcome on X unknown, check X before requeueing: {reason}"
    dead = _dead_lettered(claim, "X_OUTCOME_UNKNOWN", detail, now)
    if suspend_reason is None:
        return dead
    pause = suspended(claim, suspend_reason, now)
    return replace(dead, account_state=pause.account_state, events=(*dead.events, *pause.events))


def resume() -> Settlement:
    """Some segments of a thread are on X: back to the queue, due now, to publish the
    rest. Progress is no failure, so no failure event."""
    return Settlement(state=PostState.SCHEDULED, outcome="adopted_segment", due_in=timedelta(0))


def settle_media_failure(
    claim: Claim, outcome: Failure, now: datetime, timing: Timing
) -> Settlement:
    """A media upload before the post: nothing was posted whatever happened, so an
    unknown outcome is simply retried (a lost answer only leaves an unused id on X)."""
    match outcome:
        case RateLimited(reset_at=reset_at, limit=limit):
            return rate_limited(
                claim,
                reset_at,
                events.RateLimitScope.USER,
                limit or 0,
                now,
                endpoint="POST /1.1/media/upload.json",
            )
        case AccountSuspended(reason=reason):
            return suspended(claim, f"account suspended: {reason}", now)
        case Unauthorized(reason=reason):
            return suspended(claim, f"tokens revoked: {reason}", now)
        case PermanentFailure(reason=reason, status=status):
            return failed(claim, f"X_MEDIA_{status or 'REJECTED'}", f"media: {reason}", now)
        case UnknownOutcome(reason=reason):
            return retry_or_dead_letter(claim, "X_MEDIA_UNKNOWN", f"media: {reason}", now, timing)
    raise AssertionError(f"unhandled outcome {outcome!r}")


def settle_publish(
    claim: Claim, outcome: PublishOutcome, now: datetime, timing: Timing
) -> Settlement:
    match outcome:
        case Published(x_post_id=x_post_id, rate_limit=info):
            return published(claim, x_post_id, now, "published", info)
        case RateLimited(reset_at=reset_at, limit=limit):
            return rate_limited(claim, reset_at, events.RateLimitScope.USER, limit or 0, now)
        case Duplicate():
            return unknown(claim, "duplicate", "X refused duplicate content", now, timing)
        case AccountSuspended(reason=reason):
            return suspended(claim, f"account suspended: {reason}", now)
        case Unauthorized(reason=reason):
            return suspended(claim, f"tokens revoked: {reason}", now)
        case PermanentFailure(reason=reason, status=status):
            return failed(claim, f"X_{status or 'ERROR'}", reason, now)
        case UnknownOutcome(reason=reason, request_sent=False):
            # Never reached X: safe to retry without asking X first.
            return retry_or_dead_letter(claim, "X_UNREACHABLE", reason, now, timing)
        case UnknownOutcome(reason=reason):
            return unknown(claim, "no_answer", reason, now, timing)
    raise AssertionError(f"unhandled outcome {outcome!r}")
