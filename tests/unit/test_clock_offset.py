"""The test-only clock offset of the service's clock adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from post_management.adapters.clock import TEST_CLOCK_OFFSET_ENV, SystemClock


def test_without_the_setting_the_clock_is_the_system_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TEST_CLOCK_OFFSET_ENV, raising=False)
    before = datetime.now(UTC)
    now = SystemClock.from_env().now()
    assert before <= now <= datetime.now(UTC)
    assert now.tzinfo is UTC


@pytest.mark.parametrize("offset", [120.0, -60.5])
def test_the_setting_shifts_the_clock_by_that_many_seconds(
    monkeypatch: pytest.MonkeyPatch, offset: float
) -> None:
    monkeypatch.setenv(TEST_CLOCK_OFFSET_ENV, str(offset))
    before = datetime.now(UTC)
    now = SystemClock.from_env().now()
    shift = timedelta(seconds=offset)
    assert before + shift <= now <= datetime.now(UTC) + shift


def test_a_setting_that_is_no_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_CLOCK_OFFSET_ENV, "two minutes")
    with pytest.raises(ValueError, match=TEST_CLOCK_OFFSET_ENV):
        SystemClock.from_env()
