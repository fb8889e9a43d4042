"""ScheduleQueries over SQLAlchemy Core."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, bindparam, func, select

from post_management.adapters.db.schema import posts
from post_management.domain.post import PostState
from post_management.ports.schedule_queries import TakenTime

# States whose time is spoken for: queued, in flight, or already on X.
TAKEN_STATES = (PostState.SCHEDULED.value, PostState.PUBLISHING.value, PostState.PUBLISHED.value)
_AT = func.coalesce(posts.c.published_at, posts.c.due_at)
# Built once: every schedule runs it.
_TAKEN = select(posts.c.id, posts.c.text, _AT.label("at")).where(
    posts.c.account_id == bindparam("account_id"),
    posts.c.state.in_(TAKEN_STATES),
    _AT.is_not(None),
    bindparam("since") <= _AT,
)
_TAKEN_ORDERED = _TAKEN.order_by(_AT, posts.c.id)
_TAKEN_BUT_ORDERED = _TAKEN.where(posts.c.id != bindparam("exclude_post_id")).order_by(
    _AT, posts.c.id
)


class SqlScheduleQueries:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        params: dict[str, object] = {"account_id": account_id, "since": since}
        query = _TAKEN_ORDERED
        if exclude_post_id is not None:
            query = _TAKEN_BUT_ORDERED
            params["exclude_post_id"] = exclude_post_id
        return [TakenTime(row.id, row.text, row.at) for row in self._conn.execute(query, params)]
