"""How closely the emulator copies X's timing and refusals (all off by default).

Tests switch these on through `PUT /_emulator/behaviour` or the server's start
options; `POST /_emulator/reset` returns to the start options.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return float(value)


def parse_lag(value: Any) -> tuple[float, float]:
    """A fixed lag (a number) or a [min, max] range, in seconds."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError("timeline_lag_seconds must be a number or [min, max]")
        low = _non_negative(value[0], "timeline_lag_seconds")
        high = _non_negative(value[1], "timeline_lag_seconds")
        if low > high:
            raise ValueError("timeline_lag_seconds: min must not exceed max")
        return low, high
    lag = _non_negative(value, "timeline_lag_seconds")
    return lag, lag


@dataclass(frozen=True)
class Behaviour:
    # A stored post shows up in GET /2/users/:id/tweets this long after it was stored
    # (a value drawn per post from the range, seeded by its id); lookups by id stay immediate.
    timeline_lag_seconds: tuple[float, float] = (0.0, 0.0)
    # Identical text from one user is refused only if the earlier post is this recent;
    # None refuses it for as long as the earlier post exists.
    duplicate_window_seconds: float | None = None

    def lag_for(self, post_id: str) -> float:
        low, high = self.timeline_lag_seconds
        if high <= low:
            return low
        digest = hashlib.sha256(f"lag:{post_id}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        return low + (high - low) * fraction

    def updated(self, changes: dict[str, Any]) -> Behaviour:
        result = self
        for name, value in changes.items():
            if name == "timeline_lag_seconds":
                result = replace(result, timeline_lag_seconds=parse_lag(value))
            elif name == "duplicate_window_seconds":
                window = None if value is None else _non_negative(value, name)
                result = replace(result, duplicate_window_seconds=window)
            else:
                raise ValueError(f"unknown behaviour setting: {name}")
        return result

    def to_json(self) -> dict[str, Any]:
        low, high = self.timeline_lag_seconds
        return {
            "timeline_lag_seconds": low if low == high else [low, high],
            "duplicate_window_seconds": self.duplicate_window_seconds,
        }
