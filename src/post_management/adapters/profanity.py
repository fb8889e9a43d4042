"""Offensive-language scores from alt-profanity-check, whose model (a linear SVM
over a fitted vectorizer, joblib files) ships inside its wheel: nothing is
downloaded at run time. Loading it takes seconds (scikit-learn), so it is loaded
once, in the background from start-up, and callers wait for it only if early."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

Predict = Callable[[list[str]], Any]
# Texts whose scores are kept: editing a post scores its text again (the
# findings of a post's text are kept with the post, so scheduling does not), and
# the model is most of those calls' cost.
CACHED_TEXTS = 4096
PACKAGE = "alt-profanity-check"


class ProfanityCheck:
    def __init__(
        self, predict: Predict | None = None, cached: int = CACHED_TEXTS, model: str = ""
    ) -> None:
        self._lock = threading.Lock()
        self._predict: Predict | None = predict
        self._scores: OrderedDict[str, float] = OrderedDict()
        self._cached = cached
        # The model ships inside the package's wheel and runs on scikit-learn: their
        # versions name it.
        self._model = model or " ".join(
            f"{name}=={metadata.version(name)}" for name in (PACKAGE, "scikit-learn")
        )

    @property
    def model(self) -> str:
        return self._model

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
        with self._lock:
            known = {text: self._scores[text] for text in texts if text in self._scores}
            for text in known:
                self._scores.move_to_end(text)
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:
            predict = self._predict or self._load()
            fresh = dict(zip(missing, (float(s) for s in predict(missing)), strict=True))
            known.update(fresh)
            with self._lock:
                self._scores.update(fresh)
                while len(self._scores) > self._cached:
                    self._scores.popitem(last=False)
        return [known[text] for text in texts]
