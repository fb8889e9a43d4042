"""Whether this replica reaches X: the last failed request (no answer, or a 5xx)
and whether a later one got through. Read by GET /health?detail=true."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class XReachability:
    reachable: bool
    last_error: str
    last_error_at: datetime | None


class _Tracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reachable = True
        self._last_error = ""
        self._last_error_at: datetime | None = None

    def answered(self, endpoint: str, status: int) -> None:
        if status >= 500:
            self.failed(endpoint, f"HTTP {status}")
            return
        with self._lock:
            self._reachable = True

    def failed(self, endpoint: str, error: str) -> None:
        with self._lock:
            self._reachable = False
            self._last_error = f"{endpoint}: {error}"
            self._last_error_at = datetime.now(UTC)

    def snapshot(self) -> XReachability:
        with self._lock:
            return XReachability(self._reachable, self._last_error, self._last_error_at)


X_REACHABILITY = _Tracker()
