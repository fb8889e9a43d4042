from __future__ import annotations

from datetime import time

import pytest

from post_management.domain.errors import InvalidArgument
from post_management.domain.posting_rules import (
    PostingRules,
    QuietHours,
    TimeSlot,
    parse_posting_rules,
    posting_rules_from_json,
)


def test_valid_rules_parse() -> None:
    rules = parse_posting_rules(
        min_interval_minutes=30,
        max_posts_per_hour=2,
        max_posts_per_day=10,
        quiet_hours_start="22:00",
        quiet_hours_end="07:00",
        slots=[([1, 2, 3, 4, 5], "09:00"), ([], "18:30"), ([1, 2, 3, 4, 5], "09:00")],
    )
    assert rules == PostingRules(
        min_interval_minutes=30,
        max_posts_per_hour=2,
        max_posts_per_day=10,
        quiet_hours=QuietHours(time(22), time(7)),
        slots=(TimeSlot(time(9), frozenset({1, 2, 3, 4, 5})), TimeSlot(time(18, 30))),
    )


def test_no_quiet_hours_when_both_ends_are_empty() -> None:
    assert parse_posting_rules().quiet_hours is None


@pytest.mark.parametrize(
    ("wall", "quiet"),
    [
        (time(22), True),
        (time(23, 59), True),
        (time(0), True),
        (time(6, 59), True),
        (time(7), False),
        (time(12), False),
        (time(21, 59), False),
    ],
)
def test_quiet_hours_may_cross_midnight(wall: time, quiet: bool) -> None:
    assert QuietHours(time(22), time(7)).contains(wall) is quiet


@pytest.mark.parametrize(
    ("wall", "quiet"),
    [(time(12), True), (time(13, 59), True), (time(14), False), (time(11, 59), False)],
)
def test_quiet_hours_within_a_day(wall: time, quiet: bool) -> None:
    assert QuietHours(time(12), time(14)).contains(wall) is quiet


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_interval_minutes": -1}, "posting_rules.min_interval_minutes"),
        ({"min_interval_minutes": 7 * 24 * 60 + 1}, "posting_rules.min_interval_minutes"),
        ({"max_posts_per_hour": -1}, "posting_rules.max_posts_per_hour"),
        ({"max_posts_per_day": -5}, "posting_rules.max_posts_per_day"),
        (
            {"quiet_hours_start": "24:00", "quiet_hours_end": "07:00"},
            "posting_rules.quiet_hours.start",
        ),
        (
            {"quiet_hours_start": "7:00", "quiet_hours_end": "08:00"},
            "posting_rules.quiet_hours.start",
        ),
        (
            {"quiet_hours_start": "22:00", "quiet_hours_end": "07:60"},
            "posting_rules.quiet_hours.end",
        ),
        ({"quiet_hours_start": "22:00"}, "posting_rules.quiet_hours.end"),
        (
            {"quiet_hours_start": "22:00", "quiet_hours_end": "22:00"},
            "posting_rules.quiet_hours.end",
        ),
        ({"slots": [([], "09:00"), ([0], "10:00")]}, "posting_rules.slots[1].weekdays[0]"),
        ({"slots": [([1, 8], "10:00")]}, "posting_rules.slots[0].weekdays[1]"),
        ({"slots": [([], "9am")]}, "posting_rules.slots[0].time"),
        (
            {"quiet_hours_start": "22:00", "quiet_hours_end": "07:00", "slots": [([], "23:00")]},
            "posting_rules.slots",
        ),
    ],
)
def test_each_bad_field_is_named(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_posting_rules(**kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == "INVALID_POSTING_RULES"
    assert [v.field for v in caught.value.violations] == [field]


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_posting_rules(max_posts_per_hour=-1, slots=[([9], "25:00")], prefix="rules")
    assert [v.field for v in caught.value.violations] == [
        "rules.max_posts_per_hour",
        "rules.slots[0].weekdays[0]",
        "rules.slots[0].time",
    ]


def test_the_json_form_round_trips() -> None:
    rules = parse_posting_rules(
        min_interval_minutes=15,
        max_posts_per_day=4,
        quiet_hours_start="23:30",
        quiet_hours_end="06:00",
        slots=[([6, 7], "10:15"), ([], "08:00")],
    )
    data = rules.to_json()
    assert data["quiet_hours"] == {"start": "23:30", "end": "06:00"}
    assert data["slots"] == [
        {"weekdays": [], "time": "08:00"},
        {"weekdays": [6, 7], "time": "10:15"},
    ]
    assert posting_rules_from_json(data) == rules
    assert posting_rules_from_json({}) == PostingRules()
