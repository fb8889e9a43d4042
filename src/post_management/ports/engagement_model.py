"""The learner behind engagement prediction: fit on feature rows, predict numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Regressor(Protocol):
    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]: ...


class Learner(Protocol):
    def fit(self, rows: Sequence[Sequence[float]], targets: Sequence[float]) -> Regressor:
        """A model of the targets' median given the rows (bounded in time and size)."""
        ...
