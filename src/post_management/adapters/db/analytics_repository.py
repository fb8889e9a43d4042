"""Snapshots, the collector's schedule and webhook event ids, in Core SQL."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.analytics_schema import (
    post_metrics,
    post_metrics_state,
    webhook_events,
)
from post_management.adapters.db.measured_rows import (
    LATEST_SNAPSHOT,
    snapshot_from_row,
)
from post_management.adapters.db.stored_credentials import unseal_or_none
from post_management.domain.account import Credentials
from post_management.domain.analytics import Snapshot
from post_management.ports.analytics import (
    DueRefresh,
)

log = logging.getLogger(__name__)


def snapshots_from_rows(rows: Iterable[Mapping[Any, Any]]) -> list[Snapshot]:
    return [taken for row in rows if (taken := snapshot_from_row(row)) is not None]


_DUE = text(
    """
    SELECT p.id, p.account_id, p.user_id, p.x_post_id, p.published_at,
           a.credentials_encrypted
    FROM posts p
    JOIN accounts a ON a.id = p.account_id
    LEFT JOIN post_metrics_state s ON s.post_id = p.id
    WHERE p.state = 'PUBLISHED' AND p.x_post_id <> '' AND p.published_at IS NOT NULL
      AND NOT coalesce(s.deleted_on_x, false)
      AND coalesce(s.next_collect_at, p.published_at) <= :now
    ORDER BY coalesce(s.next_collect_at, p.published_at), p.id
    LIMIT :limit
    """
)

ACCOUNT_POSTS = text(
    f"""
    SELECT p.id, p.account_id, p.state, p.due_at, p.published_at, l.*
    FROM posts p {LATEST_SNAPSHOT}
    WHERE p.account_id = :account_id AND p.state = 'PUBLISHED'
      AND (CAST(:since AS timestamptz) IS NULL OR p.published_at >= :since)
    ORDER BY p.published_at, p.id
    """  # noqa: S608 - only the constant lateral join is interpolated
)

USER_POSTS = text(
    f"""
    SELECT p.id, p.account_id, p.state, p.due_at, p.published_at, l.*
    FROM posts p {LATEST_SNAPSHOT}
    WHERE p.user_id = :user_id
      AND coalesce(p.published_at, p.due_at, p.created_at) >= :start
      AND coalesce(p.published_at, p.due_at, p.created_at) < :end
    ORDER BY coalesce(p.published_at, p.due_at, p.created_at), p.id
    """  # noqa: S608 - only the constant lateral join is interpolated
)


_M = post_metrics.c
# One post's snapshots, oldest first; its newest; whether X deleted it (shared with
# the asynchronous unit of work).
SERIES = (
    post_metrics.select().where(_M.post_id == bindparam("post_id")).order_by(_M.collected_at, _M.id)
)
LATEST = (
    post_metrics.select()
    .where(_M.post_id == bindparam("post_id"))
    .order_by(_M.collected_at.desc(), _M.id.desc())
    .limit(1)
)
DELETED_ON_X = select(post_metrics_state.c.deleted_on_x).where(
    post_metrics_state.c.post_id == bindparam("post_id")
)
# X deleted the post: no more refreshes (shared with the asynchronous unit of work).
MARK_DELETED = (
    pg_insert(post_metrics_state)
    .values(
        post_id=bindparam("post_id"),
        next_collect_at=bindparam("detected_at"),
        deleted_on_x=True,
        deleted_detected_at=bindparam("detected_at"),
    )
    .on_conflict_do_update(
        index_elements=[post_metrics_state.c.post_id],
        set_={"deleted_on_x": True, "deleted_detected_at": bindparam("detected_at")},
    )
)
# The webhook's reads and writes, which only the asynchronous unit of work makes.
PUBLISHED_BY_X_ID = text(
    "SELECT id, account_id, user_id, x_post_id FROM posts "
    "WHERE state = 'PUBLISHED' AND x_post_id = ANY(:ids)"
)
RECORD_WEBHOOK_EVENT = (
    pg_insert(webhook_events)
    .values(
        event_id=bindparam("event_id"),
        event_type=bindparam("event_type"),
        received_at=bindparam("received_at"),
    )
    .on_conflict_do_nothing(index_elements=[webhook_events.c.event_id])
    .returning(webhook_events.c.event_id)
)


def snapshot_row(post_id: UUID, snapshot: Snapshot, source: str) -> dict[str, Any]:
    """A post_metrics row: the private counts NULL when X withheld them."""
    counts = snapshot.counts
    return {
        "post_id": post_id,
        "collected_at": snapshot.collected_at,
        "source": source,
        "impressions": counts.impressions,
        "likes": counts.likes,
        "reposts": counts.reposts,
        "replies": counts.replies,
        "quotes": counts.quotes,
        "bookmarks": counts.bookmarks,
        "url_link_clicks": counts.url_link_clicks if snapshot.private_known else None,
        "user_profile_clicks": counts.user_profile_clicks if snapshot.private_known else None,
        "video_views": counts.video_views,
    }


class SqlAnalyticsRepository:
    def __init__(self, conn: Connection, box: FernetBox) -> None:
        self._conn = conn
        self._box = box

    def add_snapshot(self, post_id: UUID, snapshot: Snapshot, source: str) -> None:
        self._conn.execute(post_metrics.insert().values(snapshot_row(post_id, snapshot, source)))

    def mark_collected(self, post_id: UUID, collected_at: datetime, next_at: datetime) -> None:
        statement = pg_insert(post_metrics_state).values(
            post_id=post_id, last_collected_at=collected_at, next_collect_at=next_at
        )
        self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[post_metrics_state.c.post_id],
                set_={"last_collected_at": collected_at, "next_collect_at": next_at},
            )
        )

    def mark_deleted(self, post_id: UUID, detected_at: datetime) -> None:
        self._conn.execute(MARK_DELETED, {"post_id": post_id, "detected_at": detected_at})

    def due_for_refresh(self, now: datetime, limit: int) -> list[DueRefresh]:
        rows = self._conn.execute(_DUE, {"now": now, "limit": limit}).all()
        return [
            DueRefresh(
                post_id=row.id,
                account_id=row.account_id,
                user_id=row.user_id,
                x_post_id=row.x_post_id,
                published_at=row.published_at,
                credentials=self._credentials(row.credentials_encrypted),
            )
            for row in rows
        ]

    def _credentials(self, token: bytes | None) -> Credentials | None:
        # Unreadable tokens: the app's bearer token reads the public counts.
        return unseal_or_none(self._box, token)


# "xmp-metr" in ASCII: distinct from the outbox relay's key.
METRICS_LOCK_KEY = 0x786D_702D_6D65_7472


class AdvisoryLeaderLock:
    """A session advisory lock held for one block: one collector tick at a time
    across replicas. A replica that dies frees it with its connection."""

    def __init__(self, engine: Engine, key: int = METRICS_LOCK_KEY) -> None:
        self._engine = engine
        self._key = key

    @contextmanager
    def hold(self) -> Iterator[bool]:
        try:
            conn = self._engine.connect()
        except OperationalError:
            log.warning("metrics lock: database unavailable")
            yield False
            return
        try:
            taken = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar()
            )
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                    conn.commit()
        finally:
            conn.close()
