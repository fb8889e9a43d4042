"""Fixed-window request budgets, as X counts them.

A window opens at the first request after the previous one closed and
refills all at once at its reset time, which is what `x-rate-limit-reset`
(unix seconds) reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    limit: int
    remaining: int
    reset: int  # unix seconds


@dataclass
class _Window:
    started: float
    used: int = 0


class Windows:
    """Budgets for many keys (user or app) over one period."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def peek(self, key: str, limit: int, period: float, now: float) -> Budget:
        window = self._current(key, period, now)
        return Budget(limit, max(limit - window.used, 0), math.ceil(window.started + period))

    def take(self, key: str, limit: int, period: float, now: float) -> bool:
        """Spend one request; False (and nothing spent) when the budget is gone."""
        window = self._current(key, period, now)
        if window.used >= limit:
            return False
        window.used += 1
        return True

    def _current(self, key: str, period: float, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.started + period:
            window = _Window(started=now)
            self._windows[key] = window
        return window
