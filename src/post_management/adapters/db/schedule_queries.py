"""ScheduleQueries over SQLAlchemy Core."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, FromClause, Select, bindparam, func, select, true

from post_management.adapters.db.schema import posts
from post_management.domain.post import PostState
from post_management.ports.schedule_queries import TakenTime

# States whose time is spoken for: queued, in flight, or already on X.
TAKEN_STATES = (PostState.SCHEDULED.value, PostState.PUBLISHING.value, PostState.PUBLISHED.value)


def _taken_in(table: FromClause, account_id: ColumnElement[Any]) -> Select[Any]:
    """The account's taken times since `:since` in `table` (the posts table or an
    alias of it): id, text and the time (`at`) of each post."""
    at = func.coalesce(table.c.published_at, table.c.due_at)
    return select(table.c.id, table.c.text, at.label("at")).where(
        table.c.account_id == account_id,
        table.c.state.in_(TAKEN_STATES),
        at.is_not(None),
        bindparam("since") <= at,
    )


_AT = func.coalesce(posts.c.published_at, posts.c.due_at)
# Built once: every schedule runs it.
_TAKEN = _taken_in(posts, bindparam("account_id"))
_TAKEN_ORDERED = _TAKEN.order_by(_AT, posts.c.id)
_TAKEN_BUT_ORDERED = _TAKEN.where(posts.c.id != bindparam("exclude_post_id")).order_by(
    _AT, posts.c.id
)
# The same times for a post's account, named by the post (read before the caller knows
# the account): a row for the account itself, then one per taken time, if any.
_OWNER = select(posts.c.account_id).where(posts.c.id == bindparam("post_id")).subquery("owner")
_OTHERS = posts.alias("others")
_TAKEN_OF = (
    _taken_in(_OTHERS, _OWNER.c.account_id)
    .where(_OTHERS.c.id != bindparam("post_id"))
    .lateral("taken")
)
TAKEN_BESIDE_POST = (
    select(_OWNER.c.account_id.label("owner"), _TAKEN_OF.c.id, _TAKEN_OF.c.text, _TAKEN_OF.c.at)
    .select_from(_OWNER.outerjoin(_TAKEN_OF, true()))
    .order_by(_TAKEN_OF.c.at, _TAKEN_OF.c.id)
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
