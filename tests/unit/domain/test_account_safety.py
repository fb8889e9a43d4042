"""The failure streak that pauses an account's queue."""

from __future__ import annotations

from post_management.domain.account_safety import MAX_CONSECUTIVE_FAILURES, after_settlement
from post_management.domain.post import PostState


def test_final_failures_count_and_pause_at_the_limit() -> None:
    count = 0
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        streak = after_settlement(count, PostState.FAILED)
        assert streak is not None and not streak.pause
        count = streak.count
    last = after_settlement(count, PostState.DEAD_LETTERED)
    assert last is not None and last.pause and last.count == MAX_CONSECUTIVE_FAILURES
    assert str(MAX_CONSECUTIVE_FAILURES) in last.reason and "resume" in last.reason


def test_success_resets_and_non_final_outcomes_leave_the_count() -> None:
    assert after_settlement(4, PostState.PUBLISHED) == after_settlement(0, PostState.PUBLISHED)
    published = after_settlement(4, PostState.PUBLISHED)
    assert published is not None and published.count == 0 and not published.pause
    for state in (PostState.SCHEDULED, PostState.PUBLISHING):
        assert after_settlement(4, state) is None
