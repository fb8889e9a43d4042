"""Fitting one target of the engagement model, judging it, and keeping fits.

One target (impressions, or engagement rate) is fitted on a history in time order
and judged on a hold-out (domain/engagement_evaluation.py). Only a fit that beats
the median keeps a serving model; the judgement is kept either way so the answer can
say how the model did.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from post_management.domain import engagement_evaluation as judge
from post_management.domain.analytics import median
from post_management.ports.engagement_model import Learner, Regressor


@dataclass(frozen=True)
class Target:
    """A predicted figure: fitted in `forward` space, answered in raw units within
    [low, high]."""

    name: str
    forward: Callable[[float], float]
    inverse: Callable[[float], float]
    low: float
    high: float

    def raw(self, value: float) -> float:
        if math.isinf(value):
            return self.high if value > 0 else self.low
        try:
            answer = self.inverse(value)
        except OverflowError:
            answer = self.high
        return min(max(answer, self.low), self.high)


# Impressions span orders of magnitude: fitted as log(1 + x), so the interval is
# multiplicative. The rate is fitted as it is.
IMPRESSIONS = Target("impressions", math.log1p, math.expm1, 0.0, math.inf)
ENGAGEMENT_RATE = Target("engagement_rate", lambda x: x, lambda x: x, 0.0, 1.0)
TARGETS = (IMPRESSIONS, ENGAGEMENT_RATE)


@dataclass(frozen=True)
class HoldOut:
    """How the model did on the newest fifth of the history, never fitted on."""

    posts: int
    mae: float
    baseline_mae: float
    coverage: float  # share of test posts inside the model's 80 % interval
    baseline_coverage: float  # the same for the median's 10-90 % range
    gain: float  # 1 - mae / baseline_mae
    beats_baseline: bool


@dataclass(frozen=True)
class Fit:
    holdout: HoldOut
    model: Regressor | None  # None: the model did not beat the median
    radius: float  # conformal radius in forward space
    reference: list[float]  # the history's median row: "a typical post"


def fit_target(
    learner: Learner,
    target: Target,
    rows: Sequence[Sequence[float]],
    values: Sequence[float],
    levels: Sequence[float] | None = None,
) -> Fit:
    """`values` in raw units, oldest first. With `levels` (forward space, one per row)
    the model learns the deviation from each row's level, and the baseline is the
    level itself (the pooled model); without, the baseline is the median."""
    n = len(rows)
    cut = judge.split(n)
    offsets = list(levels) if levels is not None else [0.0] * n
    y = [target.forward(v) - o for v, o in zip(values, offsets, strict=True)]
    first = learner.fit(rows[: cut.fit_end], y[: cut.fit_end])
    calibration = first.predict(rows[cut.fit_end : cut.calibration_end])
    radius = judge.conformal_quantile(
        [a - p for a, p in zip(y[cut.fit_end : cut.calibration_end], calibration, strict=True)]
    )
    predicted = first.predict(rows[cut.calibration_end :])
    actual = list(values[cut.calibration_end :])
    test_offsets = offsets[cut.calibration_end :]
    point = [target.raw(o + p) for o, p in zip(test_offsets, predicted, strict=True)]
    lower = [target.raw(o + p - radius) for o, p in zip(test_offsets, predicted, strict=True)]
    upper = [target.raw(o + p + radius) for o, p in zip(test_offsets, predicted, strict=True)]
    past = list(values[: cut.calibration_end])
    if levels is None:
        base = [median(past)] * len(actual)
        base_low = [judge.empirical_quantile(past, 0.1)] * len(actual)
        base_high = [judge.empirical_quantile(past, 0.9)] * len(actual)
    else:
        base = [target.raw(o) for o in test_offsets]
        spread = [target.forward(v) - o for v, o in zip(past, offsets, strict=False)]
        lo, hi = judge.empirical_quantile(spread, 0.1), judge.empirical_quantile(spread, 0.9)
        base_low = [target.raw(o + lo) for o in test_offsets]
        base_high = [target.raw(o + hi) for o in test_offsets]
    model_errors = [a - p for a, p in zip(actual, point, strict=True)]
    base_errors = [a - b for a, b in zip(actual, base, strict=True)]
    fitted = [target.forward(a) for a in actual]
    scaled = (
        [f - target.forward(p) for f, p in zip(fitted, point, strict=True)],
        [f - target.forward(b) for f, b in zip(fitted, base, strict=True)],
    )
    verdict = judge.verdict(model_errors, base_errors, scaled)
    holdout = HoldOut(
        posts=len(actual),
        mae=judge.mae(model_errors),
        baseline_mae=judge.mae(base_errors),
        coverage=judge.coverage(actual, lower, upper),
        baseline_coverage=judge.coverage(actual, base_low, base_high),
        gain=verdict.gain,
        beats_baseline=verdict.beats_baseline,
    )
    reference = [median([row[i] for row in rows]) for i in range(len(rows[0]))] if rows else []
    if not verdict.beats_baseline:
        return Fit(holdout, None, math.inf, reference)
    # Served: the same procedure one step later, fitted up to 80 % and calibrated on
    # the newest fifth, so the interval keeps its split-conformal meaning.
    serving = learner.fit(rows[: cut.calibration_end], y[: cut.calibration_end])
    residuals = serving.predict(rows[cut.calibration_end :])
    served_radius = judge.conformal_quantile(
        [a - p for a, p in zip(y[cut.calibration_end :], residuals, strict=True)]
    )
    return Fit(holdout, serving, served_radius, reference)


class FitCache:
    """Fits per (scope, target), least recently used dropped beyond `size`; an entry is
    refitted when its history's fingerprint changes or it is older than `ttl`."""

    def __init__(self, size: int = 256, ttl: timedelta = timedelta(hours=1)) -> None:
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[Hashable, tuple[Hashable, datetime, Fit]] = OrderedDict()
        self._lock = threading.Lock()
        self.fits = 0  # fits computed, for tests and logs

    def get(
        self, key: Hashable, fingerprint: Hashable, now: datetime, build: Callable[[], Fit]
    ) -> Fit:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == fingerprint and now - entry[1] < self._ttl:
                self._entries.move_to_end(key)
                return entry[2]
        fit = build()  # outside the lock: fits of other accounts go on meanwhile
        with self._lock:
            self.fits += 1
            self._entries[key] = (fingerprint, now, fit)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return fit

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
