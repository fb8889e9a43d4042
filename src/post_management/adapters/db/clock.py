"""The database's clock: the one clock of the publishing engine.

Leases, due times and reconcile times are stored and compared with NOW_SQL inside
the queue's statements, so every worker agrees on "now" whatever its own clock says.
DatabaseClock reads the same clock for the few places that need a value (due times
stamped by a use case, the posting budgets' windows).

TEST ONLY: the session setting TEST_OFFSET_SETTING moves this clock for one
connection, so integration tests can let hours pass; nothing in the service sets it,
and unset it adds nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text

TEST_OFFSET_SETTING = "pm.test_clock_offset"

# now() is the transaction's start: one instant for everything a statement decides.
NOW_SQL = (
    "(now() + COALESCE(NULLIF(current_setting('pm.test_clock_offset', true), '')"
    "::interval, interval '0'))"
)


class DatabaseClock:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def now(self) -> datetime:
        with self._engine.connect() as connection:
            value: datetime = connection.execute(
                text(f"SELECT {NOW_SQL.replace('now()', 'clock_timestamp()')}")
            ).scalar_one()
        return value
