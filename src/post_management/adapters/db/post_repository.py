"""PostRepository over SQLAlchemy Core (hot paths avoid the ORM's unit of work)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from post_management.adapters.db.schema import posts
from post_management.domain.content_rules import Finding, Rule, Screening
from post_management.domain.events import EventLog
from post_management.domain.post import UNDECIDED_STATES, Post, PostState, Priority
from post_management.ports.repositories import Cursor, PostFilter

# Built once: building a statement per call was a good part of a schedule's CPU.
_GET = select(posts).where(posts.c.id == bindparam("post_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_DELETE = delete(posts).where(
    posts.c.id == bindparam("post_id"), posts.c.version == bindparam("version")
)
# SET takes the columns the parameters name.
_SAVE = update(posts).where(
    posts.c.id == bindparam("where_id"), posts.c.version == bindparam("where_version")
)
_COUNT_ACTIVE = select(func.count()).where(
    posts.c.account_id == bindparam("account_id"),
    posts.c.state.in_(sorted(state.value for state in UNDECIDED_STATES)),
)


def screening_json(screening: Screening | None) -> dict[str, Any] | None:
    """posts.content_screening: {"key": ..., "findings": [{"rule", "excerpt", "score"}]}."""
    if screening is None:
        return None
    return {
        "key": screening.key,
        "findings": [
            {"rule": f.rule.value, "excerpt": f.excerpt, "score": f.score}
            for f in screening.findings
        ],
    }


def screening_from_json(data: Any) -> Screening | None:
    """None for NULL and for what this build cannot read (a rule it does not know):
    such a post is screened again when it is next checked."""
    if data is None:
        return None
    try:
        findings = tuple(
            Finding(Rule(f["rule"]), str(f["excerpt"]), float(f["score"])) for f in data["findings"]
        )
        return Screening(str(data["key"]), findings)
    except (KeyError, TypeError, ValueError):
        return None


def _to_row(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "user_id": post.user_id,
        "account_id": post.account_id,
        "text": post.text,
        "media_ids": list(post.media_ids),
        "reply_to_x_post_id": post.reply_to_x_post_id,
        "attachment_ids": list(post.attachment_ids),
        "thread": list(post.thread),
        "segment_x_post_ids": list(post.segment_x_post_ids),
        "state": post.state.value,
        "priority": int(post.priority),
        "due_at": post.scheduled_for,
        "timezone": post.timezone,
        "published_at": post.published_at,
        "x_post_id": post.x_post_id,
        "attempt_count": post.attempt_count,
        "last_error": post.last_error,
        "version": post.version,
        "campaign_id": post.campaign_id,
        "content_screening": screening_json(post.screening),
        "created_at": post.created_at,
        "updated_at": post.updated_at,
    }


def _from_row(row: Mapping[Any, Any]) -> Post:
    return Post(
        id=row["id"],
        user_id=row["user_id"],
        account_id=row["account_id"],
        text=row["text"],
        media_ids=list(row["media_ids"]),
        reply_to_x_post_id=row["reply_to_x_post_id"],
        attachment_ids=list(row["attachment_ids"]),
        thread=list(row["thread"]),
        segment_x_post_ids=list(row["segment_x_post_ids"]),
        state=PostState(row["state"]),
        priority=Priority(row["priority"]),
        scheduled_for=row["due_at"],
        timezone=row["timezone"],
        published_at=row["published_at"],
        x_post_id=row["x_post_id"],
        attempt_count=row["attempt_count"],
        last_error=row["last_error"],
        version=row["version"],
        campaign_id=row["campaign_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        screening=screening_from_json(row["content_screening"]),
    )


def list_statement(where: PostFilter, after: Cursor | None, limit: int) -> Select[Any]:
    """ListPosts' page: the filter's posts after the cursor, in creation order."""
    query = select(posts)
    if where.user_id is not None:
        query = query.where(posts.c.user_id == where.user_id)
    if where.account_id is not None:
        query = query.where(posts.c.account_id == where.account_id)
    if where.state is not None:
        query = query.where(posts.c.state == where.state.value)
    if where.states is not None:
        query = query.where(posts.c.state.in_([state.value for state in where.states]))
    if where.error_contains:
        pattern = where.error_contains.replace("\\", "\\\\").replace("%", "\\%")
        pattern = pattern.replace("_", "\\_")
        query = query.where(posts.c.last_error.ilike(f"%{pattern}%", escape="\\"))
    if after is not None:
        query = query.where(
            or_(
                posts.c.created_at > after.created_at,
                and_(posts.c.created_at == after.created_at, posts.c.id > after.id),
            )
        )
    return query.order_by(posts.c.created_at, posts.c.id).limit(limit)


def save_params(post: Post, expected_version: int) -> dict[str, Any]:
    """The parameters of _SAVE: every column but the id and the creation time, the
    next version, and the row to change (only at `expected_version`)."""
    row = _to_row(post)
    del row["id"], row["created_at"]
    row["version"] = expected_version + 1
    row["where_id"], row["where_version"] = post.id, expected_version
    return row


class SqlPostRepository:
    def __init__(self, connection: Connection, outbox: EventLog) -> None:
        self._conn = connection
        # The unit of work's: a stored post's recorded events go there.
        self._outbox = outbox

    def add(self, post: Post) -> None:
        self._conn.execute(insert(posts).values(**_to_row(post)))
        self._outbox.add(*post.pull_events())

    def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None:
        query = _GET_FOR_UPDATE if for_update else _GET
        row = self._conn.execute(query, {"post_id": post_id}).mappings().first()
        return _from_row(row) if row else None

    def list(self, where: PostFilter, after: Cursor | None, limit: int) -> list[Post]:
        query = list_statement(where, after, limit)
        return [_from_row(row) for row in self._conn.execute(query).mappings()]

    def save(self, post: Post, expected_version: int) -> bool:
        result = self._conn.execute(_SAVE, save_params(post, expected_version))
        if result.rowcount == 1:
            post.version = expected_version + 1
            self._outbox.add(*post.pull_events())
            return True
        return False

    def delete(self, post_id: UUID, expected_version: int) -> bool:
        result = self._conn.execute(_DELETE, {"post_id": post_id, "version": expected_version})
        return result.rowcount == 1

    def count_active_for_account(self, account_id: UUID) -> int:
        found = self._conn.execute(_COUNT_ACTIVE, {"account_id": account_id})
        return int(found.scalar_one())
