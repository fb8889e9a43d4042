"""The leader lock in memory (ports/analytics.py `LeaderLock`), the twin of
adapters/db/analytics_repository.py's `AdvisoryLeaderLock`: one holder at a time among
the callers sharing the instance, as replicas share PostgreSQL's advisory lock.
tests/contract/test_leader_lock_contract.py holds both to one behaviour."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class MemoryLeaderLock:
    def __init__(self) -> None:
        # Not re-entrant: a second hold, even from the holder's thread, is refused, as
        # each AdvisoryLeaderLock.hold() asks on a connection of its own.
        self._lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[bool]:
        taken = self._lock.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                self._lock.release()
