"""Notice every committed write to the posts table, whoever made it.

Posts are written by the post, scheduling and publishing paths, by raw SQL as
well as by the repository. Watching the statements on the engine catches all of
them, including paths added later, without each having to remember the cache.
The callback runs after the commit (when the connection next begins a
transaction or goes back to the pool), so a reader that refills a cache after
it sees the committed row, never the one before it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, event

log = logging.getLogger(__name__)

_WRITE = re.compile(
    r"\b(UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|INSERT\s+INTO)\s+(?:ONLY\s+)?"
    r"(?:\w+\.)?\"?posts\"?(?![\w\"])",
    re.IGNORECASE,
)
_PENDING = "pm_posts_written"
_COMMITTED = "pm_posts_committed"


# Statements are mostly built once, so their texts repeat: each is searched once.
@lru_cache(maxsize=1024)
def writes_posts(statement: str) -> bool:
    """An UPDATE, DELETE, TRUNCATE or upsert of `posts`. A plain INSERT makes a
    new post, which nothing can have cached yet."""
    match = _WRITE.search(statement)
    if match is None:
        return False
    if match.group(1).upper().startswith("INSERT"):
        return "DO UPDATE" in statement.upper()
    return True


def on_committed_post_writes(engine: Engine, callback: Callable[[], object]) -> None:
    """Call `callback` once after each commit that changed at least one post row."""

    def notify() -> None:
        try:
            callback()
        except Exception:  # the write is committed; a cache problem must not undo the call
            log.exception("post write callback failed")

    def after_cursor_execute(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        # rowcount is -1 when the driver does not know: count that as a write.
        if writes_posts(statement) and cursor.rowcount != 0:
            conn.info[_PENDING] = True

    def commit(conn: Connection) -> None:
        if conn.info.pop(_PENDING, False):
            conn.info[_COMMITTED] = True

    def rollback(conn: Connection) -> None:
        conn.info.pop(_PENDING, None)

    def begin(conn: Connection) -> None:
        # A new transaction on the same connection: the previous commit is done.
        if conn.info.pop(_COMMITTED, False):
            notify()

    def checkin(dbapi_connection: Any, record: Any) -> None:
        # Pending here means autocommit or an unfinished transaction: notify
        # anyway, since an extra invalidation is only a lost cache hit.
        committed = record.info.pop(_COMMITTED, False)
        pending = record.info.pop(_PENDING, False)
        if committed or pending:
            notify()

    event.listen(engine, "after_cursor_execute", after_cursor_execute)
    event.listen(engine, "commit", commit)
    event.listen(engine, "rollback", rollback)
    event.listen(engine, "begin", begin)
    event.listen(engine, "checkin", checkin)
