"""The next free recurring slot of an account, for posts scheduled without a time.

Slots are wall-clock times in the account's zone: a 09:00 slot stays 09:00
local across DST changes; a slot in a DST gap moves to the end of the gap,
and a slot in a fold takes its first occurrence.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from post_management.domain._clock import ceil_to, require_aware
from post_management.domain.conflicts import DEFAULT_STEP, DEFAULT_WINDOW, forward_free_times
from post_management.domain.errors import FailedPrecondition
from post_management.domain.post import Priority
from post_management.domain.posting_calendar import PostingCalendar
from post_management.domain.posting_rules import PostingRules
from post_management.domain.reasons import Reason
from post_management.domain.timezones import (
    AmbiguousTimePolicy,
    NonexistentTimePolicy,
    to_instant,
)


class SlotPolicy(enum.StrEnum):
    """Where a post without a requested time goes: the next free slot, or the best
    free time of the coming week (services/analytics/optimal_times.py)."""

    NEXT = "NEXT"
    BEST = "BEST"


def slot_times(
    rules: PostingRules, zone: ZoneInfo, start: datetime, until: datetime
) -> Iterator[datetime]:
    """Every slot occurrence in [start, until], in order, each instant once."""
    start, until = require_aware(start, "start"), require_aware(until, "until")
    day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = until.astimezone(zone).date()
    previous: datetime | None = None
    while day <= last_day:
        instants = sorted(
            {
                to_instant(
                    datetime.combine(day, slot.time),
                    zone,
                    NonexistentTimePolicy.SHIFT_FORWARD,
                    AmbiguousTimePolicy.EARLIER,
                )
                for slot in rules.slots
                if slot.on(day.isoweekday())
            }
        )
        for instant in instants:
            if start <= instant <= until and (previous is None or instant > previous):
                previous = instant
                yield instant
        day += timedelta(days=1)


def free_slots(
    rules: PostingRules,
    zone: ZoneInfo,
    others: Iterable[datetime],
    after: datetime,
    count: int = 5,
    *,
    window: timedelta = DEFAULT_WINDOW,
    step: timedelta = DEFAULT_STEP,
) -> list[datetime]:
    """The next `count` times at or after `after` that a post could take.

    With slots configured these are slot occurrences; without, grid times
    (whole minutes). Each time counts as taken before the next is chosen, so
    the whole list can be filled without breaking a rule.
    """
    after = require_aware(after, "after")
    calendar = PostingCalendar(rules, zone, others)
    chosen: list[datetime] = []
    while len(chosen) < count:
        start = chosen[-1] + step if chosen else after
        found = _first_free(calendar, start, after + window, step, use_slots=bool(rules.slots))
        if found is None:
            break
        chosen.append(found)
        calendar.add(found)
    return chosen


def next_free_slot(
    rules: PostingRules,
    zone: ZoneInfo,
    others: Iterable[datetime],
    now: datetime,
    priority: Priority = Priority.NORMAL,
    *,
    window: timedelta = DEFAULT_WINDOW,
    step: timedelta = DEFAULT_STEP,
) -> datetime:
    """Where a post without a requested time goes.

    The next slot that satisfies every rule; an URGENT post, or an account
    without slots, takes the earliest free time from now (rounded up to the
    minute). Raises FailedPrecondition(reason=Reason.NO_FREE_SLOT) when nothing is
    free within `window`.
    """
    now = require_aware(now, "now")
    calendar = PostingCalendar(rules, zone, others)
    use_slots = bool(rules.slots) and priority is not Priority.URGENT
    found = _first_free(calendar, ceil_to(now, step), now + window, step, use_slots=use_slots)
    if found is None:
        raise FailedPrecondition(
            f"no time within {window.days} days satisfies the account's posting rules",
            reason=Reason.NO_FREE_SLOT,
            metadata={"timezone": zone.key, "window_days": str(window.days)},
        )
    return found


def _first_free(
    calendar: PostingCalendar, start: datetime, until: datetime, step: timedelta, *, use_slots: bool
) -> datetime | None:
    if not use_slots:
        return next(forward_free_times(calendar, start, until, step), None)
    for instant in slot_times(calendar.rules, calendar.zone, start, until):
        if calendar.is_free(instant):
            return instant
    return None
