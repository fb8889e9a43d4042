"""A clock a test moves by hand (ports.support.Clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from post_management.domain._clock import require_aware


class SettableClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = require_aware(start, "start") if start else datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = require_aware(when, "when")

    def advance(self, by: timedelta) -> datetime:
        self._now += by
        return self._now
