"""Offensive-language scores from alt-profanity-check, whose model (a linear SVM
over a fitted vectorizer, joblib files) ships inside its wheel: nothing is
downloaded at run time. Loading it takes seconds (scikit-learn), so it is loaded
once, in the background from start-up, and callers wait for it only if early."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

Predict = Callable[[list[str]], Any]


class ProfanityCheck:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._predict: Predict | None = None

    def warm_up(self) -> threading.Thread:
        """Load the model on a daemon thread now, not on the first request."""
        thread = threading.Thread(target=self._load, name="profanity-model", daemon=True)
        thread.start()
        return thread

    def _load(self) -> Predict:
        with self._lock:
            if self._predict is None:
                from profanity_check import predict_prob

                self._predict = predict_prob
            return self._predict

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        predict = self._predict or self._load()
        return [float(score) for score in predict(list(texts))]
