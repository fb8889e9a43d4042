"""Trend alert math (domain/trends.py), worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from post_management.domain.trends import (
    ABOVE,
    BELOW,
    Point,
    engagements_at,
    follower_drop,
    post_trend,
)

H = timedelta(hours=1)


def test_engagements_at_interpolates_from_publication() -> None:
    points = [Point(H, 10), Point(3 * H, 50)]
    assert engagements_at(points, H / 2) == pytest.approx(5)  # 0 at publication
    assert engagements_at(points, 2 * H) == pytest.approx(30)
    assert engagements_at(points, 3 * H) == pytest.approx(50)
    assert engagements_at(points, 4 * H) is None  # no snapshot that late
    assert engagements_at([Point(timedelta(0), 7)], timedelta(0)) == 7


def peers(values: list[float]) -> list[list[Point]]:
    return [[Point(2 * H, v)] for v in values]


def test_robust_z_against_same_age_peers() -> None:
    # Peers at 1 h (half of their 2 h counts): 49, 50, 50, 51, 49, 50, 51, 50.
    others = peers([98, 100, 100, 102, 98, 100, 102, 100])
    logs = sorted(math.log1p(v / 2) for v in [98, 100, 100, 102, 98, 100, 102, 100])
    center = (logs[3] + logs[4]) / 2
    mad = sorted(abs(x - center) for x in logs)
    spread = max(1.4826 * (mad[3] + mad[4]) / 2, 0.1)  # identical-ish peers: the floor
    found = post_trend([Point(H, 200)], others, H)
    assert found is not None and found.direction == ABOVE
    assert found.z == pytest.approx((math.log1p(200) - center) / spread)
    assert found.expected == pytest.approx(50) and found.observed == 200 and found.peers == 8
    assert "far above" in found.summary() and "1.0 h" in found.summary()
    low = post_trend([Point(H, 2)], others, H)
    assert low is not None and low.direction == BELOW and low.z < -3.5
    # Within the spread: no alert.
    assert post_trend([Point(H, 52)], others, H) is None


def test_no_alert_without_enough_peers_or_outside_the_first_hours() -> None:
    assert post_trend([Point(H, 500)], peers([100] * 7), H) is None
    assert post_trend([Point(H / 4, 500)], peers([100] * 8), H / 4) is None  # too young
    assert post_trend([Point(7 * H, 500)], peers([100] * 8), 7 * H) is None  # too old
    # Peers without a snapshot at that age do not count.
    assert post_trend([Point(3 * H, 500)], peers([100] * 8), 3 * H) is None


def test_follower_drop_needs_share_and_count() -> None:
    at = datetime(2026, 3, 2, 8, tzinfo=UTC)
    drop = follower_drop(1000, 970, at - timedelta(days=1), at)
    assert drop is not None and drop.change == pytest.approx(-0.03)
    assert "3.0%" in drop.summary() and "1000 to 970" in drop.summary()
    assert follower_drop(1000, 985, at, at) is None  # 1.5 %: under the share
    assert follower_drop(100, 91, at, at) is None  # 9 %, but fewer than 10 followers...
    assert follower_drop(100, 90, at, at) is not None  # ... 10 is enough
    assert follower_drop(0, 0, at, at) is None
