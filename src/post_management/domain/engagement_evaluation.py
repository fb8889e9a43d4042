"""How the engagement model is judged: a time-ordered hold-out against the median.

The history (oldest first) is cut at 60 % and 80 %:

    fit   [0, 60 %)   calibrate [60 %, 80 %)   test [80 %, 100 %)

The model fitted on the first part gets its 80 % interval from the calibration
part (split conformal: the ceil(0.8 (m + 1))-th smallest absolute residual of m),
and is measured on the test part against the baseline, the median of everything
before the test part. It counts as better only when its mean absolute error is at
least MIN_GAIN lower and the paired differences (of errors in the fitted scale:
log(1 + impressions), the rate itself) are clearly positive (t >= MIN_T over at least
MIN_TEST posts): on data without structure it must not claim a gain.
Pure functions; docs/analytics.md has the figures.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

FIT_SHARE, CALIBRATION_SHARE = 0.6, 0.2
COVERAGE = 0.8  # the interval's nominal coverage
MIN_GAIN = 0.05  # relative MAE improvement the model must show
MIN_T = 2.0  # t statistic of the paired error differences
MIN_TEST = 8  # test posts needed before any gain is believed


@dataclass(frozen=True)
class Split:
    fit_end: int
    calibration_end: int


def split(n: int) -> Split:
    return Split(int(n * FIT_SHARE), int(n * (FIT_SHARE + CALIBRATION_SHARE)))


def conformal_quantile(residuals: Sequence[float], coverage: float = COVERAGE) -> float:
    """The split-conformal radius: the ceil(coverage (m + 1))-th smallest |residual|;
    infinite when there are too few residuals for that rank."""
    ordered = sorted(abs(r) for r in residuals)
    rank = math.ceil(coverage * (len(ordered) + 1))
    if rank > len(ordered) or rank < 1:
        return math.inf
    return ordered[rank - 1]


def empirical_quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (the 'inclusive' method); 0 without values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mae(errors: Sequence[float]) -> float:
    return statistics.fmean(abs(e) for e in errors) if errors else 0.0


def coverage(actual: Sequence[float], lower: Sequence[float], upper: Sequence[float]) -> float:
    """Share of actual values inside [lower, upper]."""
    if not actual:
        return 0.0
    inside = sum(1 for y, lo, hi in zip(actual, lower, upper, strict=True) if lo <= y <= hi)
    return inside / len(actual)


@dataclass(frozen=True)
class Verdict:
    gain: float  # 1 - model MAE / baseline MAE
    t: float  # t statistic of baseline error - model error
    beats_baseline: bool


def verdict(
    model_errors: Sequence[float],
    baseline_errors: Sequence[float],
    scaled: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Verdict:
    """Whether the model's hold-out errors are clearly below the baseline's. The gain
    is measured on the errors in the answer's units; the t statistic on `scaled`
    errors (model's, baseline's) when given: for impressions, errors of log(1 + x),
    so one viral post does not decide it."""
    n = len(model_errors)
    model_mae, base_mae = mae(model_errors), mae(baseline_errors)
    gain = 1 - model_mae / base_mae if base_mae > 0 else 0.0
    paired_model, paired_base = scaled or (model_errors, baseline_errors)
    diffs = [abs(b) - abs(m) for m, b in zip(paired_model, paired_base, strict=True)]
    if n < 2:
        return Verdict(gain, 0.0, False)
    spread = statistics.stdev(diffs)
    mean_diff = statistics.fmean(diffs)
    flat = math.inf if mean_diff > 0 else 0.0
    t = flat if spread == 0 else mean_diff / (spread / math.sqrt(n))
    return Verdict(gain, t, n >= MIN_TEST and gain >= MIN_GAIN and t >= MIN_T)
