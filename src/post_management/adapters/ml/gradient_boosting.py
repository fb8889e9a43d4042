"""Gradient-boosted trees for the median (absolute-error loss): small and quick.

100 shallow trees on at most a few hundred posts fit in well under a second on
one core; the tree count, depth and leaf size keep it from memorising a short
history.

scikit-learn and NumPy are imported by the first fit, not with this module: the
commands that never fit (`token`, `migrate`) start seconds sooner without them.
`serve` loads scikit-learn at start-up anyway, on the background thread that loads
the offensive-language model (adapters/profanity.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from post_management.ports.engagement_model import Regressor

if TYPE_CHECKING:
    from sklearn.ensemble import GradientBoostingRegressor


class _Fitted:
    def __init__(self, model: GradientBoostingRegressor) -> None:
        self._model = model

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]:
        if not rows:
            return []
        import numpy as np

        values = self._model.predict(np.asarray(rows, dtype=float))
        return [float(v) for v in values]


class GradientBoostingLearner:
    def __init__(
        self,
        *,
        trees: int = 100,
        depth: int = 3,
        learning_rate: float = 0.05,
        min_leaf: int = 5,
        seed: int = 7,
    ) -> None:
        self._params = {
            "loss": "absolute_error",
            "n_estimators": trees,
            "max_depth": depth,
            "learning_rate": learning_rate,
            "min_samples_leaf": min_leaf,
            "subsample": 0.8,
            "random_state": seed,
        }

    def fit(self, rows: Sequence[Sequence[float]], targets: Sequence[float]) -> Regressor:
        import numpy as np
        from sklearn.ensemble import GradientBoostingRegressor

        model = GradientBoostingRegressor(**self._params)
        model.fit(np.asarray(rows, dtype=float), np.asarray(targets, dtype=float))
        return _Fitted(model)
