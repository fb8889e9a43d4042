from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from post_management.domain.errors import InvalidArgument
from post_management.domain.requested_time import (
    RequestedTime,
    ResolvedTime,
    parse_requested_time,
    resolve_requested_time,
)
from post_management.domain.timezones import (
    AmbiguousTimePolicy,
    NonexistentTimePolicy,
    load_zone,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NY = "America/New_York"


def resolve(text: str, zone: str, now: datetime, **options: object) -> ResolvedTime:
    """As SchedulePost reads a request: its zone, then its time (at the edge), then the
    instant (in the use case, where the account's zone is known)."""
    loaded = load_zone(zone)
    requested = parse_requested_time(text)
    if requested is None:
        raise AssertionError("a blank time is no requested time")
    return resolve_requested_time(requested, loaded, now, **options)  # type: ignore[arg-type]


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-09T14:30:00Z", at(2025, 3, 9, 14, 30)),
        ("2025-03-09T14:30:00z", at(2025, 3, 9, 14, 30)),
        ("2025-03-09T14:30:00+01:00", at(2025, 3, 9, 13, 30)),
        ("2025-03-09T14:30:00.123456789-05:00", at(2025, 3, 9, 19, 30, 0, 123456)),
    ],
)
def test_a_time_with_an_offset_is_an_instant_whatever_the_zone(
    text: str, expected: datetime
) -> None:
    resolved = resolve(text, "Asia/Tokyo", NOW)
    assert resolved.instant == expected
    assert resolved.timezone == "Asia/Tokyo"
    assert not resolved.shifted


@pytest.mark.parametrize("text", ["2025-03-08T09:30:00", "2025-03-08T09:30", "2025-03-08 09:30"])
def test_a_time_without_offset_is_read_in_the_zone(text: str) -> None:
    resolved = resolve(text, NY, NOW)
    assert resolved.instant == at(2025, 3, 8, 14, 30)  # EST is UTC-5
    assert resolved.local.isoformat() == "2025-03-08T09:30:00-05:00"


def test_a_wall_time_in_the_spring_forward_gap_is_rejected_with_the_next_valid_time() -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve("2025-03-09T02:30:00", NY, NOW)
    assert caught.value.reason == "NONEXISTENT_LOCAL_TIME"
    assert caught.value.metadata["next_valid_time"] == "2025-03-09T03:00:00-04:00"
    assert caught.value.metadata["next_valid_time_utc"] == "2025-03-09T07:00:00Z"
    assert "2025-03-09T03:00:00-04:00" in caught.value.message


def test_shift_forward_takes_the_first_wall_time_after_the_gap() -> None:
    resolved = resolve(
        "2025-03-09T02:30:00", NY, NOW, nonexistent=NonexistentTimePolicy.SHIFT_FORWARD
    )
    assert resolved.instant == at(2025, 3, 9, 7, 0)
    assert resolved.local.isoformat() == "2025-03-09T03:00:00-04:00"
    assert resolved.shifted


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (AmbiguousTimePolicy.EARLIER, at(2025, 11, 2, 5, 30)),
        (AmbiguousTimePolicy.LATER, at(2025, 11, 2, 6, 30)),
    ],
)
def test_a_fall_back_wall_time_follows_the_policy(
    policy: AmbiguousTimePolicy, expected: datetime
) -> None:
    resolved = resolve("2025-11-02T01:30:00", NY, NOW, ambiguous=policy)
    assert resolved.instant == expected


def test_the_default_for_a_fold_is_the_earlier_instant() -> None:
    assert resolve("2025-11-02T01:30:00", NY, NOW).instant == at(2025, 11, 2, 5, 30)


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "", "America", "../etc/passwd", "posixrules", "utc"]
)
def test_an_unknown_zone_is_rejected_on_the_timezone_field(zone: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve("2025-03-09T14:30:00Z", zone, NOW)
    assert caught.value.reason == "UNKNOWN_TIMEZONE"
    assert [v.field for v in caught.value.violations] == ["timezone"]


@pytest.mark.parametrize(
    "text",
    [
        "tomorrow",
        "2025-03-09",
        "2025-13-09T10:00:00",
        "2025-03-09T24:00:00",
        "2025-03-09T10:00:00+1",
    ],
)
def test_a_malformed_time_is_rejected_on_the_scheduled_for_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_requested_time(text)
    assert caught.value.reason == "INVALID_SCHEDULED_TIME"
    assert [v.field for v in caught.value.violations] == ["scheduled_for"]


@pytest.mark.parametrize("text", ["", "  "])
def test_a_blank_time_asks_for_none(text: str) -> None:
    assert parse_requested_time(text) is None


def test_the_parsed_time_keeps_the_callers_text() -> None:
    assert parse_requested_time(" 2025-03-09T14:30:00+01:00") == RequestedTime(
        at(2025, 3, 9, 13, 30), " 2025-03-09T14:30:00+01:00"
    )
    wall = parse_requested_time("2025-03-09T09:30")
    assert wall is not None and not wall.is_instant and wall.at == datetime(2025, 3, 9, 9, 30)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("0001-01-01T00:00:00+01:00", NY),
        ("9999-12-31T23:59:59-01:00", NY),
        ("0001-01-01T00:30:00", "Asia/Tokyo"),
        ("9999-12-31T23:30:00", NY),
    ],
)
def test_a_time_outside_datetimes_range_in_utc_is_rejected(text: str, zone: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve(text, zone, NOW)
    assert caught.value.reason == "INVALID_SCHEDULED_TIME"
    assert [v.field for v in caught.value.violations] == ["scheduled_for"]


def test_the_past_is_allowed_within_the_grace_only() -> None:
    ok = resolve("2025-03-01T11:59:00Z", "UTC", NOW)
    assert ok.instant == at(2025, 3, 1, 11, 59)
    with pytest.raises(InvalidArgument) as caught:
        resolve("2025-03-01T11:58:59Z", "UTC", NOW)
    assert caught.value.reason == "SCHEDULED_TIME_IN_PAST"
    assert "in the past" in caught.value.message


def test_the_grace_and_horizon_are_parameters() -> None:
    resolve("2025-03-01T11:50:00Z", "UTC", NOW, past_grace=timedelta(minutes=10))
    with pytest.raises(InvalidArgument) as caught:
        resolve("2025-03-03T12:00:01Z", "UTC", NOW, horizon=timedelta(days=2))
    assert caught.value.reason == "SCHEDULED_TIME_TOO_FAR"
    assert caught.value.metadata["latest_allowed"] == "2025-03-03T12:00:00Z"


def test_the_default_horizon_is_365_days() -> None:
    resolve("2026-03-01T12:00:00Z", "UTC", NOW)
    with pytest.raises(InvalidArgument):
        resolve("2026-03-01T12:00:01Z", "UTC", NOW)


def test_load_zone_accepts_iana_names() -> None:
    assert load_zone("Europe/Berlin").key == "Europe/Berlin"
    assert load_zone("UTC").key == "UTC"
