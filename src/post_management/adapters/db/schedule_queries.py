"""ScheduleQueries over SQLAlchemy Core."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, or_, select

from post_management.adapters.db.post_repository import _from_row
from post_management.adapters.db.schema import posts
from post_management.domain.post import Post, PostState
from post_management.ports.schedule_queries import DueCursor, ScheduledQuery, TakenTime

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

    def list_scheduled(
        self, query: ScheduledQuery, after: DueCursor | None, offset: int, limit: int
    ) -> list[Post]:
        statement = select(posts).where(*_conditions(query))
        if after is not None:
            statement = statement.where(
                or_(
                    posts.c.due_at > after.due_at,
                    and_(posts.c.due_at == after.due_at, posts.c.id > after.id),
                )
            )
        statement = statement.order_by(posts.c.due_at, posts.c.id).offset(offset).limit(limit)
        return [_from_row(row) for row in self._conn.execute(statement).mappings()]

    def count_scheduled(self, query: ScheduledQuery) -> int:
        statement = select(func.count()).select_from(posts).where(*_conditions(query))
        return int(self._conn.execute(statement).scalar_one())


def _conditions(query: ScheduledQuery) -> list[ColumnElement[bool]]:
    found = [
        posts.c.user_id == query.user_id,
        posts.c.state == query.state.value,
        posts.c.due_at.is_not(None),
    ]
    if query.account_id is not None:
        found.append(posts.c.account_id == query.account_id)
    if query.priority is not None:
        found.append(posts.c.priority == int(query.priority))
    if query.start is not None:
        found.append(posts.c.due_at >= query.start)
    if query.end is not None:
        found.append(posts.c.due_at < query.end)
    return found
