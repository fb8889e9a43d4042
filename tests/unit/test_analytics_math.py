"""Analytics math on a hand-built data set; every expected figure is worked out here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from post_management.domain.analytics import (
    Comparison,
    Counts,
    Snapshot,
    engagement_velocity,
    insights,
    next_refresh,
    percentile_rank,
    refresh_interval,
)
from post_management.domain.analytics_timing import (
    PastPost,
    best_times,
    hour_starts,
    week_scores,
)
from post_management.domain.posting_rules import parse_posting_rules

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def test_engagements_are_the_seven_interaction_counts_over_impressions() -> None:
    counts = Counts(
        impressions=1000,
        likes=40,
        reposts=10,
        replies=5,
        quotes=5,
        bookmarks=10,
        url_link_clicks=20,
        user_profile_clicks=10,
        video_views=999,  # exposure, not engagement
    )
    assert counts.engagements == 40 + 10 + 5 + 5 + 10 + 20 + 10 == 100
    assert counts.engagement_rate == pytest.approx(0.10)
    assert Counts().engagement_rate == 0.0  # nothing seen: no rate, not a division error


def test_percentile_counts_strictly_lower_posts() -> None:
    others = [0.05, 0.02, 0.02, 0.01, 0.20]
    assert percentile_rank(0.10, others) == pytest.approx(80.0)  # 4 of 5 lower
    assert percentile_rank(0.02, others) == pytest.approx(20.0)  # only 0.01; ties do not count
    assert percentile_rank(0.5, []) == 0.0


def test_velocity_uses_the_last_snapshot_of_the_first_two_hours() -> None:
    published = datetime(2026, 3, 3, 12, tzinfo=UTC)
    series = [
        Snapshot(published + timedelta(minutes=30), Counts(impressions=100, likes=5)),
        Snapshot(published + timedelta(hours=1, minutes=30), Counts(impressions=400, likes=30)),
        Snapshot(published + timedelta(hours=5), Counts(impressions=900, likes=80)),
    ]
    # 30 engagements at 1.5 h
    assert engagement_velocity(series, published) == pytest.approx(20.0)
    assert engagement_velocity(series[2:], published) == 0.0


def test_comparison_and_insights_carry_their_figures() -> None:
    counts = Counts(1000, 40, 10, 5, 5, 10, 20, 10)  # 100 engagements, rate 0.10
    comparison = Comparison(0.10, (0.05, 0.02, 0.02, 0.01, 0.20), benchmark=0.015)
    assert comparison.account_average == pytest.approx(0.30 / 5)  # 0.06
    assert comparison.account_median == pytest.approx(0.02)
    assert comparison.percentile == pytest.approx(80.0)

    found = insights(counts, comparison, velocity=30.0)
    texts = [i.text for i in found]
    assert texts == [
        "Engagement rate 10.00% is 67% above the account's average (6.00%).",
        "Engagement rate 10.00% is 567% above the benchmark (1.50%).",
        "Better than 80% of the account's posts.",
        "Likes make up 40% of engagements.",
        "30.0 engagements per hour in the first hours.",
    ]
    average, benchmark, percentile, driver, velocity = (i.figures for i in found)
    assert average == pytest.approx(
        {"engagement_rate": 0.10, "reference_rate": 0.06, "ratio": 0.10 / 0.06}
    )
    assert benchmark["ratio"] == pytest.approx(0.10 / 0.015)
    assert percentile == {"percentile": 80.0, "posts_compared": 5.0}
    assert driver == pytest.approx({"likes": 40.0, "engagements": 100.0, "share": 0.4})
    assert velocity == {"engagement_velocity": 30.0}


def test_weak_posts_and_empty_posts() -> None:
    weak = insights(
        Counts(impressions=1000, likes=10),  # rate 0.01
        Comparison(0.01, (0.05, 0.02, 0.03), benchmark=0.01),
        velocity=0.0,
    )
    assert [i.text for i in weak] == [
        "Engagement rate 1.00% is 70% below the account's average (3.33%).",
        "Engagement rate 1.00% is in line with the benchmark (1.00%).",
        "Among the account's weakest posts (0th percentile).",
        "Likes make up 100% of engagements.",
    ]
    empty = insights(Counts(), Comparison(0.0, (0.05,), 0.01), 0.0)
    assert [i.text for i in empty] == ["No impressions yet: nothing to compare."]


@pytest.mark.parametrize(
    ("age", "every"),
    [
        (timedelta(minutes=1), timedelta(minutes=5)),
        (timedelta(hours=1, minutes=59), timedelta(minutes=5)),
        (timedelta(hours=2), timedelta(hours=1)),
        (timedelta(days=1), timedelta(hours=1)),
        (timedelta(days=2), timedelta(days=1)),
        (timedelta(days=29), timedelta(days=1)),
        (timedelta(days=30), timedelta(days=7)),
        (timedelta(days=400), timedelta(days=7)),
    ],
)
def test_refresh_schedule(age: timedelta, every: timedelta) -> None:
    assert refresh_interval(age) == every
    published = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_refresh(published, published + age) == published + age + every


# --- optimal times ------------------------------------------------------------------

# Monday 2026-03-02; the next week's Tuesday is 03-03, Wednesday 03-04.
NOW = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
PAST_TUESDAY_NOON = datetime(2026, 2, 24, 12, tzinfo=UTC)
PAST_WEDNESDAY_NOON = datetime(2026, 2, 25, 12, tzinfo=UTC)
PAST_SUNDAY_3AM = datetime(2026, 3, 1, 3, tzinfo=UTC)


def history() -> list[PastPost]:
    return [
        PastPost(PAST_WEDNESDAY_NOON, 0.20),
        PastPost(PAST_TUESDAY_NOON, 0.10),
        PastPost(PAST_SUNDAY_3AM, 0.05),
        PastPost(PAST_SUNDAY_3AM + timedelta(hours=1), 0.02),
        PastPost(PAST_SUNDAY_3AM - timedelta(days=1), 0.02),  # Saturday 03:00
        PastPost(PAST_SUNDAY_3AM - timedelta(days=1, hours=-1), 0.01),  # Saturday 04:00
    ]


def test_cells_are_shrunk_toward_the_scaled_prior() -> None:
    scores = week_scores(history(), UTC_ZONE)
    level = (0.20 + 0.10 + 0.05 + 0.02 + 0.02 + 0.01) / 6  # 0.0666...
    # Wednesday (day 2) 12:00: one post at 0.20, prior level * 1.10 * 1.25
    wednesday = scores[(2, 12)]
    assert wednesday.score == pytest.approx((0.20 + 3 * level * 1.10 * 1.25) / 4)  # 0.11875
    assert wednesday.confidence == pytest.approx(0.25) and wednesday.posts == 1
    assert scores[(1, 12)].score == pytest.approx((0.10 + 3 * level * 1.10 * 1.25) / 4)
    # An empty cell is the prior itself, with no confidence.
    assert scores[(0, 9)].score == pytest.approx(level * 1.00 * 1.15)
    assert scores[(0, 9)].confidence == 0.0


def test_best_free_times_from_history() -> None:
    rules = parse_posting_rules()
    best = best_times(week_scores(history(), UTC_ZONE), rules, UTC_ZONE, [], NOW, 7, 3)
    level = 0.4 / 6
    assert [(b.start, round(b.score, 6), b.confidence) for b in best] == [
        (datetime(2026, 3, 4, 12, tzinfo=UTC), round((0.20 + 3 * level * 1.375) / 4, 6), 0.25),
        (datetime(2026, 3, 3, 12, tzinfo=UTC), round((0.10 + 3 * level * 1.375) / 4, 6), 0.25),
        # Then the prior's best empty cells, Tue/Wed 10:00 and 11:00 (1.10 * 1.20): the
        # earliest wins the tie.
        (datetime(2026, 3, 3, 10, tzinfo=UTC), round(level * 1.32, 6), 0.0),
    ]


def test_posting_rules_keep_suggestions_free() -> None:
    scores = week_scores(history(), UTC_ZONE)
    # Quiet from 11:30 to 13:00 hides both noon cells; a post already taken at Tue 10:20
    # with a 60-minute minimum interval rules out Tue 10:00 and 11:00.
    rules = parse_posting_rules(
        min_interval_minutes=60, quiet_hours_start="11:30", quiet_hours_end="13:00"
    )
    taken = [datetime(2026, 3, 3, 10, 20, tzinfo=UTC)]
    best = best_times(scores, rules, UTC_ZONE, taken, NOW, 7, 2)
    level = 0.4 / 6
    assert [b.start for b in best] == [
        datetime(2026, 3, 4, 10, tzinfo=UTC),  # Wed 10:00 (1.10 * 1.20)
        datetime(2026, 3, 4, 11, tzinfo=UTC),  # Wed 11:00, 60 minutes later: allowed
    ]
    assert best[0].score == pytest.approx(level * 1.32)


def test_a_new_account_gets_the_prior_in_its_own_time_zone() -> None:
    scores = week_scores([], BERLIN)
    assert all(cell.confidence == 0.0 for cell in scores.values())
    best = best_times(scores, parse_posting_rules(), BERLIN, [], NOW, 7, 1)
    # 0.015 * 1.10 * 1.25 on Tuesday 12:00 Berlin time (11:00 UTC in winter).
    assert best[0].start == datetime(2026, 3, 3, 11, tzinfo=UTC)
    assert best[0].score == pytest.approx(0.015 * 1.375)


def test_slots_follow_local_hours_across_dst() -> None:
    # Berlin springs forward on 2026-03-29: that day has 23 local hours.
    start = datetime(2026, 3, 28, 23, tzinfo=UTC)  # 00:00 local on the 29th
    hours = list(hour_starts(BERLIN, start, start + timedelta(days=1)))
    assert len(hours) == 24  # 23 on the 29th plus 00:00 of the 30th
    local = [h.astimezone(BERLIN).hour for h in hours]
    assert 2 not in local[:23] and local[:3] == [0, 1, 3]
