"""Turning the `scheduledFor` + `timezone` of a request into an instant."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from post_management.domain._clock import iso_utc, require_aware, trim_fraction
from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason
from post_management.domain.timezones import (
    AmbiguousTimePolicy,
    NonexistentTimePolicy,
    load_zone,
    to_instant,
)

DEFAULT_PAST_GRACE = timedelta(seconds=60)
DEFAULT_HORIZON = timedelta(days=365)

# RFC 3339 date-time; the offset is optional (none = wall time in `timezone`)
# and seconds may be left out ("2025-03-09T09:30").
_DATE_TIME = re.compile(
    r"(?P<body>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)


@dataclass(frozen=True)
class ResolvedTime:
    instant: datetime  # aware, UTC
    timezone: str
    # True when the requested wall time fell in a DST gap and was moved forward.
    shifted: bool = False

    @property
    def local(self) -> datetime:
        return self.instant.astimezone(ZoneInfo(self.timezone))


def resolve_requested_time(
    scheduled_for: str,
    timezone: str,
    now: datetime,
    *,
    nonexistent: NonexistentTimePolicy = NonexistentTimePolicy.REJECT,
    ambiguous: AmbiguousTimePolicy = AmbiguousTimePolicy.EARLIER,
    past_grace: timedelta = DEFAULT_PAST_GRACE,
    horizon: timedelta = DEFAULT_HORIZON,
    field: str = "scheduled_for",
    timezone_field: str = "timezone",
) -> ResolvedTime:
    """The instant a request asks for, checked against `now`.

    `timezone` must already be defaulted (e.g. to the account's zone) by the
    caller. Raises InvalidArgument: UNKNOWN_TIMEZONE, INVALID_SCHEDULED_TIME,
    NONEXISTENT_LOCAL_TIME, SCHEDULED_TIME_IN_PAST, SCHEDULED_TIME_TOO_FAR.
    """
    now = require_aware(now, "now")
    zone = load_zone(timezone, timezone_field)
    match = _DATE_TIME.fullmatch(scheduled_for.strip())
    try:
        if match is None:
            raise ValueError(scheduled_for)
        text = trim_fraction(match["body"]) + (match["offset"] or "")
        parsed = datetime.fromisoformat(text.upper())
        shifted = False
        if parsed.tzinfo is not None:
            instant = parsed.astimezone(UTC)
        else:
            instant = to_instant(parsed, zone, nonexistent, ambiguous, field)
            shifted = instant.astimezone(zone).replace(tzinfo=None) != parsed
    # OverflowError: a time near year 1 or 9999 that leaves datetime's range in UTC.
    except (ValueError, OverflowError):
        raise InvalidArgument.for_field(
            field,
            f"{scheduled_for!r} is not an RFC 3339 date-time: use '2025-03-09T14:30:00Z', "
            "'2025-03-09T14:30:00+01:00', or '2025-03-09T09:30:00' read in the time zone",
            reason=Reason.INVALID_SCHEDULED_TIME,
        ) from None
    check_window(instant, now, past_grace, horizon, field)
    return ResolvedTime(instant, zone.key, shifted)


def check_window(
    instant: datetime,
    now: datetime,
    past_grace: timedelta = DEFAULT_PAST_GRACE,
    horizon: timedelta = DEFAULT_HORIZON,
    field: str = "scheduled_for",
) -> None:
    """InvalidArgument unless now - past_grace <= instant <= now + horizon."""
    metadata = {"scheduled_for": iso_utc(instant), "now": iso_utc(now)}
    if instant < now - past_grace:
        error = InvalidArgument.for_field(
            field,
            f"{iso_utc(instant)} is in the past (now is {iso_utc(now)})",
            reason=Reason.SCHEDULED_TIME_IN_PAST,
        )
        error.metadata.update(metadata)
        raise error
    if instant > now + horizon:
        latest = now + horizon
        error = InvalidArgument.for_field(
            field,
            f"{iso_utc(instant)} is too far ahead: posts can be scheduled up to "
            f"{horizon.days} days ahead (until {iso_utc(latest)})",
            reason=Reason.SCHEDULED_TIME_TOO_FAR,
        )
        error.metadata.update(metadata | {"latest_allowed": iso_utc(latest)})
        raise error
