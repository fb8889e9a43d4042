"""Scoring texts for offensive language (adapters/profanity.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class OffensiveLanguage(Protocol):
    @property
    def model(self) -> str:
        """Names the model that scores: findings kept from another model are
        screened again."""
        ...

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The probability, in [0, 1], that each text is offensive."""
        ...
