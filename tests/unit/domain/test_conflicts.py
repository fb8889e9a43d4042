"""Rule checks and suggested times; every expected time is worked out by hand.

Europe/Berlin switches on Sunday 2026-03-29: 02:00 CET (UTC+1) becomes 03:00
CEST (UTC+2) at 01:00 UTC, so that local day has 23 hours. It falls back on
Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from post_management.domain.conflicts import (
    ConflictPolicy,
    find_violations,
    nearest_free_times,
    resolve_conflict,
)
from post_management.domain.errors import FailedPrecondition
from post_management.domain.posting_calendar import PostingCalendar, Rule
from post_management.domain.posting_rules import PostingRules, parse_posting_rules

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def rules_of(**kwargs: object) -> PostingRules:
    return parse_posting_rules(**kwargs)  # type: ignore[arg-type]


# --- min interval (UTC) -------------------------------------------------------

INTERVAL = rules_of(min_interval_minutes=30)


def test_min_interval_is_broken_closer_than_the_interval_only() -> None:
    others = [utc(2026, 3, 10, 12, 10)]
    broken = find_violations(utc(2026, 3, 10, 12, 0), INTERVAL, UTC_ZONE, others)
    assert [v.rule for v in broken] == [Rule.MIN_INTERVAL]
    assert "2026-03-10 12:10 UTC" in broken[0].reason
    assert "30 minutes" in broken[0].reason
    assert find_violations(utc(2026, 3, 10, 11, 40), INTERVAL, UTC_ZONE, others) == []
    assert find_violations(utc(2026, 3, 10, 12, 40), INTERVAL, UTC_ZONE, others) == []


def test_nearest_free_times_around_a_close_post() -> None:
    # Free before 11:40 and from 12:40; 11:40 is nearer (20 min vs 40 min);
    # the third is 30 min (the interval) from both: 11:10 (50 min) beats 13:10 (70 min).
    others = [utc(2026, 3, 10, 12, 10)]
    free = nearest_free_times(
        utc(2026, 3, 10, 12, 0), INTERVAL, UTC_ZONE, others, now=utc(2026, 3, 10, 9, 0)
    )
    assert free == [utc(2026, 3, 10, 11, 40), utc(2026, 3, 10, 12, 40), utc(2026, 3, 10, 11, 10)]


def test_suggestions_never_go_into_the_past() -> None:
    others = [utc(2026, 3, 10, 12, 10)]
    free = nearest_free_times(
        utc(2026, 3, 10, 12, 0), INTERVAL, UTC_ZONE, others, now=utc(2026, 3, 10, 11, 50)
    )
    assert free == [utc(2026, 3, 10, 12, 40), utc(2026, 3, 10, 13, 10), utc(2026, 3, 10, 13, 40)]


def test_a_free_candidate_is_its_own_nearest_free_time() -> None:
    free = nearest_free_times(
        utc(2026, 3, 10, 12, 0), INTERVAL, UTC_ZONE, [], now=utc(2026, 3, 10, 9, 0), n=1
    )
    assert free == [utc(2026, 3, 10, 12, 0)]


# --- max per hour ---------------------------------------------------------------


def test_max_per_hour_counts_the_local_clock_hour() -> None:
    rules = rules_of(max_posts_per_hour=2)
    others = [utc(2026, 3, 10, 12, 5), utc(2026, 3, 10, 12, 20)]
    broken = find_violations(utc(2026, 3, 10, 12, 30), rules, UTC_ZONE, others)
    assert [v.rule for v in broken] == [Rule.MAX_PER_HOUR]
    assert "limit 2 per hour" in broken[0].reason
    assert find_violations(utc(2026, 3, 10, 13, 0), rules, UTC_ZONE, others) == []
    assert find_violations(utc(2026, 3, 10, 11, 59), rules, UTC_ZONE, others) == []
    # 13:00 is 30 min away, 11:59 is 31 min, then 13:15 (15 min spacing).
    free = nearest_free_times(
        utc(2026, 3, 10, 12, 30), rules, UTC_ZONE, others, now=utc(2026, 3, 10, 9, 0)
    )
    assert free == [utc(2026, 3, 10, 13, 0), utc(2026, 3, 10, 11, 59), utc(2026, 3, 10, 13, 15)]


def test_the_repeated_hour_of_a_fall_back_night_is_its_own_hour() -> None:
    rules = rules_of(max_posts_per_hour=1)
    others = [utc(2026, 10, 25, 0, 30)]  # 02:30 CEST
    assert find_violations(utc(2026, 10, 25, 1, 30), rules, BERLIN, others) == []  # 02:30 CET
    broken = find_violations(utc(2026, 10, 25, 0, 45), rules, BERLIN, others)  # 02:45 CEST
    assert [v.rule for v in broken] == [Rule.MAX_PER_HOUR]


# --- max per day (the 23-hour day in Berlin) --------------------------------------


def test_max_per_day_counts_the_local_day_across_the_spring_forward() -> None:
    rules = rules_of(max_posts_per_day=1)
    others = [utc(2026, 3, 29, 8, 0)]  # 10:00 CEST
    # 00:30 CET on the 29th (the 28th in UTC) is the same local day.
    broken = find_violations(utc(2026, 3, 28, 23, 30), rules, BERLIN, others)
    assert [v.rule for v in broken] == [Rule.MAX_PER_DAY]
    assert broken[0].reason == "2026-03-29 already has 1 posts (limit 1 per day)"
    assert find_violations(utc(2026, 3, 28, 22, 59), rules, BERLIN, others) == []  # 23:59 CET
    # From 18:00 CEST the day ends at 00:00 CEST (22:00 UTC), 6 h away; the day
    # began at 00:00 CET (23:00 UTC on the 28th), so 23:59 CET is 17 h 1 min back.
    free = nearest_free_times(
        utc(2026, 3, 29, 16, 0), rules, BERLIN, others, now=utc(2026, 3, 27, 0, 0)
    )
    assert free == [utc(2026, 3, 29, 22, 0), utc(2026, 3, 29, 22, 15), utc(2026, 3, 29, 22, 30)]


def test_max_per_day_in_utc() -> None:
    rules = rules_of(max_posts_per_day=2)
    others = [utc(2026, 3, 10, 1, 0), utc(2026, 3, 10, 23, 0)]
    free = nearest_free_times(
        utc(2026, 3, 10, 15, 0), rules, UTC_ZONE, others, now=utc(2026, 3, 10, 0, 0), n=2
    )
    # Back: 23:59 on the 9th (15 h 1 min); forward: 00:00 on the 11th (9 h).
    assert free == [utc(2026, 3, 11, 0, 0), utc(2026, 3, 11, 0, 15)]


# --- quiet hours -----------------------------------------------------------------

QUIET = rules_of(quiet_hours_start="22:00", quiet_hours_end="07:00")


def test_quiet_hours_are_local_wall_clock_hours() -> None:
    # 06:30 CEST is quiet; 07:00 CEST (05:00 UTC) is not.
    broken = find_violations(utc(2026, 3, 29, 4, 30), QUIET, BERLIN, [])
    assert [v.rule for v in broken] == [Rule.QUIET_HOURS]
    assert broken[0].reason == "06:30 CEST is inside the account's quiet hours (22:00-07:00)"
    assert find_violations(utc(2026, 3, 29, 5, 0), QUIET, BERLIN, []) == []
    assert find_violations(utc(2026, 3, 28, 20, 59), QUIET, BERLIN, []) == []  # 21:59 CET


def test_quiet_hours_across_the_spring_forward_night() -> None:
    # 03:00 CEST (01:00 UTC): quiet ends at 07:00 CEST = 05:00 UTC (4 h); it
    # began at 22:00 CET = 21:00 UTC, so 21:59 CET (20:59 UTC) is 4 h 1 min back.
    free = nearest_free_times(utc(2026, 3, 29, 1, 0), QUIET, BERLIN, [], now=utc(2026, 3, 28, 0, 0))
    assert free == [utc(2026, 3, 29, 5, 0), utc(2026, 3, 28, 20, 59), utc(2026, 3, 29, 5, 15)]


def test_quiet_hours_in_utc() -> None:
    free = nearest_free_times(
        utc(2026, 3, 10, 23, 0), QUIET, UTC_ZONE, [], now=utc(2026, 3, 10, 0, 0)
    )
    # Back: 21:59 (1 h 1 min); forward: 07:00 next day (8 h); then 21:44, 21:29.
    assert free == [utc(2026, 3, 10, 21, 59), utc(2026, 3, 10, 21, 44), utc(2026, 3, 10, 21, 29)]


def test_several_rules_are_reported_together() -> None:
    rules = rules_of(
        min_interval_minutes=60,
        max_posts_per_hour=1,
        quiet_hours_start="22:00",
        quiet_hours_end="07:00",
    )
    broken = find_violations(utc(2026, 3, 10, 22, 30), rules, UTC_ZONE, [utc(2026, 3, 10, 22, 0)])
    assert [v.rule for v in broken] == [Rule.MIN_INTERVAL, Rule.MAX_PER_HOUR, Rule.QUIET_HOURS]


# --- policies (Berlin, the day of the spring forward) ---------------------------

HOURLY = rules_of(min_interval_minutes=60)
OTHERS = [utc(2026, 3, 29, 7, 0)]  # 09:00 CEST
CANDIDATE = utc(2026, 3, 29, 7, 20)  # 09:20 CEST
NOW = utc(2026, 3, 28, 12, 0)


def test_a_free_time_is_kept_under_either_policy() -> None:
    for policy in ConflictPolicy:
        kept = resolve_conflict(utc(2026, 3, 29, 8, 0), HOURLY, BERLIN, OTHERS, NOW, policy)
        assert kept.instant == utc(2026, 3, 29, 8, 0)
        assert not kept.moved
        assert kept.reason == ""


def test_move_takes_the_nearest_free_time_and_says_why() -> None:
    # 10:00 CEST is 40 min away, 08:00 CEST 80 min.
    moved = resolve_conflict(CANDIDATE, HOURLY, BERLIN, OTHERS, NOW, ConflictPolicy.MOVE)
    assert moved.instant == utc(2026, 3, 29, 8, 0)
    assert moved.moved
    assert moved.reason == (
        "moved from 2026-03-29 09:20 CEST to 2026-03-29 10:00 CEST: another post is at "
        "2026-03-29 09:00 CEST, less than 60 minutes away (the account needs 60 minutes "
        "between posts)"
    )
    assert [v.rule for v in moved.violations] == [Rule.MIN_INTERVAL]


def test_reject_raises_a_schedule_conflict_with_the_nearest_free_times() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        resolve_conflict(CANDIDATE, HOURLY, BERLIN, OTHERS, NOW, ConflictPolicy.REJECT)
    error = caught.value
    assert error.reason == "SCHEDULE_CONFLICT"
    # 10:00 CEST (40 min), 08:00 CEST (80 min), 11:00 CEST (100 min; 07:00 is 140).
    assert error.metadata == {
        "timezone": "Europe/Berlin",
        "requested_time": "2026-03-29T07:20:00Z",
        "violated_rules": "MIN_INTERVAL",
        "nearest_free_times": "2026-03-29T08:00:00Z,2026-03-29T06:00:00Z,2026-03-29T09:00:00Z",
        "nearest_free_times_local": (
            "2026-03-29T10:00:00+02:00,2026-03-29T08:00:00+02:00,2026-03-29T11:00:00+02:00"
        ),
    }
    assert "Nearest free times: 2026-03-29 10:00 CEST" in error.message


def test_move_without_any_free_time_in_the_window_fails() -> None:
    rules = rules_of(min_interval_minutes=120)
    with pytest.raises(FailedPrecondition) as caught:
        resolve_conflict(
            utc(2026, 3, 10, 12, 0),
            rules,
            UTC_ZONE,
            [utc(2026, 3, 10, 12, 0)],
            now=utc(2026, 3, 10, 11, 50),
            policy=ConflictPolicy.MOVE,
            window=timedelta(hours=1),
        )
    assert caught.value.reason == "NO_FREE_TIME"
    assert caught.value.metadata["nearest_free_times"] == ""


# --- is_free ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        rules_of(min_interval_minutes=90),
        rules_of(max_posts_per_hour=1),
        rules_of(max_posts_per_day=3),
        rules_of(quiet_hours_start="22:00", quiet_hours_end="07:00"),
        rules_of(quiet_hours_start="12:15", quiet_hours_end="13:45"),
        rules_of(
            min_interval_minutes=45,
            max_posts_per_hour=1,
            max_posts_per_day=3,
            quiet_hours_start="23:30",
            quiet_hours_end="05:00",
        ),
    ],
    ids=["interval", "per-hour", "per-day", "quiet-overnight", "quiet-midday", "all"],
)
@pytest.mark.parametrize(
    ("zone", "change"),
    [(BERLIN, utc(2026, 3, 29, 1)), (BERLIN, utc(2026, 10, 25, 1)), (UTC_ZONE, utc(2026, 3, 29))],
    ids=["spring-forward", "fall-back", "utc"],
)
def test_is_free_answers_as_violations_does(
    rules: PostingRules, zone: ZoneInfo, change: datetime
) -> None:
    others = [change + timedelta(minutes=minutes) for minutes in (-700, -130, 55, 170, 600, 1500)]
    calendar = PostingCalendar(rules, zone, others)
    grid = [change + timedelta(minutes=15 * step) for step in range(-72, 73)]
    answers = {calendar.is_free(t) for t in grid}
    assert answers == {True, False}  # both kinds of instant are on the grid
    for t in grid:
        assert calendar.is_free(t) is (not calendar.violations(t)), t
