"""Data for analytics tests: accounts and posts written straight to PostgreSQL."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from sqlalchemy import Engine, text

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db import analytics_repository, insights_repository
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.domain.account import Account, Credentials
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.post import Post, PostState
from post_management.domain.privacy import Pseudonyms
from post_management.ports.analytics import SOURCE_POLL, TrendAlert


class Data:
    """Writes accounts, posts and snapshots; the box must match the reader's when
    credentials are involved."""

    def __init__(self, engine: Engine, box: FernetBox | None = None) -> None:
        self.engine = engine
        self.uow = SqlUnitOfWorkFactory(
            engine,
            box or FernetBox([Fernet.generate_key().decode()]),
            Pseudonyms(secrets.token_bytes(32)),
        )

    def account(
        self,
        user_id: str,
        x_user_id: str | None = None,
        *,
        timezone: str = "UTC",
        credentials: Credentials | None = None,
        posting_rules: dict[str, object] | None = None,
    ) -> Account:
        now = datetime.now(UTC)
        x_user_id = x_user_id or str(uuid.uuid4().int % 10**12)
        account = Account(
            id=uuid.uuid4(),
            user_id=user_id,
            handle=f"h{x_user_id}",
            x_user_id=x_user_id,
            created_at=now,
            updated_at=now,
            timezone=timezone,
            credentials=credentials,
            posting_rules=dict(posting_rules or {}),
        )
        with self.uow() as uow:
            uow.accounts.add(account)
            uow.commit()
        return account

    def post(
        self,
        account: Account,
        state: PostState = PostState.PUBLISHED,
        *,
        published_at: datetime | None = None,
        due_at: datetime | None = None,
        x_post_id: str | None = None,
        snapshots: list[tuple[datetime, Counts]] = (),  # type: ignore[assignment]
        media: bool = False,
    ) -> Post:
        now = datetime.now(UTC)
        published = state is PostState.PUBLISHED
        post = Post(
            id=uuid.uuid4(),
            user_id=account.user_id,
            account_id=account.id,
            text=f"post {uuid.uuid4().hex[:8]}",
            created_at=now - timedelta(days=60),
            updated_at=now,
            media_ids=["1"] if media else [],
            state=state,
            scheduled_for=due_at or published_at,
            timezone="UTC",
            published_at=published_at if published else None,
            x_post_id=(x_post_id or str(uuid.uuid4().int % 10**15)) if published else "",
        )
        with self.uow() as uow:
            uow.posts.add(post)
            for at, counts in snapshots:
                uow.analytics.add_snapshot(post.id, Snapshot(at, counts), SOURCE_POLL)
            uow.commit()
        return post

    def snapshot(self, post: Post, at: datetime, counts: Counts) -> None:
        with self.uow() as uow:
            uow.analytics.add_snapshot(post.id, Snapshot(at, counts), SOURCE_POLL)
            uow.commit()

    def events(
        self, event_type: str, aggregate_id: uuid.UUID | None = None
    ) -> list[dict[str, object]]:
        query = "SELECT payload FROM outbox WHERE event_type = :type"
        params: dict[str, object] = {"type": event_type}
        if aggregate_id is not None:
            query += " AND aggregate_id = :key"
            params["key"] = str(aggregate_id)
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(text(query + " ORDER BY id"), params)]

    def snapshot_count(self, post_id: uuid.UUID | None = None) -> int:
        query = "SELECT count(*) FROM post_metrics"
        params: dict[str, object] = {}
        if post_id is not None:
            query += " WHERE post_id = :id"
            params["id"] = post_id
        with self.engine.connect() as connection:
            return int(connection.execute(text(query), params).scalar_one())

    def series(self, post_id: uuid.UUID) -> list[Snapshot]:
        """The post's snapshots, oldest first, as the request path reads them (its
        statement and row mapping)."""
        with self.engine.connect() as connection:
            rows = connection.execute(analytics_repository.SERIES, {"post_id": post_id})
            return analytics_repository.snapshots_from_rows(row._mapping for row in rows)

    def deleted_on_x(self, post_id: uuid.UUID) -> bool:
        with self.engine.connect() as connection:
            found = connection.execute(analytics_repository.DELETED_ON_X, {"post_id": post_id})
            return bool(found.scalar_one_or_none())

    def trend_alerts_for_post(
        self, post_id: uuid.UUID, account_id: uuid.UUID, published_at: datetime | None
    ) -> list[TrendAlert]:
        """As the request path reads them (its statement and row mapping)."""
        values = insights_repository.alerts_params(post_id, account_id, published_at)
        with self.engine.connect() as connection:
            rows = connection.execute(insights_repository.ALERTS, values)
            return [insights_repository.trend_alert_from_row(row._mapping) for row in rows]


def last_weekday_hour(now: datetime, weekday: int, hour: int, min_age: timedelta) -> datetime:
    """The latest UTC instant on `weekday` at `hour`:00 that is at least `min_age` old."""
    candidate = (now - min_age).replace(minute=0, second=0, microsecond=0, hour=hour)
    while candidate.weekday() != weekday or candidate > now - min_age:
        candidate -= timedelta(days=1)
    return candidate


def next_weekday_hour(now: datetime, weekday: int, hour: int) -> datetime:
    """The first UTC instant at or after `now` on `weekday` at `hour`:00."""
    candidate = now.replace(minute=0, second=0, microsecond=0, hour=hour)
    while candidate.weekday() != weekday or candidate < now:
        candidate += timedelta(days=1)
    return candidate
