"""Media items and their uploads to X, over SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, any_, bindparam, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from post_management.adapters.db.schema import media, media_uploads
from post_management.domain.media import Media, MediaKind

# The kinds of the user's media among the ids; locked shared, so the retention purge
# skips (and so keeps) media being attached.
KINDS = (
    select(media.c.id, media.c.kind)
    .where(
        media.c.user_id == bindparam("user_id"),
        media.c.id == any_(bindparam("ids", type_=ARRAY(PgUUID(as_uuid=True)))),
    )
    .with_for_update(read=True)
)
INSERT = insert(media)
# Never the bytes: reading a 512 MB column to answer a lookup would hurt.
GET = select(*[c for c in media.c if c.name != "data"]).where(media.c.id == bindparam("media_id"))
# Concurrent uploads of one user are counted one after another (usage_lock_params).
USAGE_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 13))")
USAGE = select(func.count(), func.coalesce(func.sum(media.c.size_bytes), 0)).where(
    media.c.user_id == bindparam("user_id")
)


def media_row(item: Media, data: bytes) -> dict[str, Any]:
    return {
        "id": item.id,
        "user_id": item.user_id,
        "mime_type": item.mime_type,
        "kind": item.kind.value,
        "size_bytes": item.size_bytes,
        "data": data,
        "created_at": item.created_at,
    }


def media_from_row(row: Mapping[Any, Any]) -> Media:
    return Media(
        id=row["id"],
        user_id=row["user_id"],
        mime_type=row["mime_type"],
        kind=MediaKind(row["kind"]),
        size_bytes=row["size_bytes"],
        created_at=row["created_at"],
    )


def usage_lock_params(user_id: str) -> dict[str, str]:
    """USAGE_LOCK's parameters: the user's own lock."""
    return {"key": f"media-quota:{user_id}"}


class SqlMediaRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def add(self, item: Media, data: bytes) -> None:
        self._conn.execute(INSERT, media_row(item, data))

    def get(self, media_id: UUID) -> Media | None:
        row = self._conn.execute(GET, {"media_id": media_id}).mappings().first()
        return media_from_row(row) if row is not None else None

    def kinds(self, user_id: str, media_ids: Sequence[UUID]) -> dict[UUID, MediaKind]:
        if not media_ids:
            return {}
        rows = self._conn.execute(KINDS, {"user_id": user_id, "ids": list(media_ids)}).all()
        return {row.id: MediaKind(row.kind) for row in rows}

    def usage(self, user_id: str) -> tuple[int, int]:
        self._conn.execute(USAGE_LOCK, usage_lock_params(user_id))
        row = self._conn.execute(USAGE, {"user_id": user_id}).one()
        return int(row[0]), int(row[1])


class SqlMediaUploads:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def uploaded(
        self, account_id: UUID, media_ids: Sequence[UUID], since: datetime
    ) -> dict[UUID, str]:
        if not media_ids:
            return {}
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(media_uploads.c.media_id, media_uploads.c.x_media_id).where(
                    media_uploads.c.account_id == account_id,
                    media_uploads.c.media_id.in_(list(media_ids)),
                    media_uploads.c.uploaded_at >= since,
                )
            ).all()
        return {row.media_id: row.x_media_id for row in rows}

    def content(self, media_id: UUID) -> tuple[bytes, str] | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(media.c.data, media.c.mime_type).where(media.c.id == media_id)
            ).first()
        return (bytes(row.data), row.mime_type) if row else None

    def record(self, media_id: UUID, account_id: UUID, x_media_id: str, at: datetime) -> None:
        statement = pg_insert(media_uploads).values(
            media_id=media_id, account_id=account_id, x_media_id=x_media_id, uploaded_at=at
        )
        # A later upload replaces an expired one.
        statement = statement.on_conflict_do_update(
            index_elements=[media_uploads.c.media_id, media_uploads.c.account_id],
            set_={"x_media_id": x_media_id, "uploaded_at": at},
        )
        with self._engine.begin() as connection:
            connection.execute(statement)
