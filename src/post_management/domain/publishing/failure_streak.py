"""When repeated failures pause an account's queue.

A run of posts that X keeps refusing (or that never get through) usually means the
account itself is in trouble: bad content rules, revoked access X reports as a plain
4xx, a shadow ban. Publishing more only burns the budget and the user's reputation,
so the queue pauses and an operator or the owner resumes it explicitly.

The publish queue keeps the count (accounts.consecutive_failures) and applies what
`after_settlement` decides, in the settlement's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from post_management.domain import events
from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing.claim import Claim

# Consecutive FAILED or DEAD_LETTERED settlements of one account that pause it.
MAX_CONSECUTIVE_FAILURES = 5

_FAILURES = frozenset({PostState.FAILED, PostState.DEAD_LETTERED})


@dataclass(frozen=True)
class FailureStreak:
    """What a settlement does to its account's run of consecutive final failures."""

    failures: int  # the run's length, this settlement included
    pause: bool  # the run reached the limit: the account's queue pauses now (ACTIVE -> PAUSED)
    events: tuple[events.DomainEvent, ...] = ()  # account.suspended, when it pauses

    @property
    def count(self) -> int:
        """The count to keep: it restarts at a pause, so that a resumed account gets a
        full streak again."""
        return 0 if self.pause else self.failures

    @property
    def reason(self) -> str:
        """Why the account's queue pauses, as the account.suspended event says."""
        return _pause_reason(self.failures)


def _pause_reason(failures: int) -> str:
    return (
        f"paused after {failures} consecutive failed posts; "
        "resume the account once the cause is fixed"
    )


def after_settlement(
    claim: Claim,
    settled: PostState,
    previous: int,
    account_state: AccountState,
    now: datetime,
) -> FailureStreak | None:
    """The streak after `claim` settled in `settled`, given the account's count so far
    and its state once the settlement's own account change is applied.

    None leaves the count alone: retries, rate limits and unknown outcomes are not
    final, and a run that reaches the limit on an account that is no longer ACTIVE
    (X suspended it, someone paused it) has nothing left to pause."""
    if settled is PostState.PUBLISHED:
        return FailureStreak(0, pause=False)
    if settled not in _FAILURES:
        return None
    failures = previous + 1
    if failures < MAX_CONSECUTIVE_FAILURES:
        return FailureStreak(failures, pause=False)
    if account_state is not AccountState.ACTIVE:
        return None
    paused = events.AccountSuspended(
        account_id=claim.account_id,
        user_id=claim.user_id,
        x_user_id=claim.x_user_id,
        reason=_pause_reason(failures),
        affected_posts=failures,
        occurred_at=now,
    )
    return FailureStreak(failures, pause=True, events=(paused,))
