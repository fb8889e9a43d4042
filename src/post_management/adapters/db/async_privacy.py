"""The privacy RPCs' storage over psycopg 3 (ports/privacy.py `AsyncPrivacyStore`):
the audit trail and the metrics a user's export lists, read on a pooled connection in
autocommit, and the erasure, one transaction on a connection of the commands' pool
(the asynchronous unit of work's), committed whole or rolled back whole.

Its statements are SQLAlchemy text compiled once into psycopg's SQL text
(async_statements.py), as the asynchronous unit of work's are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import text

from post_management.adapters.db.async_reads import AsyncPool
from post_management.adapters.db.async_statements import Compiled
from post_management.adapters.db.post_writes import writes_posts
from post_management.adapters.db.privacy_repository import LOCK_KEY
from post_management.domain.errors import Unavailable
from post_management.domain.post import PostState
from post_management.domain.privacy import (
    AuditRecord,
    MetricsRecord,
    ensure_none_publishing,
    erasure_resource_id,
)
from post_management.domain.reasons import Reason
from post_management.ports.privacy import ErasureReport

Connection = psycopg.AsyncConnection[tuple[Any, ...]]
log = logging.getLogger(__name__)

_AUDIT_EVENTS = Compiled(
    text(
        "SELECT id, occurred_at, actor, action, resource_type, resource_id, "
        "user_id, request_id, before, after FROM audit_log "
        "WHERE user_id = :user_id AND (CAST(:before_id AS bigint) IS NULL "
        "OR id < :before_id) ORDER BY id DESC LIMIT :limit"
    )
)
_METRICS = Compiled(
    text(
        "SELECT m.post_id, m.collected_at, m.impressions, m.likes, m.reposts, "
        "m.replies, m.quotes, m.bookmarks FROM post_metrics m "
        "JOIN posts p ON p.id = m.post_id WHERE p.user_id = :user_id "
        "ORDER BY m.post_id, m.collected_at"
    )
)

# --- the erasure, in the order it runs ---------------------------------------------
# Exclusive: creates for the user take it shared (privacy_repository.py), so nothing
# committed after the erasure survives it.
_LOCK_USER = Compiled(text(f"SELECT pg_advisory_xact_lock({LOCK_KEY})"))
# A post being published may still land on X after its row is gone, and then nothing
# would queue its removal. Locking the rows keeps the dispatcher (SKIP LOCKED) from
# claiming one meanwhile.
_LOCK_POSTS = Compiled(text("SELECT state FROM posts WHERE user_id = :user_id FOR UPDATE"))
# Rows an earlier erasure of the same user wrote under a former pseudonym (an unkeyed
# one) move to the current one, so nothing keeps the linkable form.
_REKEY = [
    Compiled(text("DELETE FROM erased_users WHERE user_hash = ANY(:former)")),
    Compiled(text("UPDATE x_removals SET user_hash = :hash WHERE user_hash = ANY(:former)")),
    Compiled(
        text("UPDATE audit_log SET user_id = CAST(:hash AS text) WHERE user_id = ANY(:former)")
    ),
    Compiled(
        text(
            "UPDATE audit_log SET actor = split_part(actor, ':', 1) || ':' || "
            "CAST(:hash AS text) WHERE substr(actor, strpos(actor, ':') + 1) = ANY(:former)"
        )
    ),
]
_REKEY_ERASURE_ROW = Compiled(
    text(
        "UPDATE audit_log SET resource_id = :new WHERE resource_type = 'user' "
        "AND resource_id = :old"
    )
)
_TOMBSTONE = Compiled(
    text(
        "INSERT INTO erased_users (user_hash, erased_at) VALUES (:hash, :now) "
        "ON CONFLICT (user_hash) DO NOTHING"
    )
)
# Every segment of a thread; the tokens go with each row until it is done.
_QUEUE_REMOVALS = Compiled(
    text(
        """
        INSERT INTO x_removals
            (user_hash, x_post_id, credentials_encrypted, requested_at)
        SELECT :hash, segment, a.credentials_encrypted, :now
        FROM posts p JOIN accounts a ON a.id = p.account_id
        CROSS JOIN LATERAL unnest(
            CASE WHEN cardinality(p.segment_x_post_ids) > 0
                 THEN p.segment_x_post_ids ELSE ARRAY[p.x_post_id] END
        ) AS segment
        WHERE p.user_id = :user_id AND segment <> ''
          AND a.credentials_encrypted IS NOT NULL
        """
    )
)
# Scopes are "<Method>:<user id>" and actors "<role>:<subject>": compared exactly, as
# LIKE would read % and _ in a user id as wildcards.
_DELETE_KEYS = Compiled(
    text(
        "DELETE FROM idempotency_keys WHERE "
        "substr(scope, strpos(scope, ':') + 1) = CAST(:user_id AS text) "
        "OR resource_id IN (SELECT id FROM posts WHERE user_id = :user_id "
        "UNION ALL SELECT id FROM accounts WHERE user_id = :user_id "
        "UNION ALL SELECT id FROM media WHERE user_id = :user_id "
        "UNION ALL SELECT id FROM campaigns WHERE user_id = :user_id)"
    )
)
# Attempts, metrics and the collector's state go with their posts (cascade).
_DELETE_POSTS = Compiled(text("DELETE FROM posts WHERE user_id = :user_id"))
_DELETE_MEDIA = Compiled(text("DELETE FROM media WHERE user_id = :user_id"))
_DELETE_ACCOUNTS = Compiled(text("DELETE FROM accounts WHERE user_id = :user_id"))
_DELETE_CAMPAIGNS = Compiled(text("DELETE FROM campaigns WHERE user_id = :user_id"))
# What X cost stays countable, without the person.
_PSEUDONYMISE_SPEND = Compiled(text("UPDATE x_spend SET user_id = :hash WHERE user_id = :user_id"))
# The trail stays (who did what, when) without the person or the content.
_PSEUDONYMISE_AUDIT = Compiled(
    text(
        "UPDATE audit_log SET user_id = CAST(:hash AS text), before = NULL, "
        "after = NULL, actor = CASE "
        "WHEN substr(actor, strpos(actor, ':') + 1) = CAST(:user_id AS text) "
        "THEN split_part(actor, ':', 1) || ':' || CAST(:hash AS text) ELSE actor END "
        "WHERE user_id = CAST(:user_id AS text)"
    )
)
_RECORD_ERASURE = Compiled(
    text(
        "INSERT INTO audit_log (occurred_at, actor, action, resource_type, "
        "resource_id, user_id, request_id, before, after) VALUES (:now, :actor, "
        "'user.erase', 'user', :resource_id, :hash, '', NULL, CAST(:after AS jsonb))"
    )
)


def _json(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded = json.loads(value) if isinstance(value, str) else value
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def _audit_record(row: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        occurred_at=row["occurred_at"],
        actor=row["actor"],
        action=row["action"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        user_id=row["user_id"],
        request_id=row["request_id"],
        before=_json(row["before"]),
        after=_json(row["after"]),
    )


class _Erasure:
    """One erasure's statements on its transaction's connection."""

    def __init__(self, connection: Connection, params: dict[str, Any]) -> None:
        self._conn = connection
        self._params = params
        # A post row changed (adapters/db/post_writes.py's rule): caches must hear of it.
        self.wrote_posts = False

    async def run(self, statement: Compiled, **values: Any) -> int:
        params = statement.params({**self._params, **values})
        changed = (await self._conn.execute(statement.sql, params)).rowcount
        if changed != 0 and writes_posts(statement.sql):
            self.wrote_posts = True
        return changed

    async def column(self, statement: Compiled) -> list[Any]:
        cursor = await self._conn.execute(statement.sql, statement.params(self._params))
        return [row[0] for row in await cursor.fetchall()]


async def _erase(
    db: _Erasure,
    pseudonym: str,
    actor: str,
    delete_from_x: bool,
    now: datetime,
    former: list[str],
) -> ErasureReport:
    await db.run(_LOCK_USER)
    ensure_none_publishing(PostState(state) for state in await db.column(_LOCK_POSTS))
    if former:
        for statement in _REKEY:
            await db.run(statement, former=former)
        for old in former:
            await db.run(
                _REKEY_ERASURE_ROW,
                new=erasure_resource_id(pseudonym),
                old=erasure_resource_id(old),
            )
    await db.run(_TOMBSTONE)
    queued = await db.run(_QUEUE_REMOVALS) if delete_from_x else 0
    await db.run(_DELETE_KEYS)
    posts = await db.run(_DELETE_POSTS)
    media = await db.run(_DELETE_MEDIA)
    accounts = await db.run(_DELETE_ACCOUNTS)
    await db.run(_DELETE_CAMPAIGNS)
    await db.run(_PSEUDONYMISE_SPEND)
    audited = await db.run(_PSEUDONYMISE_AUDIT)
    report = ErasureReport(posts, accounts, media, audited, queued, now)
    await db.run(_RECORD_ERASURE, actor=actor, after=json.dumps(report.document()))
    return report


class AsyncSqlPrivacyStore:
    """On the commands' pool (the asynchronous unit of work's): the erasure waits on
    row and advisory locks as commands do, never holding up the post reads.
    `on_post_writes` is awaited after an erasure's commit that deleted posts, as the
    asynchronous unit of work awaits it (the post cache's new generation), so GetPost
    answers no erased post from the cache."""

    def __init__(
        self, database: AsyncPool, on_post_writes: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        self._database = database
        self._on_post_writes = on_post_writes

    async def audit_events(
        self, user_id: str, before_id: int | None, limit: int
    ) -> list[AuditRecord]:
        values = {"user_id": user_id, "before_id": before_id, "limit": limit}
        return [_audit_record(row) for row in await self._rows(_AUDIT_EVENTS, values)]

    async def metrics(self, user_id: str) -> list[MetricsRecord]:
        return [MetricsRecord(**row) for row in await self._rows(_METRICS, {"user_id": user_id})]

    async def _rows(self, statement: Compiled, values: dict[str, Any]) -> list[dict[str, Any]]:
        """The statement's rows by column name, read on a pooled connection."""
        params = statement.params(values)

        async def read(connection: Connection) -> list[dict[str, Any]]:
            cursor = connection.cursor(row_factory=dict_row)
            await cursor.execute(statement.sql, params, prepare=True)
            return await cursor.fetchall()

        return await self._database.read(read)

    async def erase(
        self,
        user_id: str,
        pseudonym: str,
        actor: str,
        delete_from_x: bool,
        now: datetime,
        replaces: Sequence[str] = (),
    ) -> ErasureReport:
        params: dict[str, Any] = {
            "user_id": user_id,
            "hash": pseudonym,
            "now": now,
            "resource_id": erasure_resource_id(pseudonym),
        }
        connection = await self._database.begin()
        erasure = _Erasure(connection, params)
        try:
            report = await _erase(erasure, pseudonym, actor, delete_from_x, now, list(replaces))
            await connection.execute("COMMIT")
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise Unavailable(
                "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
            ) from exc
        finally:
            try:
                # Only the COMMIT ends the transaction begun: idle is committed, even
                # when a cancellation landed after the COMMIT reached the database.
                committed = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                if not committed:
                    await connection.execute("ROLLBACK")  # nothing of it is kept
            except psycopg.Error:
                pass  # a broken connection: the pool drops it
            finally:
                await self._database.release(connection)
                if committed and erasure.wrote_posts:
                    await self._notify_post_writes()
        return report

    async def _notify_post_writes(self) -> None:
        if self._on_post_writes is None:
            return
        try:
            await self._on_post_writes()
        except Exception:  # the erasure is committed; a cache problem must not undo it
            log.exception("post write callback failed")
