"""IANA time zones and wall-clock times across DST changes.

A wall-clock time in a zone is one of three kinds: it exists once, it falls
in a gap (spring forward: the clock skips it) or in a fold (fall back: the
clock shows it twice). Policies decide what a gap or a fold means.
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from post_management.domain._clock import iso_utc
from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason


class NonexistentTimePolicy(enum.StrEnum):
    """What a wall time skipped by a DST change means."""

    REJECT = "REJECT"
    SHIFT_FORWARD = "SHIFT_FORWARD"


class AmbiguousTimePolicy(enum.StrEnum):
    """Which of the two instants of a repeated wall time to take."""

    EARLIER = "EARLIER"
    LATER = "LATER"


class WallTimeKind(enum.StrEnum):
    EXISTS = "EXISTS"
    GAP = "GAP"
    FOLD = "FOLD"


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def load_zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The zone called `name` or InvalidArgument on `field`.

    Only names in the IANA database are accepted: ZoneInfo alone would also
    load files such as "posixrules" that are not zones a user can pick.
    """
    if name not in _known_zones():
        raise _bad_zone(name, field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _bad_zone(name, field) from exc


def _bad_zone(name: str, field: str) -> InvalidArgument:
    error = InvalidArgument.for_field(
        field,
        f"{name!r} is not an IANA time zone name (e.g. 'Europe/Berlin', 'UTC')",
        reason=Reason.UNKNOWN_TIMEZONE,
    )
    error.metadata["timezone"] = name
    return error


def _round_trips(local: datetime, zone: ZoneInfo, fold: int) -> bool:
    aware = local.replace(tzinfo=zone, fold=fold)
    back = aware.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None, fold=0) == local.replace(fold=0)


def classify(local: datetime, zone: ZoneInfo) -> WallTimeKind:
    """Whether naive wall time `local` exists once, twice (fold) or not at all (gap)."""
    earlier_ok = _round_trips(local, zone, 0)
    later_ok = _round_trips(local, zone, 1)
    if earlier_ok and later_ok:
        first = local.replace(tzinfo=zone, fold=0).utcoffset()
        second = local.replace(tzinfo=zone, fold=1).utcoffset()
        return WallTimeKind.FOLD if first != second else WallTimeKind.EXISTS
    if earlier_ok or later_ok:
        return WallTimeKind.EXISTS
    return WallTimeKind.GAP


def gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """For a wall time in a gap, the instant (UTC) the gap ends.

    zoneinfo reads a gap time with the offset before the change (fold=0) or
    after it (fold=1); the change lies between those two readings, and
    changes happen on whole seconds, so a binary search on seconds finds it.
    """
    offset_before = local.replace(tzinfo=zone, fold=0).utcoffset()
    low = math.floor(local.replace(tzinfo=zone, fold=1).timestamp())  # still before
    high = math.ceil(local.replace(tzinfo=zone, fold=0).timestamp())  # already after
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def to_instant(
    local: datetime,
    zone: ZoneInfo,
    nonexistent: NonexistentTimePolicy = NonexistentTimePolicy.REJECT,
    ambiguous: AmbiguousTimePolicy = AmbiguousTimePolicy.EARLIER,
    field: str = "scheduled_for",
) -> datetime:
    """The UTC instant of naive wall time `local` in `zone`, following the policies.

    A gap time is rejected (InvalidArgument, reason NONEXISTENT_LOCAL_TIME,
    naming the next valid time) or, with SHIFT_FORWARD, moved to the first
    valid wall time after the gap (02:30 on a 02:00->03:00 day becomes 03:00).
    """
    if local.tzinfo is not None:
        raise ValueError("to_instant expects a naive wall-clock time")
    kind = classify(local, zone)
    if kind is WallTimeKind.GAP:
        next_valid = gap_end(local, zone)
        if nonexistent is NonexistentTimePolicy.SHIFT_FORWARD:
            return next_valid
        raise nonexistent_time_error(local, zone, next_valid, field)
    fold = 1 if kind is WallTimeKind.FOLD and ambiguous is AmbiguousTimePolicy.LATER else 0
    return local.replace(tzinfo=zone, fold=fold).astimezone(UTC)


def nonexistent_time_error(
    local: datetime, zone: ZoneInfo, next_valid: datetime, field: str
) -> InvalidArgument:
    next_local = next_valid.astimezone(zone)
    error = InvalidArgument.for_field(
        field,
        f"{local.isoformat()} does not exist in {zone.key}: the clocks skip it for a "
        f"daylight saving change; the next valid time is {next_local.isoformat()}",
        reason=Reason.NONEXISTENT_LOCAL_TIME,
    )
    error.metadata.update(
        {
            "timezone": zone.key,
            "requested_local_time": local.isoformat(),
            "next_valid_time": next_local.isoformat(),
            "next_valid_time_utc": iso_utc(next_valid),
        }
    )
    return error
