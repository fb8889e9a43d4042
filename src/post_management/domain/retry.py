"""Retry policy as data: exponential backoff with full jitter, and a cap."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(minutes=30)
    max_attempts: int = 5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.factor < 1 or self.base <= timedelta(0):
            raise ValueError("max_attempts >= 1, factor >= 1 and base > 0 are required")

    def exhausted(self, attempts_made: int) -> bool:
        return attempts_made >= self.max_attempts

    def delay(self, attempts_made: int, rng: random.Random | None = None) -> timedelta:
        """Wait before attempt `attempts_made + 1`: jittered between half and all of
        base * factor^(n-1), capped. Half is kept so retries never bunch at zero."""
        ceiling = min(
            self.base.total_seconds() * self.factor ** max(attempts_made - 1, 0),
            self.cap.total_seconds(),
        )
        draw = (rng or random).uniform(0.5, 1.0)
        return timedelta(seconds=ceiling * draw)
