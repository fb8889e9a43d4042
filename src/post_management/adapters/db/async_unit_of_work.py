"""The asynchronous unit of work over psycopg 3: one pooled connection, one
transaction, rolled back unless committed; the events of its changes are written to
the outbox when it commits, in that transaction.

It runs the synchronous repositories' statements (compiled once, async_statements)
and maps rows with their functions, so both units of work read and write alike; the
contract suite (tests/contract) holds them and the memory twin to one behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import insert

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db import (
    account_repository,
    campaign_repository,
    media_repository,
    post_repository,
    privacy_repository,
    records,
)
from post_management.adapters.db.account_repository import account_from_row
from post_management.adapters.db.async_reads import AsyncPostReads
from post_management.adapters.db.async_statements import Compiled, CompiledWrite
from post_management.adapters.db.campaign_repository import campaign_from_row
from post_management.adapters.db.outbox import _INSERT as _INSERT_EVENTS
from post_management.adapters.db.outbox import outbox_params
from post_management.adapters.db.post_repository import _from_row as post_from_row
from post_management.adapters.db.post_repository import save_params
from post_management.adapters.db.privacy_repository import tombstone_params
from post_management.adapters.db.schedule_queries import _TAKEN_BUT_ORDERED, _TAKEN_ORDERED
from post_management.adapters.db.schema import posts
from post_management.adapters.db.telemetry import UnitOfWorkTrace
from post_management.domain.account import Account
from post_management.domain.campaigns import Campaign
from post_management.domain.errors import Unavailable
from post_management.domain.events import EventLog
from post_management.domain.media import MediaKind
from post_management.domain.post import Post
from post_management.domain.privacy import Pseudonyms
from post_management.domain.reasons import Reason
from post_management.ports.async_unit_of_work import (
    AsyncAccounts,
    AsyncAuditLog,
    AsyncCampaigns,
    AsyncErasures,
    AsyncIdempotencyKeys,
    AsyncMedia,
    AsyncPosts,
    AsyncScheduleQueries,
)
from post_management.ports.repositories import (
    AuditEntry,
    Cursor,
    DuplicateKey,
    IdempotencyRecord,
    PostFilter,
)
from post_management.ports.schedule_queries import TakenTime

_GET_POST = Compiled(post_repository._GET)
_GET_POST_FOR_UPDATE = Compiled(post_repository._GET_FOR_UPDATE)
_SAVE_POST = CompiledWrite(post_repository._SAVE, json=["content_screening"])
_INSERT_POST = CompiledWrite(insert(posts), json=["content_screening"])
_DELETE_POST = Compiled(post_repository._DELETE)
_GET_CAMPAIGN = Compiled(campaign_repository.GET)
_MEDIA_KINDS = Compiled(media_repository.KINDS)
_LOCK_AGAINST_ERASURE = Compiled(privacy_repository.LOCK_AGAINST_ERASURE)
_ERASED = Compiled(privacy_repository.ERASED)
_GET_ACCOUNT = Compiled(account_repository._GET)
_GET_ACCOUNT_FOR_UPDATE = Compiled(account_repository._GET_FOR_UPDATE)
_LOCK_WITH_POST = Compiled(account_repository._LOCK_WITH_POST)
_GET_KEY = Compiled(records._GET_KEY)
_PUT_KEY = CompiledWrite(records._PUT_KEY)
_INSERT_AUDIT = CompiledWrite(records._INSERT_AUDIT, json=["before", "after"])
_TAKEN = Compiled(_TAKEN_ORDERED)
_TAKEN_BUT = Compiled(_TAKEN_BUT_ORDERED)
_WRITE_EVENTS = Compiled(_INSERT_EVENTS)

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


async def _one(connection: Connection, statement: Compiled, values: dict[str, Any]) -> Any:
    """The first row as a dict of its columns, or None."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(statement.sql, statement.params(values), prepare=True)
        return await cursor.fetchone()


async def _all(connection: Connection, statement: Compiled, values: dict[str, Any]) -> list[Any]:
    """Every row, each a dict of its columns."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(statement.sql, statement.params(values), prepare=True)
        return await cursor.fetchall()


async def _run(
    connection: Connection, statement: Compiled | CompiledWrite, values: dict[str, Any]
) -> int:
    """Run a statement; how many rows it changed."""
    if isinstance(statement, CompiledWrite):
        statement = statement.for_values(values)
    cursor = await connection.execute(statement.sql, statement.params(values), prepare=True)
    return cursor.rowcount


class AsyncSqlPosts:
    def __init__(self, connection: Connection, outbox: EventLog) -> None:
        self._conn = connection
        self._outbox = outbox

    async def add(self, post: Post) -> None:
        await _run(self._conn, _INSERT_POST, post_repository._to_row(post))
        self._outbox.add(*post.pull_events())

    async def list(self, where: PostFilter, after: Cursor | None, limit: int) -> list[Post]:
        # Built for its filters (as the synchronous repository builds it).
        statement = Compiled(post_repository.list_statement(where, after, limit))
        return [post_from_row(row) for row in await _all(self._conn, statement, {})]

    async def delete(self, post_id: UUID, expected_version: int) -> bool:
        values = {"post_id": post_id, "version": expected_version}
        return await _run(self._conn, _DELETE_POST, values) == 1

    async def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None:
        statement = _GET_POST_FOR_UPDATE if for_update else _GET_POST
        row = await _one(self._conn, statement, {"post_id": post_id})
        return post_from_row(row) if row is not None else None

    async def save(self, post: Post, expected_version: int) -> bool:
        if await _run(self._conn, _SAVE_POST, save_params(post, expected_version)) != 1:
            return False
        post.version = expected_version + 1
        self._outbox.add(*post.pull_events())
        return True


class AsyncSqlAccounts:
    def __init__(self, connection: Connection, box: FernetBox) -> None:
        self._conn = connection
        self._box = box

    async def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None:
        statement = _GET_ACCOUNT_FOR_UPDATE if for_update else _GET_ACCOUNT
        row = await _one(self._conn, statement, {"account_id": account_id})
        return account_from_row(row, self._box) if row is not None else None

    async def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        row = await _one(self._conn, _LOCK_WITH_POST, {"post_id": post_id, "user_id": user_id})
        if row is None:
            return None
        account = account_from_row(account_repository._Prefixed(row, "a_"), self._box)
        return account, post_from_row(account_repository._Prefixed(row, "p_"))


class AsyncSqlIdempotencyKeys:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = await _one(self._conn, _GET_KEY, {"scope": scope, "key": key})
        return IdempotencyRecord(row["request_hash"], row["resource_id"]) if row else None

    async def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        await _run(self._conn, _PUT_KEY, records.key_params(scope, key, record))


class AsyncSqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def record(self, entry: AuditEntry) -> None:
        await _run(self._conn, _INSERT_AUDIT, records.audit_params(entry))


class AsyncSqlScheduleQueries:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        values: dict[str, Any] = {"account_id": account_id, "since": since}
        statement = _TAKEN
        if exclude_post_id is not None:
            statement, values["exclude_post_id"] = _TAKEN_BUT, exclude_post_id
        cursor = await self._conn.execute(statement.sql, statement.params(values), prepare=True)
        return [TakenTime(row[0], row[1], row[2]) for row in await cursor.fetchall()]


class AsyncSqlCampaigns:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def get(self, campaign_id: UUID) -> Campaign | None:
        row = await _one(self._conn, _GET_CAMPAIGN, {"campaign_id": campaign_id})
        return campaign_from_row(row) if row is not None else None


class AsyncSqlMedia:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    async def kinds(self, user_id: str, media_ids: Sequence[UUID]) -> dict[UUID, MediaKind]:
        if not media_ids:
            return {}
        rows = await _all(self._conn, _MEDIA_KINDS, {"user_id": user_id, "ids": list(media_ids)})
        return {row["id"]: MediaKind(row["kind"]) for row in rows}


class AsyncSqlErasures:
    def __init__(self, connection: Connection, pseudonyms: Pseudonyms) -> None:
        self._conn = connection
        self._pseudonyms = pseudonyms

    async def is_erased(self, user_id: str) -> bool:
        await _run(self._conn, _LOCK_AGAINST_ERASURE, {"user_id": user_id})
        params = tombstone_params(self._pseudonyms, user_id)
        return await _one(self._conn, _ERASED, params) is not None


class AsyncSqlUnitOfWork:
    # Typed as the ports, so mypy holds each repository to its port.
    posts: AsyncPosts
    accounts: AsyncAccounts
    idempotency: AsyncIdempotencyKeys
    audit: AsyncAuditLog
    schedule: AsyncScheduleQueries
    campaigns: AsyncCampaigns
    media: AsyncMedia
    erasures: AsyncErasures
    outbox: EventLog

    def __init__(self, database: AsyncPostReads, box: FernetBox, pseudonyms: Pseudonyms) -> None:
        self._database = database
        self._box = box
        self._pseudonyms = pseudonyms
        self._conn: Connection | None = None
        self._trace: UnitOfWorkTrace | None = None

    async def __aenter__(self) -> Self:
        self._conn = conn = await self._database.begin()
        self._trace = UnitOfWorkTrace()
        self.outbox = EventLog()
        self.posts = AsyncSqlPosts(conn, self.outbox)
        self.accounts = AsyncSqlAccounts(conn, self._box)
        self.idempotency = AsyncSqlIdempotencyKeys(conn)
        self.audit = AsyncSqlAuditLog(conn)
        self.schedule = AsyncSqlScheduleQueries(conn)
        self.campaigns = AsyncSqlCampaigns(conn)
        self.media = AsyncSqlMedia(conn)
        self.erasures = AsyncSqlErasures(conn, self._pseudonyms)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")  # nothing to undo after commit
        except psycopg.Error:
            pass  # a broken connection: the pool drops it
        finally:
            await self._database.release(conn)
            if self._trace is not None:
                self._trace.finish(exc)
                self._trace = None
        # The ports' vocabulary, as the synchronous unit of work translates it.
        if isinstance(exc, psycopg.errors.UniqueViolation):
            raise DuplicateKey(exc.diag.constraint_name or "") from exc
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            raise Unavailable(
                "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
            ) from exc

    async def commit(self) -> None:
        assert self._conn is not None
        written = self.outbox.drain()
        params = outbox_params(written)
        if params is not None:
            await _run(self._conn, _WRITE_EVENTS, params)
        await self._conn.execute("COMMIT")
        if self._trace is not None:
            self._trace.committed(written)


class AsyncSqlUnitOfWorkFactory:
    """Units of work on the serving loop's pool (opened by the server, AsyncResource)."""

    def __init__(self, database: AsyncPostReads, box: FernetBox, pseudonyms: Pseudonyms) -> None:
        self._database = database
        self._box = box
        # Erased users are found by their pseudonym (docs/security.md).
        self._pseudonyms = pseudonyms

    def __call__(self) -> AsyncSqlUnitOfWork:
        return AsyncSqlUnitOfWork(self._database, self._box, self._pseudonyms)
