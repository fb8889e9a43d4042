"""The engagement model's features, its hold-out judgement, its targets and its fit
cache. Its evaluation with the real learner (scikit-learn) on synthetic sets with and
without structure is in tests/integration/test_engagement_model_evaluation.py."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from post_management.domain import engagement_evaluation as judge
from post_management.domain import engagement_features as ef
from post_management.domain.media import MediaKind
from post_management.services.analytics.engagement_fitting import (
    ENGAGEMENT_RATE,
    IMPRESSIONS,
    Fit,
    FitCache,
    HoldOut,
)

TUESDAY_NOON = datetime(2026, 3, 3, 12, 30, tzinfo=UTC)


def test_features_of_a_draft() -> None:
    draft = ef.Draft(
        "Ready? https://ex.am/a and http://b.c #launch #x @alice @bob e@mail.com",
        MediaKind.VIDEO,
        TUESDAY_NOON,
    )
    values = ef.features(draft, ZoneInfo("Europe/Berlin"), None)
    row = dict(zip(ef.FEATURE_NAMES, values, strict=True))
    assert row == {
        "text_length": float(len(draft.text)),
        "links": 2.0,
        "hashtags": 2.0,
        "mentions": 2.0,  # an e-mail address is no mention
        "media": 3.0,
        "question": 1.0,
        "hour_of_week": 24 + 13.0,  # Tuesday 13:30 in Berlin
        "local_hour": 13.0,
        "weekend": 0.0,
        "hours_since_previous": 168.0,  # none before: capped
    }
    later = ef.features(draft, ZoneInfo("UTC"), TUESDAY_NOON - timedelta(hours=5, minutes=30))
    assert later[ef.FEATURE_NAMES.index("hours_since_previous")] == 5.5
    assert ef.describe_value("hour_of_week", 37) == "Tue 13:00"
    assert ef.describe_value("media", 3) == "video"
    assert ef.describe_value("question", 1) == "yes"
    assert ef.describe_value("hours_since_previous", 5.5) == "5.5 h"
    assert ef.describe_value("links", 2) == "2"


def test_history_rows_take_recency_from_the_same_account() -> None:
    def past(account: str, hours: int) -> ef.PastPost:
        return ef.PastPost(
            account, "UTC", ef.Draft("x", None, TUESDAY_NOON + timedelta(hours=hours)), 1, 0
        )

    history = [past("a", 0), past("b", 1), past("a", 3)]
    gaps = [row[ef.FEATURE_NAMES.index("hours_since_previous")] for row in ef.history_rows(history)]
    assert gaps == [168.0, 168.0, 3.0]
    assert ef.previous_before(history, TUESDAY_NOON + timedelta(hours=2)) == history[1].draft.at
    assert ef.previous_before(history, TUESDAY_NOON) is None


def test_conformal_quantile_and_helpers_by_hand() -> None:
    # m = 9 residuals: rank ceil(0.8 * 10) = 8 -> the 8th smallest |r|.
    assert judge.conformal_quantile([1, -2, 3, -4, 5, 6, -7, 8, 9]) == 8
    # m = 3: rank ceil(0.8 * 4) = 4 > 3: no finite radius.
    assert judge.conformal_quantile([1, 2, 3]) == math.inf
    assert judge.empirical_quantile([10, 20, 30, 40, 50], 0.1) == pytest.approx(14)
    assert judge.empirical_quantile([], 0.5) == 0.0
    assert judge.empirical_quantile([7], 0.9) == 7.0
    assert judge.coverage([1, 5, 9], [0, 0, 0], [2, 6, 8]) == pytest.approx(2 / 3)
    assert judge.coverage([], [], []) == 0.0
    assert judge.split(100) == judge.Split(60, 80)


def test_verdict_needs_a_clear_and_large_enough_gain() -> None:
    base = [10.0] * 10
    clear = judge.verdict([5.0, 6.0, 5.0, 6.0, 5.0, 6.0, 5.0, 6.0, 5.0, 6.0], base)
    assert clear.beats_baseline and clear.gain == pytest.approx(0.45)
    # A big mean gain that rests on one post is not clear (t < 2).
    lucky = judge.verdict([10.0] * 9 + [0.0], [10.0] * 9 + [100.0])
    assert not lucky.beats_baseline and lucky.gain > 0.5 and lucky.t < judge.MIN_T
    # Too few test posts: never believed.
    assert not judge.verdict([1.0] * 5, [9.0] * 5).beats_baseline
    assert judge.verdict([1.0], [2.0]).t == 0.0
    # Worse than the baseline.
    assert not judge.verdict([12.0] * 10, base).beats_baseline


def test_targets_clip_to_their_range() -> None:
    assert ENGAGEMENT_RATE.raw(1.7) == 1.0
    assert ENGAGEMENT_RATE.raw(-0.2) == 0.0
    assert IMPRESSIONS.raw(math.inf) == math.inf
    assert IMPRESSIONS.raw(-math.inf) == 0.0
    assert IMPRESSIONS.raw(1e6) == math.inf  # exp overflows: the upper bound


def test_fit_cache_refits_on_new_data_or_age_and_stays_bounded() -> None:
    cache = FitCache(size=2, ttl=timedelta(hours=1))
    holdout = HoldOut(0, 0, 0, 0, 0, 0, False)
    built: list[str] = []

    def build(name: str) -> Fit:
        built.append(name)
        return Fit(holdout, None, math.inf, [])

    now = TUESDAY_NOON
    cache.get("a", 1, now, lambda: build("a1"))
    cache.get("a", 1, now + timedelta(minutes=59), lambda: build("never"))
    cache.get("a", 2, now, lambda: build("a2"))  # new data
    cache.get("a", 2, now + timedelta(hours=2), lambda: build("a3"))  # too old
    cache.get("b", 1, now, lambda: build("b1"))
    cache.get("c", 1, now, lambda: build("c1"))  # drops the least recently used: a
    cache.get("b", 1, now, lambda: build("never"))
    cache.get("a", 2, now + timedelta(hours=2), lambda: build("a4"))
    assert built == ["a1", "a2", "a3", "b1", "c1", "a4"]
    assert len(cache) == 2 and cache.fits == 6
