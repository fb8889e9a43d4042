"""Small helpers on aware datetimes shared by the scheduling modules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` in UTC; a naive datetime here is a caller bug, not bad input."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def ceil_to(value: datetime, step: timedelta) -> datetime:
    """The first multiple of `step` since the Unix epoch at or after `value`."""
    remainder = (value - _EPOCH) % step
    return value if not remainder else value + (step - remainder)


def floor_to(value: datetime, step: timedelta) -> datetime:
    """The last multiple of `step` since the Unix epoch at or before `value`."""
    return value - (value - _EPOCH) % step


def iso_utc(value: datetime) -> str:
    """RFC 3339 in UTC with a "Z", the form used in error metadata."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def trim_fraction(value: str) -> str:
    """`value` with a fraction of seconds cut to microseconds.

    Python keeps microseconds; RFC 3339 allows more digits, which are dropped.
    """
    return re.sub(r"(\.\d{6})\d+", r"\1", value)
