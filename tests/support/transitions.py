"""UTC-offset changes of every IANA zone, found by scanning, as a test oracle.

Reading a UTC instant in a zone is the one direction with no ambiguity, so
the oracle only ever converts UTC -> local.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

SCAN_START = datetime(2020, 1, 1, tzinfo=UTC)
SCAN_END = datetime(2036, 1, 1, tzinfo=UTC)
ALL_ZONES = tuple(sorted(available_timezones()))


@dataclass(frozen=True)
class Transition:
    zone: str
    at: datetime  # UTC instant of the change
    before: timedelta
    after: timedelta

    @property
    def wall_start(self) -> datetime:
        """The first wall time affected: gap or fold both start here (naive)."""
        return (self.at + min(self.before, self.after)).replace(tzinfo=None)

    @property
    def width(self) -> timedelta:
        return abs(self.after - self.before)

    @property
    def is_gap(self) -> bool:
        return self.after > self.before


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


@cache
def transitions(name: str) -> tuple[Transition, ...]:
    # Daily probes, then a binary search on seconds between two probes whose
    # offsets differ; no zone changes offset twice within a day in 2020-2035.
    zone = ZoneInfo(name)
    found: list[Transition] = []
    day = SCAN_START
    offset = _offset(zone, day)
    while day < SCAN_END:
        following = day + timedelta(days=1)
        next_offset = _offset(zone, following)
        if next_offset != offset:
            low, high = int(day.timestamp()), int(following.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, datetime.fromtimestamp(middle, UTC)) == offset:
                    low = middle
                else:
                    high = middle
            found.append(Transition(name, datetime.fromtimestamp(high, UTC), offset, next_offset))
        day, offset = following, next_offset
    return tuple(found)


@cache
def all_transitions() -> tuple[Transition, ...]:
    return tuple(t for name in ALL_ZONES for t in transitions(name))


def gaps() -> tuple[Transition, ...]:
    return tuple(t for t in all_transitions() if t.is_gap)


def folds() -> tuple[Transition, ...]:
    return tuple(t for t in all_transitions() if not t.is_gap)
