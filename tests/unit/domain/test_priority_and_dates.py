from __future__ import annotations

from datetime import UTC, datetime

import pytest

from post_management.domain.date_range import DateRange, parse_date_range
from post_management.domain.errors import InvalidArgument
from post_management.domain.priority import Priority, parse_priority, priority_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("urgent", Priority.URGENT),
        ("HIGH", Priority.HIGH),
        (" Normal ", Priority.NORMAL),
        ("low", Priority.LOW),
        ("", Priority.NORMAL),
        (None, Priority.NORMAL),
    ],
)
def test_priorities_parse_case_insensitively(text: str | None, expected: Priority) -> None:
    assert parse_priority(text) is expected


def test_priorities_sort_urgent_first() -> None:
    assert sorted([Priority.LOW, Priority.URGENT, Priority.NORMAL, Priority.HIGH]) == [
        Priority.URGENT,
        Priority.HIGH,
        Priority.NORMAL,
        Priority.LOW,
    ]
    assert priority_name(Priority.URGENT) == "urgent"


@pytest.mark.parametrize("text", ["critical", "1", "urgent!", "PRIORITY_HIGH"])
def test_an_unknown_priority_lists_the_allowed_values(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_priority(text)
    error = caught.value
    assert error.reason == "UNKNOWN_PRIORITY"
    assert [v.field for v in error.violations] == ["priority"]
    assert error.metadata["allowed_values"] == "urgent, high, normal, low"
    assert "urgent, high, normal, low" in error.message


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def test_dates_cover_whole_utc_days() -> None:
    window = parse_date_range("2024-01-01", "2024-01-31")
    assert window == DateRange(utc(2024, 1, 1), utc(2024, 2, 1))
    assert window.contains(utc(2024, 1, 31, 23, 59, 59, 999999))
    assert not window.contains(utc(2024, 2, 1))
    assert not window.contains(utc(2023, 12, 31, 23, 59, 59))


def test_the_same_date_on_both_sides_is_that_day() -> None:
    assert parse_date_range("2024-01-01", "2024-01-01") == DateRange(
        utc(2024, 1, 1), utc(2024, 1, 2)
    )


def test_instants_are_inclusive_on_both_sides() -> None:
    window = parse_date_range("2024-01-01T10:00:00+02:00", "2024-01-01T12:00:00Z")
    assert window.start == utc(2024, 1, 1, 8)
    assert window.contains(utc(2024, 1, 1, 8))
    assert window.contains(utc(2024, 1, 1, 12))
    assert not window.contains(utc(2024, 1, 1, 12, 0, 0, 1))


def test_empty_bounds_are_open() -> None:
    assert parse_date_range("", None) == DateRange(None, None)
    assert parse_date_range(None, "2024-01-01").contains(utc(1999, 1, 1))


@pytest.mark.parametrize(
    ("from_date", "to_date", "field"),
    [
        ("2024-13-01", "", "from_date"),
        ("yesterday", "", "from_date"),
        ("", "2024-01-01T10:00:00", "to_date"),  # an instant needs an offset
        ("", "2024/01/01", "to_date"),
    ],
)
def test_bad_bounds_name_their_field(from_date: str, to_date: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_date_range(from_date, to_date)
    assert caught.value.reason == "INVALID_DATE"
    assert [v.field for v in caught.value.violations] == [field]


@pytest.mark.parametrize(
    ("from_date", "to_date"),
    [("2024-01-02", "2024-01-01"), ("2024-01-01T00:00:01Z", "2024-01-01T00:00:00Z")],
)
def test_from_after_to_is_rejected(from_date: str, to_date: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_date_range(from_date, to_date)
    assert caught.value.reason == "INVALID_DATE_RANGE"
