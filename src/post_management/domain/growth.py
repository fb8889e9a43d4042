"""Account growth and audience activity: pure math over follower and metric snapshots.

docs/analytics.md states each definition with an example; tests/unit/test_growth_math.py
works them out by hand.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

HOURS_PER_WEEK = 168
# A post's follower window: from the snapshot before it to the first one this long after.
ATTRIBUTION_WINDOW = timedelta(hours=24)
# Engagement that arrived over a longer gap says little about the hour it came in.
MAX_ACTIVITY_GAP = timedelta(hours=24)
ATTRIBUTION_NOTE = (
    "followers_gained is the change between the last daily snapshot before the post and "
    "the first one at least 24 hours after it: attribution by time only. Followers come "
    "for many reasons, and close posts share their windows. Posts without both snapshots "
    "are left out."
)


@dataclass(frozen=True)
class FollowerSnapshot:
    """X's public counts of an account, read once on `day` (UTC)."""

    day: date
    collected_at: datetime
    followers: int
    following: int = 0
    posts: int = 0
    listed: int = 0


@dataclass(frozen=True)
class GrowthDay:
    snapshot: FollowerSnapshot
    followers_change: int


@dataclass(frozen=True)
class GrowthSummary:
    days: list[GrowthDay]
    net_change: int
    growth_rate: float


def growth_summary(snapshots: Sequence[FollowerSnapshot]) -> GrowthSummary:
    """Day-over-day changes, net change (last - first) and growth rate (net / first)."""
    ordered = sorted(snapshots, key=lambda s: s.day)
    days = [
        GrowthDay(s, s.followers - ordered[i - 1].followers if i else 0)
        for i, s in enumerate(ordered)
    ]
    if not ordered:
        return GrowthSummary([], 0, 0.0)
    net = ordered[-1].followers - ordered[0].followers
    first = ordered[0].followers
    return GrowthSummary(days, net, net / first if first > 0 else 0.0)


def followers_gained_after(
    published_at: datetime, snapshots: Sequence[FollowerSnapshot]
) -> int | None:
    """Followers gained between the last snapshot at or before `published_at` and the
    first at least ATTRIBUTION_WINDOW after it; None without both."""
    ordered = sorted(snapshots, key=lambda s: s.collected_at)
    times = [s.collected_at for s in ordered]
    before = bisect.bisect_right(times, published_at) - 1
    after = bisect.bisect_left(times, published_at + ATTRIBUTION_WINDOW)
    if before < 0 or after >= len(ordered):
        return None
    return ordered[after].followers - ordered[before].followers


@dataclass(frozen=True)
class EngagementPoint:
    """A post's engagements counted at one moment (its publication counts as 0)."""

    at: datetime
    engagements: int


@dataclass(frozen=True)
class Activity:
    engagements: list[float]  # 168 hours of the week, Monday 00:00 first
    observations: int

    @property
    def total(self) -> float:
        return sum(self.engagements)

    def shares(self) -> list[float]:
        total = self.total
        return [e / total if total > 0 else 0.0 for e in self.engagements]


def hour_of_week(instant: datetime, zone: ZoneInfo) -> int:
    local = instant.astimezone(zone)
    return local.weekday() * 24 + local.hour


def audience_activity(posts: Sequence[Sequence[EngagementPoint]], zone: ZoneInfo) -> Activity:
    """Engagement that arrived between two consecutive points of a post, spread evenly
    over the hours of the week the interval covers (in `zone`). Gaps longer than
    MAX_ACTIVITY_GAP, and counts that went down (X recounts), are left out."""
    hours = [0.0] * HOURS_PER_WEEK
    observations = 0
    for points in posts:
        ordered = sorted(points, key=lambda p: p.at)
        for earlier, later in itertools.pairwise(ordered):
            gained = later.engagements - earlier.engagements
            span = later.at - earlier.at
            if gained <= 0 or span <= timedelta(0) or span > MAX_ACTIVITY_GAP:
                continue
            observations += 1
            _spread(hours, earlier.at, later.at, gained, zone)
    return Activity(hours, observations)


def _spread(
    hours: list[float], start: datetime, end: datetime, amount: int, zone: ZoneInfo
) -> None:
    """Adds `amount` over [start, end) in proportion to the time spent in each hour."""
    total = (end - start).total_seconds()
    cursor = start
    while cursor < end:
        next_hour = cursor.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        piece_end = min(next_hour, end)
        share = (piece_end - cursor).total_seconds() / total
        hours[hour_of_week(cursor, zone)] += amount * share
        cursor = piece_end
