"""When repeated failures pause an account's queue.

A run of posts that X keeps refusing (or that never get through) usually means the
account itself is in trouble: bad content rules, revoked access X reports as a plain
4xx, a shadow ban. Publishing more only burns the budget and the user's reputation,
so the queue pauses and an operator or the owner resumes it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from post_management.domain.post import PostState

# Consecutive FAILED or DEAD_LETTERED settlements of one account that pause it.
MAX_CONSECUTIVE_FAILURES = 5

_FAILURES = frozenset({PostState.FAILED, PostState.DEAD_LETTERED})


@dataclass(frozen=True)
class FailureStreak:
    """What a settlement does to the account's count of consecutive failures."""

    count: int  # the count after this settlement
    pause: bool  # the account's queue must pause now

    @property
    def reason(self) -> str:
        return (
            f"paused after {self.count} consecutive failed posts; "
            "resume the account once the cause is fixed"
        )


def after_settlement(previous: int, state: PostState) -> FailureStreak | None:
    """The new streak, or None when the settlement leaves the count alone
    (retries, rate limits and unknown outcomes are not final)."""
    if state is PostState.PUBLISHED:
        return FailureStreak(0, pause=False)
    if state not in _FAILURES:
        return None
    count = previous + 1
    return FailureStreak(count, pause=count >= MAX_CONSECUTIVE_FAILURES)
