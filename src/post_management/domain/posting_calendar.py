"""Which posting rules an instant breaks, given an account's other posts.

Hours and days are the account's wall-clock hours and days: a day with a DST
change has 23 or 25 hours, and the repeated hour of a fall-back night counts
as its own hour (its UTC offset differs).
"""

from __future__ import annotations

import bisect
import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from post_management.domain._clock import require_aware
from post_management.domain.posting_rules import PostingRules, format_hh_mm

_TICK = timedelta(microseconds=1)
_HourKey = tuple[date, int, timedelta | None]


class Rule(enum.StrEnum):
    MIN_INTERVAL = "MIN_INTERVAL"
    MAX_PER_HOUR = "MAX_PER_HOUR"
    MAX_PER_DAY = "MAX_PER_DAY"
    QUIET_HOURS = "QUIET_HOURS"


@dataclass(frozen=True)
class Violation:
    rule: Rule
    reason: str  # plain language, for users
    # Search hints: every instant in [candidate, free_after) and in
    # (free_before, candidate] breaks this rule too. None: no safe hint.
    free_after: datetime | None = None
    free_before: datetime | None = None


def describe(instant: datetime, zone: ZoneInfo) -> str:
    """How an instant reads on the account's clock, e.g. "2026-03-29 09:00 CEST"."""
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


class PostingCalendar:
    """An account's rules, zone and the instants of its other posts."""

    def __init__(self, rules: PostingRules, zone: ZoneInfo, others: Iterable[datetime] = ()):
        self.rules = rules
        self.zone = zone
        self._others: list[datetime] = []
        self._per_hour: Counter[_HourKey] = Counter()
        self._per_day: Counter[date] = Counter()
        for instant in others:
            self.add(instant)

    def add(self, instant: datetime) -> None:
        """Count one more post (e.g. a slot just handed out)."""
        instant = require_aware(instant, "instant")
        bisect.insort(self._others, instant)
        local = instant.astimezone(self.zone)
        self._per_hour[_hour_key(local)] += 1
        self._per_day[local.date()] += 1

    def violations(self, candidate: datetime) -> list[Violation]:
        """Every rule a post at `candidate` would break; empty when it is free."""
        candidate = require_aware(candidate, "candidate")
        local = candidate.astimezone(self.zone)
        found = [
            self._min_interval(candidate),
            self._per_hour_cap(candidate, local),
            self._per_day_cap(candidate, local),
            self._quiet_hours(candidate, local),
        ]
        return [violation for violation in found if violation is not None]

    def is_free(self, candidate: datetime) -> bool:
        """`not self.violations(candidate)`, without writing the violations out: for
        searches that only need to know, over many instants."""
        candidate = require_aware(candidate, "candidate")
        local = candidate.astimezone(self.zone)
        return not (
            self._close(candidate)
            or _full(self.rules.max_posts_per_hour, self._per_hour[_hour_key(local)])
            or _full(self.rules.max_posts_per_day, self._per_day[local.date()])
            or self._in_quiet_hours(local)
        )

    def _close(self, candidate: datetime) -> list[datetime]:
        """The other posts closer than the minimum interval; exactly that far is fine."""
        minutes = self.rules.min_interval_minutes
        if not minutes:
            return []
        gap = timedelta(minutes=minutes)
        low = bisect.bisect_right(self._others, candidate - gap)
        high = bisect.bisect_left(self._others, candidate + gap)
        return self._others[low:high]

    def _in_quiet_hours(self, local: datetime) -> bool:
        quiet = self.rules.quiet_hours
        return quiet is not None and quiet.contains(local.time().replace(tzinfo=None))

    def _min_interval(self, candidate: datetime) -> Violation | None:
        close = self._close(candidate)
        if not close:
            return None
        minutes = self.rules.min_interval_minutes
        gap = timedelta(minutes=minutes)
        nearest = min(close, key=lambda other: (abs(other - candidate), other))
        return Violation(
            Rule.MIN_INTERVAL,
            f"another post is at {describe(nearest, self.zone)}, less than {minutes} minutes "
            f"away (the account needs {minutes} minutes between posts)",
            free_after=max(close) + gap,
            free_before=min(close) - gap,
        )

    def _per_hour_cap(self, candidate: datetime, local: datetime) -> Violation | None:
        limit = self.rules.max_posts_per_hour
        count = self._per_hour[_hour_key(local)]
        if not _full(limit, count):
            return None
        start = _fixed_offset_instant(
            local.replace(tzinfo=None, minute=0, second=0, microsecond=0), local
        )
        end = start + timedelta(hours=1)
        return Violation(
            Rule.MAX_PER_HOUR,
            f"the hour from {local:%H}:00 on {local:%Y-%m-%d} ({local:%Z}) already has {count} "
            f"posts (limit {limit} per hour)",
            free_after=self._if_same_offset(candidate, end - _TICK, end),
            free_before=self._if_same_offset(candidate, start, start - _TICK),
        )

    def _per_day_cap(self, candidate: datetime, local: datetime) -> Violation | None:
        limit = self.rules.max_posts_per_day
        count = self._per_day[local.date()]
        if not _full(limit, count):
            return None
        midnight = datetime.combine(local.date(), time())
        start = _fixed_offset_instant(midnight, local)
        end = _fixed_offset_instant(midnight + timedelta(days=1), local)
        return Violation(
            Rule.MAX_PER_DAY,
            f"{local:%Y-%m-%d} already has {count} posts (limit {limit} per day)",
            free_after=self._if_same_offset(candidate, end - _TICK, end),
            free_before=self._if_same_offset(candidate, start, start - _TICK),
        )

    def _quiet_hours(self, candidate: datetime, local: datetime) -> Violation | None:
        quiet = self.rules.quiet_hours
        if quiet is None or not self._in_quiet_hours(local):
            return None
        wall = local.time().replace(tzinfo=None)
        day = local.date()
        crosses = quiet.end < quiet.start
        start_day = day - timedelta(days=1) if crosses and wall < quiet.end else day
        end_day = day + timedelta(days=1) if crosses and wall >= quiet.start else day
        start = _fixed_offset_instant(datetime.combine(start_day, quiet.start), local)
        end = _fixed_offset_instant(datetime.combine(end_day, quiet.end), local)
        window = f"{format_hh_mm(quiet.start)}-{format_hh_mm(quiet.end)}"
        return Violation(
            Rule.QUIET_HOURS,
            f"{local:%H:%M} {local:%Z} is inside the account's quiet hours ({window})",
            free_after=self._if_same_offset(candidate, end - _TICK, end),
            free_before=self._if_same_offset(candidate, start, start - _TICK),
        )

    def _if_same_offset(
        self, candidate: datetime, probe: datetime, hint: datetime
    ) -> datetime | None:
        # A hint computed with the candidate's UTC offset holds only when no DST
        # change lies between the candidate and the probe; otherwise the search
        # steps instead of jumping.
        offset = candidate.astimezone(self.zone).utcoffset()
        return hint if probe.astimezone(self.zone).utcoffset() == offset else None


def _full(limit: int, count: int) -> bool:
    """A cap of `limit` posts (0: none) that `count` posts already fill."""
    return bool(limit) and count >= limit


def _hour_key(local: datetime) -> _HourKey:
    return (local.date(), local.hour, local.utcoffset())


def _fixed_offset_instant(wall: datetime, reference: datetime) -> datetime:
    """The instant `wall` would be if `reference`'s UTC offset held then."""
    offset = reference.utcoffset() or timedelta()
    return (wall - offset).replace(tzinfo=UTC)
