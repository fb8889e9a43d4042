"""Scoring texts for offensive language (adapters/profanity.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class OffensiveLanguage(Protocol):
    def scores(self, texts: Sequence[str]) -> list[float]:
        """The probability, in [0, 1], that each text is offensive."""
        ...
