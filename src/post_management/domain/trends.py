"""Trend alerts: a young post far from its account's norm, and a follower drop.

A post in its first TREND_WINDOW is compared with the account's other posts at the
same age. Each post's engagements at age a are read off its snapshots by linear
interpolation (its publication counts as 0 engagements at age 0; a peer without a
snapshot at or after a is left out). On x = log(1 + engagements):

    z = (x_post - median(x_peers)) / max(1.4826 * MAD(x_peers), MIN_SPREAD)

and |z| >= Z_THRESHOLD with at least MIN_PEERS peers is an alert (above or below).
A follower drop is a day-over-day fall of at least FOLLOWER_DROP_SHARE of the
followers and at least MIN_FOLLOWER_DROP followers. docs/analytics.md has examples.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

TREND_WINDOW = timedelta(hours=6)  # "its first hours"
MIN_AGE = timedelta(minutes=30)  # younger snapshots say too little
MIN_PEERS = 8
Z_THRESHOLD = 3.5
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution x this = its standard deviation
MIN_SPREAD = 0.1  # on log(1 + engagements): identical peers do not make every post news
FOLLOWER_DROP_SHARE = 0.02
MIN_FOLLOWER_DROP = 10

ABOVE, BELOW = "above", "below"


@dataclass(frozen=True)
class Point:
    """Engagements of a post `age` after its publication."""

    age: timedelta
    engagements: float


def engagements_at(points: Sequence[Point], age: timedelta) -> float | None:
    """Linear interpolation at `age`; None when no point is at or after it."""
    ordered = sorted([Point(timedelta(0), 0.0), *points], key=lambda p: p.age)
    for earlier, later in itertools.pairwise(ordered):
        if earlier.age <= age <= later.age:
            span = (later.age - earlier.age).total_seconds()
            if span == 0:
                return later.engagements
            share = (age - earlier.age).total_seconds() / span
            return earlier.engagements + share * (later.engagements - earlier.engagements)
    return None


@dataclass(frozen=True)
class PostTrend:
    direction: str  # ABOVE or BELOW
    age: timedelta
    observed: float  # the post's engagements at `age`
    expected: float  # the peers' median engagements at `age`
    z: float
    peers: int

    def summary(self) -> str:
        hours = self.age.total_seconds() / 3600
        return (
            f"Trend: far {self.direction} the account's norm at {hours:.1f} h: "
            f"{self.observed:.0f} engagements against a median of {self.expected:.0f} "
            f"over {self.peers} posts at the same age (robust z {self.z:+.1f})."
        )


def post_trend(
    post: Sequence[Point], peers: Sequence[Sequence[Point]], age: timedelta
) -> PostTrend | None:
    """The alert for a post at `age`, if any (see the module's docstring)."""
    if not MIN_AGE <= age <= TREND_WINDOW:
        return None
    observed = engagements_at(post, age)
    if observed is None:
        return None
    values = [v for v in (engagements_at(p, age) for p in peers) if v is not None]
    if len(values) < MIN_PEERS:
        return None
    logs = [math.log1p(max(v, 0.0)) for v in values]
    center = statistics.median(logs)
    mad = statistics.median(abs(x - center) for x in logs)
    z = (math.log1p(max(observed, 0.0)) - center) / max(MAD_TO_SIGMA * mad, MIN_SPREAD)
    if abs(z) < Z_THRESHOLD:
        return None
    expected = statistics.median(values)
    return PostTrend(ABOVE if z > 0 else BELOW, age, observed, expected, z, len(values))


@dataclass(frozen=True)
class FollowerDrop:
    previous: int
    current: int
    since: datetime  # the previous snapshot's time
    at: datetime

    @property
    def change(self) -> float:
        return (self.current - self.previous) / self.previous

    def summary(self) -> str:
        return (
            f"Trend: followers fell {-self.change:.1%} ({self.previous} to {self.current}) "
            f"between {self.since:%Y-%m-%d %H:%M} and {self.at:%Y-%m-%d %H:%M} UTC."
        )


def follower_drop(
    previous: int, current: int, since: datetime, at: datetime
) -> FollowerDrop | None:
    lost = previous - current
    if previous <= 0 or lost < MIN_FOLLOWER_DROP or lost / previous < FOLLOWER_DROP_SHARE:
        return None
    return FollowerDrop(previous, current, since, at)
