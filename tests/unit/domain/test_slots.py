"""Recurring slots in Europe/Berlin around the spring forward of Sunday 2026-03-29."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from post_management.domain.errors import FailedPrecondition
from post_management.domain.posting_rules import PostingRules, parse_posting_rules
from post_management.domain.priority import Priority
from post_management.domain.slots import free_slots, next_free_slot, slot_times

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)  # Friday 11:00 CET


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def rules_of(**kwargs: object) -> PostingRules:
    return parse_posting_rules(**kwargs)  # type: ignore[arg-type]


def test_a_nine_oclock_slot_stays_nine_oclock_local_across_the_change() -> None:
    rules = rules_of(slots=[([], "09:00")])
    assert free_slots(rules, BERLIN, [], NOW, 4) == [
        utc(2026, 3, 28, 8, 0),  # 09:00 CET
        utc(2026, 3, 29, 7, 0),  # 09:00 CEST
        utc(2026, 3, 30, 7, 0),
        utc(2026, 3, 31, 7, 0),
    ]


def test_a_slot_in_the_gap_moves_to_the_end_of_the_gap() -> None:
    rules = rules_of(slots=[([7], "02:30")])  # Sundays only
    assert list(slot_times(rules, BERLIN, NOW, utc(2026, 4, 6))) == [
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST: 02:30 does not exist that night
        utc(2026, 4, 5, 0, 30),  # 02:30 CEST
    ]


def test_a_slot_in_the_fold_takes_its_first_occurrence() -> None:
    rules = rules_of(slots=[([], "02:30")])
    start = utc(2026, 10, 24, 12, 0)
    assert list(slot_times(rules, BERLIN, start, utc(2026, 10, 26, 0, 0))) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, not 02:30 CET
    ]


def test_weekdays_limit_the_slot() -> None:
    rules = rules_of(slots=[([1, 3], "09:00")])  # Monday and Wednesday
    assert next_free_slot(rules, BERLIN, [], NOW) == utc(2026, 3, 30, 7, 0)


def test_the_next_slot_skips_slots_that_break_a_rule() -> None:
    rules = rules_of(max_posts_per_day=1, slots=[([], "09:00"), ([], "18:00")])
    others = [utc(2026, 3, 28, 11, 0)]  # Saturday 12:00 CET
    # Friday 18:00 CET is still ahead of NOW and free.
    assert next_free_slot(rules, BERLIN, others, NOW) == utc(2026, 3, 27, 17, 0)
    # From Saturday morning the day is full, so Sunday 09:00 CEST.
    saturday = utc(2026, 3, 28, 6, 0)
    assert next_free_slot(rules, BERLIN, others, saturday) == utc(2026, 3, 29, 7, 0)


def test_free_slots_count_each_chosen_slot_as_taken() -> None:
    rules = rules_of(max_posts_per_day=1, slots=[([], "09:00"), ([], "18:00")])
    assert free_slots(rules, BERLIN, [], NOW, 3) == [
        utc(2026, 3, 27, 17, 0),  # Friday 18:00 CET
        utc(2026, 3, 28, 8, 0),  # Saturday 09:00 CET
        utc(2026, 3, 29, 7, 0),  # Sunday 09:00 CEST
    ]


def test_an_urgent_post_takes_the_earliest_free_time() -> None:
    rules = rules_of(slots=[([], "09:00")], min_interval_minutes=30)
    now = utc(2026, 3, 27, 10, 0, 30)
    assert next_free_slot(rules, BERLIN, [], now, Priority.URGENT) == utc(2026, 3, 27, 10, 1)
    others = [utc(2026, 3, 27, 10, 15)]
    assert next_free_slot(rules, BERLIN, others, now, Priority.URGENT) == utc(2026, 3, 27, 10, 45)
    assert next_free_slot(rules, BERLIN, others, now, Priority.HIGH) == utc(2026, 3, 28, 8, 0)


def test_an_urgent_post_still_respects_quiet_hours() -> None:
    rules = rules_of(quiet_hours_start="22:00", quiet_hours_end="07:00")
    late = utc(2026, 3, 28, 23, 0)  # 00:00 CET on the 29th
    assert next_free_slot(rules, BERLIN, [], late, Priority.URGENT) == utc(2026, 3, 29, 5, 0)


def test_without_slots_the_next_free_minute_is_used() -> None:
    rules = rules_of(min_interval_minutes=10)
    others = [utc(2026, 3, 27, 10, 5)]
    assert next_free_slot(rules, BERLIN, others, NOW) == utc(2026, 3, 27, 10, 15)
    assert free_slots(rules, BERLIN, others, NOW, 3) == [
        utc(2026, 3, 27, 10, 15),
        utc(2026, 3, 27, 10, 25),
        utc(2026, 3, 27, 10, 35),
    ]


def test_no_free_slot_in_the_window_fails() -> None:
    rules = rules_of(max_posts_per_day=1, slots=[([], "09:00")])
    others = [utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0)]
    with pytest.raises(FailedPrecondition) as caught:
        next_free_slot(rules, BERLIN, others, utc(2026, 3, 28, 0, 0), window=timedelta(days=2))
    assert caught.value.reason == "NO_FREE_SLOT"
