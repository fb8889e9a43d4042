"""The failure streak that pauses an account's queue (domain/publishing/failure_streak.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from post_management.domain import events
from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing.failure_streak import (
    MAX_CONSECUTIVE_FAILURES,
    after_settlement,
)
from tests.unit.domain.claims import a_claim

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ACTIVE = AccountState.ACTIVE
CLAIM = a_claim(NOW)


def test_final_failures_count_and_pause_at_the_limit() -> None:
    count = 0
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        streak = after_settlement(CLAIM, PostState.FAILED, count, ACTIVE, NOW)
        assert streak is not None and not streak.pause and streak.events == ()
        assert streak.count == streak.failures == count + 1
        count = streak.count
    last = after_settlement(CLAIM, PostState.DEAD_LETTERED, count, ACTIVE, NOW)
    assert last is not None and last.pause and last.failures == MAX_CONSECUTIVE_FAILURES
    assert str(MAX_CONSECUTIVE_FAILURES) in last.reason and "resume" in last.reason
    # The count restarts, so that a resumed account gets a full streak again.
    assert last.count == 0


def test_a_pause_records_why_in_an_account_suspended_event() -> None:
    last = after_settlement(CLAIM, PostState.FAILED, MAX_CONSECUTIVE_FAILURES - 1, ACTIVE, NOW)
    assert last is not None
    (paused,) = last.events
    assert paused.event_type == events.ACCOUNT_SUSPENDED
    assert paused.aggregate_type == events.AGGREGATE_ACCOUNT
    assert paused.aggregate_id == str(CLAIM.account_id)
    assert paused.occurred_at == NOW
    assert isinstance(paused, events.AccountSuspended)
    assert (paused.account_id, paused.user_id, paused.x_user_id) == (
        CLAIM.account_id,
        "alice",
        "4242",
    )
    assert paused.reason == last.reason
    assert paused.affected_posts == MAX_CONSECUTIVE_FAILURES


def test_success_resets_and_non_final_outcomes_leave_the_count() -> None:
    published = after_settlement(CLAIM, PostState.PUBLISHED, 4, ACTIVE, NOW)
    assert published == after_settlement(CLAIM, PostState.PUBLISHED, 0, ACTIVE, NOW)
    assert published is not None and published.count == 0 and not published.pause
    assert published.events == ()
    for state in (PostState.SCHEDULED, PostState.PUBLISHING):
        assert after_settlement(CLAIM, state, 4, ACTIVE, NOW) is None


@pytest.mark.parametrize("state", [AccountState.PAUSED, AccountState.SUSPENDED])
def test_an_account_no_longer_active_is_not_paused_again(state: AccountState) -> None:
    """X suspended it in the same settlement, or someone paused it: no pause, no event,
    and the count stays where it was."""
    assert (
        after_settlement(CLAIM, PostState.FAILED, MAX_CONSECUTIVE_FAILURES - 1, state, NOW) is None
    )
    below = after_settlement(CLAIM, PostState.FAILED, 1, state, NOW)
    assert below is not None and below.count == 2 and not below.pause
