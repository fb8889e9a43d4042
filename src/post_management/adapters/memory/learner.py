"""The engagement learner's twin (ports/engagement_model.py): the median of the nearest
rows' targets, in pure Python, for tests that must not import scikit-learn.

It is no good model and need not be: it keeps the port's contract as
adapters/ml/gradient_boosting.py keeps it (tests/contract/test_learner_contract.py
holds both to it): one float per row, in order, nothing for no rows; the same answer
for the same data; a model of the targets' median, so a constant target is answered
as it is, rows that tell the targets apart are ranked as their targets are, and one
outlier does not drag the answer; a row too far out is answered as the nearest seen;
the inputs copied at fit; and ValueError for no rows to fit, targets not one per row,
ragged rows, a row of the wrong width or a value that is not finite.

A prediction is the median of the targets of the `neighbours` nearest fitted rows (all
rows tied with the last of them as well), distances measured with each feature scaled
by its range in the fitted rows; a feature that never varied does not count.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from post_management.ports.engagement_model import Regressor

NEIGHBOURS = 5  # as many as the real learner's smallest leaf


def _row(row: Sequence[float], width: int | None) -> list[float]:
    values = [float(v) for v in row]
    if width is not None and len(values) != width:
        raise ValueError(f"a row of {len(values)} features, expected {width}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("a row holds a value that is not finite")
    return values


class _Neighbours:
    def __init__(
        self, table: list[list[float]], targets: list[float], scales: list[float], k: int
    ) -> None:
        self._table = table
        self._targets = targets
        self._scales = scales
        self._k = k

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]:
        return [self._one(_row(row, len(self._scales))) for row in rows]

    def _one(self, row: list[float]) -> float:
        distances = [
            sum(((a - b) / s) ** 2 for a, b, s in zip(row, seen, self._scales, strict=True) if s)
            for seen in self._table
        ]
        kth = sorted(distances)[min(self._k, len(distances)) - 1]
        near = [t for d, t in zip(distances, self._targets, strict=True) if d <= kth]
        return float(statistics.median(near))


class NearestNeighboursLearner:
    def __init__(self, neighbours: int = NEIGHBOURS) -> None:
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        self._k = neighbours

    def fit(self, rows: Sequence[Sequence[float]], targets: Sequence[float]) -> Regressor:
        if not rows:
            raise ValueError("no rows to fit")
        width = len(rows[0])
        if width == 0:
            raise ValueError("rows without features")
        table = [_row(row, width) for row in rows]
        values = [float(t) for t in targets]
        if len(values) != len(table):
            raise ValueError(f"{len(values)} targets for {len(table)} rows")
        if not all(math.isfinite(v) for v in values):
            raise ValueError("a target that is not finite")
        scales = [max(column) - min(column) for column in zip(*table, strict=True)]
        return _Neighbours(table, values, scales, self._k)
