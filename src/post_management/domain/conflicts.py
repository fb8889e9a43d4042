"""Conflict checks against posting rules, and the nearest free times.

The search walks a grid (whole minutes by default, aligned to the Unix
epoch) outward from the candidate, forward and backward, never before `now`.
It is deterministic: times are ordered by distance from the candidate, the
later one first on a tie. Rule hints let it jump over full hours, full days
and quiet hours, so it stays fast over a long window.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from post_management.domain._clock import ceil_to, floor_to, iso_utc, require_aware
from post_management.domain.errors import FailedPrecondition
from post_management.domain.posting_calendar import PostingCalendar, Violation, describe
from post_management.domain.posting_rules import PostingRules
from post_management.domain.reasons import Reason

DEFAULT_STEP = timedelta(minutes=1)
DEFAULT_WINDOW = timedelta(days=365)  # the scheduling horizon
# Suggestions this close to one another are the same choice to a user.
DEFAULT_SPACING = timedelta(minutes=15)
# A backstop on rule checks per direction; hints normally keep it far away.
MAX_PROBES = 200_000


class ConflictPolicy(enum.StrEnum):
    REJECT = "REJECT"
    MOVE = "MOVE"


@dataclass(frozen=True)
class Resolution:
    instant: datetime
    moved: bool = False
    reason: str = ""  # why it moved, in plain language; empty when it did not
    violations: tuple[Violation, ...] = ()


def find_violations(
    candidate: datetime, rules: PostingRules, zone: ZoneInfo, others: Iterable[datetime]
) -> list[Violation]:
    """The rules a post at `candidate` breaks (empty: it is free).

    `others` are the instants of the account's other scheduled or published
    posts; leave the post being scheduled out of them.
    """
    return PostingCalendar(rules, zone, others).violations(candidate)


def forward_free_times(
    calendar: PostingCalendar,
    start: datetime,
    until: datetime,
    step: timedelta = DEFAULT_STEP,
) -> Iterator[datetime]:
    """Free grid times in [start, until], earliest first."""
    at = ceil_to(require_aware(start, "start"), step)
    for _ in range(MAX_PROBES):
        if at > until:
            return
        found = calendar.violations(at)
        if not found:
            yield at
            at += step
            continue
        hints = [v.free_after for v in found if v.free_after is not None]
        at = max(at + step, ceil_to(max(hints), step)) if hints else at + step


def backward_free_times(
    calendar: PostingCalendar,
    start: datetime,
    not_before: datetime,
    step: timedelta = DEFAULT_STEP,
) -> Iterator[datetime]:
    """Free grid times in [not_before, start], latest first."""
    at = floor_to(require_aware(start, "start"), step)
    for _ in range(MAX_PROBES):
        if at < not_before:
            return
        found = calendar.violations(at)
        if not found:
            yield at
            at -= step
            continue
        hints = [v.free_before for v in found if v.free_before is not None]
        at = min(at - step, floor_to(min(hints), step)) if hints else at - step


def nearest_free_times(
    candidate: datetime,
    rules: PostingRules,
    zone: ZoneInfo,
    others: Iterable[datetime],
    now: datetime,
    n: int = 3,
    *,
    step: timedelta = DEFAULT_STEP,
    window: timedelta = DEFAULT_WINDOW,
    spacing: timedelta = DEFAULT_SPACING,
) -> list[datetime]:
    """Up to `n` free grid times nearest `candidate`, within `window` of it, not before `now`.

    The candidate itself comes first when it is free and on the grid. Each
    further time is at least `spacing` (or the rules' minimum interval, if
    longer) from those already chosen, so they are real alternatives.
    """
    calendar = PostingCalendar(rules, zone, others)
    spacing = max(spacing, step, timedelta(minutes=rules.min_interval_minutes))
    return _nearest(calendar, candidate, now, n, step, window, spacing)


def _nearest(
    calendar: PostingCalendar,
    candidate: datetime,
    now: datetime,
    n: int,
    step: timedelta,
    window: timedelta,
    spacing: timedelta,
) -> list[datetime]:
    candidate = require_aware(candidate, "candidate")
    now = require_aware(now, "now")
    first_forward = max(ceil_to(candidate, step), ceil_to(now, step))
    forward = forward_free_times(calendar, first_forward, candidate + window, step)
    backward = backward_free_times(
        calendar, first_forward - step, max(now, candidate - window), step
    )
    # Distance first; on a tie the later time (0) before the earlier (1).
    keyed_forward = ((t - candidate, 0, t) for t in forward)
    keyed_backward = ((candidate - t, 1, t) for t in backward)
    chosen: list[datetime] = []
    for _, _, time in heapq.merge(keyed_forward, keyed_backward):
        if len(chosen) >= n:
            break
        if all(abs(time - other) >= spacing for other in chosen):
            chosen.append(time)
    return chosen


def resolve_conflict(
    candidate: datetime,
    rules: PostingRules,
    zone: ZoneInfo,
    others: Iterable[datetime],
    now: datetime,
    policy: ConflictPolicy = ConflictPolicy.REJECT,
    *,
    suggestions: int = 3,
    step: timedelta = DEFAULT_STEP,
    window: timedelta = DEFAULT_WINDOW,
    spacing: timedelta = DEFAULT_SPACING,
) -> Resolution:
    """Keep `candidate` when it is free; otherwise reject or move it.

    REJECT raises FailedPrecondition(reason=Reason.SCHEDULE_CONFLICT) whose
    metadata lists the broken rules and the nearest free times. MOVE returns
    the nearest free time, or raises FailedPrecondition(reason=Reason.NO_FREE_TIME)
    when there is none within `window`.
    """
    calendar = PostingCalendar(rules, zone, others)
    found = calendar.violations(candidate)
    if not found:
        return Resolution(candidate)
    reasons = "; ".join(v.reason for v in found)
    wanted = 1 if policy is ConflictPolicy.MOVE else suggestions
    spacing = max(spacing, step, timedelta(minutes=rules.min_interval_minutes))
    free = _nearest(calendar, candidate, now, wanted, step, window, spacing)
    metadata = {
        "timezone": zone.key,
        "requested_time": iso_utc(candidate),
        "violated_rules": ",".join(v.rule for v in found),
        "nearest_free_times": ",".join(iso_utc(t) for t in free),
        "nearest_free_times_local": ",".join(t.astimezone(zone).isoformat() for t in free),
    }
    if policy is ConflictPolicy.MOVE and free:
        moved_to = free[0]
        reason = f"moved from {describe(candidate, zone)} to {describe(moved_to, zone)}: {reasons}"
        return Resolution(moved_to, moved=True, reason=reason, violations=tuple(found))
    suggestion_text = ", ".join(describe(t, zone) for t in free) or "none within the window"
    message = (
        f"{describe(candidate, zone)} breaks the account's posting rules: {reasons}. "
        f"Nearest free times: {suggestion_text}"
    )
    reason_code = (
        Reason.SCHEDULE_CONFLICT if policy is ConflictPolicy.REJECT else Reason.NO_FREE_TIME
    )
    raise FailedPrecondition(message, reason=reason_code, metadata=metadata)
