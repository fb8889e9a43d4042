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
class RequestedTime:
    """A request's `scheduledFor`, read: an instant when it carries an offset, else a
    wall time to be read in the post's time zone (which may be the account's)."""

    # Aware (UTC): the instant asked for. Naive: a wall time, resolved later.
    at: datetime
    # As the caller wrote it: named in errors, and part of the request's digest.
    text: str

    @property
    def is_instant(self) -> bool:
        return self.at.tzinfo is not None


@dataclass(frozen=True)
class ResolvedTime:
    instant: datetime  # aware, UTC
    timezone: str
    # True when the requested wall time fell in a DST gap and was moved forward.
    shifted: bool = False

    @property
    def local(self) -> datetime:
        return self.instant.astimezone(ZoneInfo(self.timezone))


def parse_requested_time(text: str, field: str = "scheduled_for") -> RequestedTime | None:
    """The time a request asks for; None when it names none (blank).

    Raises InvalidArgument INVALID_SCHEDULED_TIME for anything but an RFC 3339
    date-time (the offset may be left out, and the seconds too)."""
    if not text.strip():
        return None
    match = _DATE_TIME.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        body = trim_fraction(match["body"]) + (match["offset"] or "")
        parsed = datetime.fromisoformat(body.upper())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC)
    # OverflowError: a time near year 1 or 9999 that leaves datetime's range in UTC.
    except (ValueError, OverflowError):
        raise _malformed(text, field) from None
    return RequestedTime(parsed, text)


def resolve_requested_time(
    requested: RequestedTime,
    zone: ZoneInfo,
    now: datetime,
    *,
    nonexistent: NonexistentTimePolicy = NonexistentTimePolicy.REJECT,
    ambiguous: AmbiguousTimePolicy = AmbiguousTimePolicy.EARLIER,
    past_grace: timedelta = DEFAULT_PAST_GRACE,
    horizon: timedelta = DEFAULT_HORIZON,
    field: str = "scheduled_for",
) -> ResolvedTime:
    """The instant a request asks for, checked against `now`.

    `zone` is the request's, or the account's when the request names none; it
    reads a wall time. Raises InvalidArgument: INVALID_SCHEDULED_TIME (a wall time
    that leaves datetime's range), NONEXISTENT_LOCAL_TIME, SCHEDULED_TIME_IN_PAST,
    SCHEDULED_TIME_TOO_FAR.
    """
    now = require_aware(now, "now")
    shifted = False
    if requested.is_instant:
        instant = requested.at
    else:
        try:
            instant = to_instant(requested.at, zone, nonexistent, ambiguous, field)
            shifted = instant.astimezone(zone).replace(tzinfo=None) != requested.at
        # A wall time near year 1 or 9999 that leaves datetime's range in UTC.
        except (ValueError, OverflowError):
            raise _malformed(requested.text, field) from None
    check_window(instant, now, past_grace, horizon, field)
    return ResolvedTime(instant, zone.key, shifted)


def _malformed(text: str, field: str) -> InvalidArgument:
    return InvalidArgument.for_field(
        field,
        f"{text!r} is not an RFC 3339 date-time: use '2025-03-09T14:30:00Z', "
        "'2025-03-09T14:30:00+01:00', or '2025-03-09T09:30:00' read in the time zone",
        reason=Reason.INVALID_SCHEDULED_TIME,
    )


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
