"""The engagement model's evaluation with its real learner (scikit-learn's gradient
boosting, adapters/ml/gradient_boosting.py): a small synthetic set with known structure,
pure noise, the pooled fit, the emulator's posts read back through the X API, and the
evaluation table (bench/engagement_model.py). The features and the hold-out judgement
are checked in tests/unit/test_engagement_model.py."""

from __future__ import annotations

import math

import pytest
from bench.engagement_model import emulator_history, evaluate, format_rows, run, synthetic_history

from post_management.adapters.ml.gradient_boosting import GradientBoostingLearner
from post_management.domain.engagement_features import PastPost, history_rows
from post_management.services.analytics.engagement_fitting import IMPRESSIONS, fit_target


def test_structured_synthetic_set_beats_the_median_with_calibrated_intervals() -> None:
    results = evaluate(synthetic_history(300, seed=3, structured=True))
    for target, holdout in results.items():
        assert holdout.posts == 60, target
        assert holdout.beats_baseline, (target, holdout)
        assert holdout.mae < 0.9 * holdout.baseline_mae, (target, holdout)
        assert abs(holdout.coverage - 0.8) <= 0.12, (target, holdout)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pure_noise_claims_no_gain(seed: int) -> None:
    results = evaluate(synthetic_history(300, seed=seed, structured=False))
    for target, holdout in results.items():
        assert not holdout.beats_baseline, (target, holdout)


def test_pooled_fit_learns_deviations_from_each_accounts_level() -> None:
    # Two accounts with the same structure at levels 10x apart.
    small = synthetic_history(150, seed=5, account_id="small")
    big = [
        PastPost("big", p.timezone, p.draft, p.impressions * 10, p.engagement_rate)
        for p in synthetic_history(150, seed=6, account_id="big")
    ]
    pooled = sorted(small + big, key=lambda p: p.draft.at)
    levels = {
        name: sorted(math.log1p(p.impressions) for p in pooled if p.account_id == name)[75]
        for name in ("small", "big")
    }
    fit = fit_target(
        GradientBoostingLearner(),
        IMPRESSIONS,
        history_rows(pooled),
        [float(p.impressions) for p in pooled],
        [levels[p.account_id] for p in pooled],
    )
    assert fit.holdout.beats_baseline and fit.model is not None
    assert math.isfinite(fit.radius)


def test_emulator_data_has_no_structure_and_the_model_claims_none() -> None:
    # The emulator's counts are a hash of the post id: read back through the X API.
    history = emulator_history(120, seed=1)
    assert len(history) == 120
    for target, holdout in evaluate(history).items():
        assert not holdout.beats_baseline, (target, holdout)


def test_the_evaluation_table() -> None:
    rows = run(60, seed=1, emulator=False)
    assert [(r.data, r.target) for r in rows] == [
        ("structured", "impressions"),
        ("structured", "engagement_rate"),
        ("noise", "impressions"),
        ("noise", "engagement_rate"),
    ]
    table = format_rows(rows)
    assert table.count("\n") == 5 and "| structured | impressions | 12 |" in table
