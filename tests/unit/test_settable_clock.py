"""The memory adapters' clock: it moves only when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from post_management.adapters.memory.clock import SettableClock
from post_management.ports.support import Clock


def test_stands_still_until_set_or_advanced() -> None:
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    settable = SettableClock(start)
    clock: Clock = settable  # a Clock as the services see it
    assert clock.now() == start == clock.now()
    assert settable.advance(timedelta(hours=2)) == start + timedelta(hours=2)
    settable.set(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_starts_at_the_wall_clock_and_refuses_naive_times() -> None:
    before = datetime.now(UTC)
    clock = SettableClock()
    assert before <= clock.now() <= datetime.now(UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        SettableClock(datetime(2026, 1, 1))
