"""Account growth, audience activity and campaign roll-ups, worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.growth import (
    EngagementPoint,
    FollowerSnapshot,
    audience_activity,
    followers_gained_after,
    growth_summary,
    hour_of_week,
)
from post_management.domain.post import PostState
from post_management.ports.analytics import MeasuredPost
from post_management.services.analytics.campaigns import daily_series, rank, summarise

DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def snap(day: int, followers: int, hour: int = 9) -> FollowerSnapshot:
    at = DAY + timedelta(days=day, hours=hour - 9)
    return FollowerSnapshot(at.date(), at, followers, following=10, posts=day, listed=1)


def test_growth_summary_changes_net_and_rate() -> None:
    # 1,000 -> 1,030 -> 1,010 -> 1,050: changes 0, +30, -20, +40; net +50 = 5 %.
    summary = growth_summary([snap(2, 1010), snap(0, 1000), snap(3, 1050), snap(1, 1030)])
    assert [d.snapshot.followers for d in summary.days] == [1000, 1030, 1010, 1050]
    assert [d.followers_change for d in summary.days] == [0, 30, -20, 40]
    assert summary.net_change == 50
    assert summary.growth_rate == 0.05


def test_growth_summary_without_followers() -> None:
    assert growth_summary([]).net_change == 0
    assert growth_summary([snap(0, 0), snap(1, 7)]).growth_rate == 0.0


def test_followers_gained_in_the_day_after_a_post() -> None:
    snapshots = [snap(0, 1000), snap(1, 1030), snap(2, 1010), snap(3, 1050)]
    # Published Monday 12:00: before it Monday 09:00 (1,000); 24 h later is Tuesday
    # 12:00, the first snapshot from then is Wednesday 09:00 (1,010): +10.
    assert followers_gained_after(DAY + timedelta(hours=3), snapshots) == 10
    # Published at a snapshot's instant: that snapshot is "before"; Tuesday 09:00 is
    # exactly 24 h later: 1,030 - 1,000.
    assert followers_gained_after(DAY, snapshots) == 30
    # No snapshot before the post, or none a day after it: not measurable.
    assert followers_gained_after(DAY - timedelta(hours=1), snapshots) is None
    assert followers_gained_after(DAY + timedelta(days=2, hours=1), snapshots) is None


def test_hour_of_week_in_the_accounts_zone() -> None:
    assert hour_of_week(DAY, ZoneInfo("UTC")) == 9  # Monday 09:00
    # 09:00 UTC is 18:00 in Tokyo, and Sunday 23:00 in Honolulu (-10:00): the last hour.
    assert hour_of_week(DAY, ZoneInfo("Asia/Tokyo")) == 18
    assert hour_of_week(DAY, ZoneInfo("Pacific/Honolulu")) == 6 * 24 + 23


def test_audience_activity_spreads_engagement_over_the_hours_it_arrived_in() -> None:
    utc = ZoneInfo("UTC")
    post = [
        EngagementPoint(DAY + timedelta(minutes=30), 0),  # published Monday 09:30
        # 30 engagements from 09:30 to 10:30: half in hour 9, half in hour 10.
        EngagementPoint(DAY + timedelta(minutes=90), 30),
        # Then 12 more up to 11:30 (hour 10: 6, hour 11: 6).
        EngagementPoint(DAY + timedelta(minutes=150), 42),
        # A recount down is left out, and so is a gap over a day.
        EngagementPoint(DAY + timedelta(minutes=160), 40),
        EngagementPoint(DAY + timedelta(days=3), 90),
    ]
    other = [EngagementPoint(DAY + timedelta(days=1, hours=5), 0)]  # one point: nothing
    activity = audience_activity([post, other], utc)
    assert activity.observations == 2
    assert activity.engagements[9] == 15
    assert activity.engagements[10] == 21
    assert activity.engagements[11] == 6
    assert activity.total == 42
    assert round(activity.shares()[10], 6) == round(21 / 42, 6)
    assert sum(1 for e in activity.engagements if e) == 3


def measured(
    rate_parts: tuple[int, int, int], published: datetime | None, state: PostState
) -> MeasuredPost:
    impressions, likes, clicks = rate_parts
    latest = None
    if published is not None:
        latest = Snapshot(
            published, Counts(impressions=impressions, likes=likes, url_link_clicks=clicks)
        )
    return MeasuredPost(uuid4(), uuid4(), state, published, published, latest, "1")


def test_campaign_summary_rates_are_over_totals() -> None:
    a = measured((1000, 40, 10), DAY, PostState.PUBLISHED)
    b = measured((3000, 50, 30), DAY, PostState.PUBLISHED)
    never = measured((0, 0, 0), None, PostState.PUBLISHED)
    summary = summarise([a, b, never])
    # Engagements: (40 + 10) + (50 + 30) = 130 over 4,000 impressions; clicks 40.
    assert summary.measured_posts == 2
    assert summary.engagement_rate == 130 / 4000
    assert summary.click_through_rate == 40 / 4000


def test_best_and_worst_by_engagement_rate() -> None:
    posts = [measured((100, i, 0), DAY, PostState.PUBLISHED) for i in (5, 1, 9, 3)] + [
        measured((0, 0, 0), DAY, PostState.PUBLISHED)
    ]  # no impressions: not ranked
    best, worst = rank(posts)
    assert [p.latest.counts.likes for p in best if p.latest] == [9, 5, 3]
    assert [p.latest.counts.likes for p in worst if p.latest] == [1, 3, 5]


def test_daily_series_sums_each_posts_latest_snapshot_by_day_end() -> None:
    first = measured((0, 0, 0), DAY, PostState.PUBLISHED)
    second = measured((0, 0, 0), DAY + timedelta(days=1), PostState.PUBLISHED)
    series = {
        first.post_id: [
            Snapshot(DAY + timedelta(hours=1), Counts(impressions=100, likes=4)),
            Snapshot(DAY + timedelta(days=1, hours=1), Counts(impressions=300, likes=9)),
        ],
        second.post_id: [
            Snapshot(DAY + timedelta(days=1, hours=2), Counts(impressions=50, url_link_clicks=5))
        ],
    }
    days = daily_series([first, second], series, date(2026, 11, 2), date(2026, 11, 4))
    assert [d.day.isoformat() for d in days] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert [d.published_posts for d in days] == [1, 2, 2]
    assert [d.totals.impressions for d in days] == [100, 350, 350]
    assert [d.totals.engagements for d in days] == [4, 14, 14]
    assert [d.totals.url_link_clicks for d in days] == [0, 5, 5]
