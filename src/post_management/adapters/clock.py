from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

# TEST ONLY: shifts this process's clock (never PostgreSQL's) to drill clock skew
# between workers. Unset in production; the service warns at start when it is set.
TEST_CLOCK_OFFSET_ENV = "PM_TEST_CLOCK_OFFSET_SECONDS"


def clock_offset_from_env() -> float:
    """The test-only offset from the environment, in seconds (0 when unset)."""
    raw = os.environ.get(TEST_CLOCK_OFFSET_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{TEST_CLOCK_OFFSET_ENV} must be a number of seconds") from None


class SystemClock:
    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = timedelta(seconds=offset_seconds)
        if offset_seconds:
            log.warning(
                "test-only clock offset in effect: this process's clock is %+.3f s off",
                offset_seconds,
            )

    @classmethod
    def from_env(cls) -> SystemClock:
        return cls(clock_offset_from_env())

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset
