"""The fromDate/toDate filter of ListScheduledPosts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from post_management.domain._clock import trim_fraction
from post_management.domain.errors import FieldViolation, InvalidArgument
from post_management.domain.reasons import Reason

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class DateRange:
    """Instants in [start, end); None leaves that side open."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, instant: datetime) -> bool:
        if self.start is not None and instant < self.start:
            return False
        return self.end is None or instant < self.end


def parse_date_range(
    from_date: str | None,
    to_date: str | None,
    from_field: str = "from_date",
    to_field: str = "to_date",
) -> DateRange:
    """Both bounds are inclusive as the user writes them.

    A date ("2024-01-01") starts at 00:00 UTC for `from_date`; for `to_date`
    the whole day is included. An instant needs an offset or "Z". An instant
    `to_date` keeps its microsecond (timestamps are stored to the microsecond)
    by ending the half-open range one microsecond later.
    """
    start = _parse_bound(from_date, from_field, is_end=False)
    end = _parse_bound(to_date, to_field, is_end=True)
    if start is not None and end is not None and start >= end:
        description = f"{from_field} ({from_date}) is after {to_field} ({to_date})"
        raise InvalidArgument(
            message=f"{from_field}: {description}",
            reason=Reason.INVALID_DATE_RANGE,
            violations=[FieldViolation(from_field, description)],
            metadata={from_field: str(from_date), to_field: str(to_date)},
        )
    return DateRange(start, end)


def _parse_bound(text: str | None, field: str, is_end: bool) -> datetime | None:
    value = (text or "").strip()
    if not value:
        return None
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            start = datetime.combine(day, time(), tzinfo=UTC)
            return start + timedelta(days=1) if is_end else start
        if _INSTANT.fullmatch(value):
            instant = datetime.fromisoformat(trim_fraction(value).upper()).astimezone(UTC)
            return instant + timedelta(microseconds=1) if is_end else instant
    except (ValueError, OverflowError):
        pass
    raise InvalidArgument.for_field(
        field,
        f"{text!r} is not an RFC 3339 date ('2024-01-01') or instant "
        "('2024-01-01T09:30:00Z', '2024-01-01T09:30:00+01:00')",
        reason=Reason.INVALID_DATE,
    )
