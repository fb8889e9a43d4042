"""The asynchronous unit of work over psycopg 3: one pooled connection, one
transaction, rolled back unless committed; the events of its changes are written to
the outbox when it commits, in that transaction.

It runs the synchronous repositories' statements (compiled once, async_statements)
and maps rows with their functions, so both units of work read and write alike; the
contract suite (tests/contract) holds them and the memory twin to one behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import psycopg
from psycopg.rows import dict_row, tuple_row
from sqlalchemy import insert

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db import (
    account_repository,
    analytics_repository,
    campaign_repository,
    insights_repository,
    media_repository,
    post_repository,
    privacy_repository,
    records,
    spend_ledger,
)
from post_management.adapters.db.account_repository import account_from_row
from post_management.adapters.db.analytics_repository import snapshots_from_rows
from post_management.adapters.db.analytics_schema import post_metrics
from post_management.adapters.db.async_reads import AsyncPool, PooledConnection
from post_management.adapters.db.async_statements import Compiled, CompiledWrite, one_row
from post_management.adapters.db.campaign_repository import campaign_from_row
from post_management.adapters.db.insights_repository import trend_alert_from_row
from post_management.adapters.db.measured_rows import measured_from_row
from post_management.adapters.db.media_repository import media_from_row
from post_management.adapters.db.outbox import _INSERT as _INSERT_EVENTS
from post_management.adapters.db.outbox import outbox_params
from post_management.adapters.db.post_repository import _from_row as post_from_row
from post_management.adapters.db.post_repository import save_params
from post_management.adapters.db.post_writes import writes_posts
from post_management.adapters.db.privacy_repository import tombstone_params
from post_management.adapters.db.schedule_queries import (
    _TAKEN_BUT_ORDERED,
    _TAKEN_ORDERED,
    TAKEN_BESIDE_POST,
)
from post_management.adapters.db.schema import posts
from post_management.adapters.db.telemetry import UnitOfWorkTrace
from post_management.domain.account import Account
from post_management.domain.analytics import Snapshot
from post_management.domain.campaigns import Campaign
from post_management.domain.engagement_features import PastPost
from post_management.domain.errors import Aborted, Unavailable
from post_management.domain.events import EventLog
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post
from post_management.domain.privacy import Pseudonyms
from post_management.domain.reasons import Reason
from post_management.domain.x_spend import PriceTable
from post_management.ports.analytics import MeasuredPost, PublishedRef, TrendAlert
from post_management.ports.async_unit_of_work import (
    AsyncUnitOfWork,
)
from post_management.ports.repositories import (
    AuditEntry,
    Cursor,
    DuplicateKey,
    IdempotencyRecord,
    PostFilter,
)
from post_management.ports.schedule_queries import TakenTime
from post_management.ports.x_spend import BudgetState, SpendRow, SpendScope

_GET_POST = Compiled(post_repository._GET)
_GET_POST_FOR_UPDATE = Compiled(post_repository._GET_FOR_UPDATE)
_SAVE_POST = CompiledWrite(
    post_repository._SAVE, json=["content_screening"], null_json=["content_screening"]
)
_INSERT_POST = CompiledWrite(
    insert(posts), json=["content_screening"], null_json=["content_screening"]
)
_DELETE_POST = Compiled(post_repository._DELETE)
_GET_CAMPAIGN = Compiled(campaign_repository.GET)
_INSERT_CAMPAIGN = CompiledWrite(campaign_repository.INSERT)
_MEDIA_KINDS = Compiled(media_repository.KINDS)
_GET_MEDIA = Compiled(media_repository.GET)
_INSERT_MEDIA = CompiledWrite(media_repository.INSERT)
_MEDIA_USAGE_LOCK = Compiled(media_repository.USAGE_LOCK)
_MEDIA_USAGE = Compiled(media_repository.USAGE)
_LOCK_AGAINST_ERASURE = Compiled(privacy_repository.LOCK_AGAINST_ERASURE)
_ERASED = Compiled(privacy_repository.ERASED)
_COUNT_ACTIVE = Compiled(post_repository._COUNT_ACTIVE)
_GET_ACCOUNT = Compiled(account_repository._GET)
_GET_ACCOUNT_FOR_UPDATE = Compiled(account_repository._GET_FOR_UPDATE)
_LOCK_WITH_POST = Compiled(account_repository._LOCK_WITH_POST)
_INSERT_ACCOUNT = CompiledWrite(account_repository._INSERT, json=["posting_rules"])
_SAVE_ACCOUNT = CompiledWrite(account_repository._SAVE, json=["posting_rules"])
_DELETE_ACCOUNT = Compiled(account_repository._DELETE)
_GET_KEY = Compiled(records._GET_KEY)
_PUT_KEY = CompiledWrite(records._PUT_KEY)
_INSERT_AUDIT = CompiledWrite(records._INSERT_AUDIT, json=["before", "after"])
_TAKEN = Compiled(_TAKEN_ORDERED)
_TAKEN_BUT = Compiled(_TAKEN_BUT_ORDERED)
_TAKEN_BESIDE_POST = Compiled(TAKEN_BESIDE_POST)
_WRITE_EVENTS = Compiled(_INSERT_EVENTS)
_LATEST = Compiled(analytics_repository.LATEST)
_SERIES = Compiled(analytics_repository.SERIES)
_DELETED_ON_X = Compiled(analytics_repository.DELETED_ON_X)
_INSERT_SNAPSHOT = CompiledWrite(post_metrics.insert())
_MARK_DELETED = Compiled(analytics_repository.MARK_DELETED)
_PUBLISHED_BY_X_ID = Compiled(analytics_repository.PUBLISHED_BY_X_ID)
_RECORD_WEBHOOK_EVENT = Compiled(analytics_repository.RECORD_WEBHOOK_EVENT)
_ACCOUNT_POSTS = Compiled(analytics_repository.ACCOUNT_POSTS)
_USER_POSTS = Compiled(analytics_repository.USER_POSTS)
_ALERTS = Compiled(insights_repository.ALERTS)
_CAMPAIGN_POSTS = Compiled(insights_repository.CAMPAIGN_POSTS)
_OUTSIDE = Compiled(insights_repository.OUTSIDE)
_SERIES_OF = Compiled(insights_repository.SERIES_OF)
_FOLLOWERS = Compiled(insights_repository.FOLLOWERS)
_ACCOUNT_HISTORY = Compiled(insights_repository.ACCOUNT_HISTORY)
_ALL_HISTORY = Compiled(insights_repository.ALL_HISTORY)
_BUDGETS = Compiled(spend_ledger.BUDGETS)
_SCHEDULED_THIS_MONTH = Compiled(spend_ledger.SCHEDULED_THIS_MONTH)
# The spend report's statements, one per scope.
_SPEND_ROWS = {name: Compiled(statement) for name, statement in spend_ledger.ROWS.items()}
_PUBLISHED = {name: Compiled(statement) for name, statement in spend_ledger.PUBLISHED.items()}


Connection = PooledConnection
_IDLE = psycopg.pq.TransactionStatus.IDLE
PostWritesHook = Callable[[], Awaitable[object]]
log = logging.getLogger(__name__)


class _Session:
    """One transaction's connection. Its BEGIN goes with its first statement, in one
    pipeline. Writes whose answer nothing waits for (an audit row, a request id's
    row, the events, the save of a post this transaction holds locked) are held and
    sent in one pipeline with the next statement or with the COMMIT: one round trip
    for them all instead of one each. A failure among them (a request id stored
    meanwhile) is raised then, and the transaction fails with it. Reads asked for
    ahead go in the next statement's pipeline after it (so after the locks it
    takes)."""

    def __init__(self, pool: AsyncPool, connection: Connection) -> None:
        self._pool = pool
        self.connection = connection
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._ahead: list[_Ahead] = []
        # The connection is back in the pool already (a dead one no other replaced).
        self.released = False
        # A post row changed (adapters/db/post_writes.py's rule): caches must hear of it.
        self.wrote_posts = False
        # Post rows this transaction holds locked (FOR UPDATE), by id: the version the
        # row has under the lock.
        self.locked_posts: dict[UUID, int] = {}
        # A write that fails when it changes no row was held (its failure: Aborted).
        self.checked_writes = False

    def later(self, statement: Compiled | CompiledWrite, values: dict[str, Any]) -> None:
        if isinstance(statement, CompiledWrite):
            statement = statement.for_values(values)
        self._held.append((statement.sql, statement.params(values)))

    def hold_locked_save(
        self, post_id: UUID, expected_version: int, statement: CompiledWrite, values: dict[str, Any]
    ) -> bool:
        """Hold the save of a post this transaction locked at `expected_version`: the
        row cannot change before the COMMIT, so the save goes with it (one round trip
        less). Sent as a write that must change one row: should it change none, it
        fails (a division by zero, Aborted to the caller), and the transaction with it.
        False, nothing held, for any other save."""
        if self.locked_posts.get(post_id) != expected_version:
            return False
        compiled = statement.for_values(values)
        self._held.append((one_row(compiled.sql), compiled.params(values)))
        self.checked_writes = True
        self.wrote_posts = True
        self.locked_posts[post_id] = expected_version + 1
        return True

    def ahead(self, statement: Compiled, values: dict[str, Any]) -> _Ahead:
        """A read sent right after the next statement, in its round trip; its rows
        are read through `arrived` once that trip is done."""
        read = _Ahead(statement.sql, statement.params(values))
        self._ahead.append(read)
        return read

    def arrived(self, read: _Ahead) -> psycopg.AsyncCursor[Any] | None:
        """The cursor of a read asked for ahead, once a round trip carried it; None if
        none has yet: then it is dropped (the caller reads now instead)."""
        if read.cursor is None and read in self._ahead:
            self._ahead.remove(read)
        return read.cursor

    async def one(self, statement: Compiled, values: dict[str, Any]) -> Any:
        """The first row as a dict of its columns, or None."""
        return await (await self._send(statement, values, dict_row)).fetchone()

    async def all(self, statement: Compiled, values: dict[str, Any]) -> list[Any]:
        """Every row, each a dict of its columns."""
        return await (await self._send(statement, values, dict_row)).fetchall()

    async def tuples(self, statement: Compiled, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await (await self._send(statement, values, None)).fetchall()

    async def run(self, statement: Compiled | CompiledWrite, values: dict[str, Any]) -> int:
        """Run a statement now; how many rows it changed."""
        if isinstance(statement, CompiledWrite):
            statement = statement.for_values(values)
        changed = (await self._send(statement, values, None)).rowcount
        if changed != 0 and writes_posts(statement.sql):
            self.wrote_posts = True
            # Post rows changed otherwise than by a held save (a delete, a save at
            # another version): no locked version can be counted on from here.
            self.locked_posts.clear()
        return changed

    async def commit(self) -> None:
        """The held writes and COMMIT, in one round trip."""
        if self.idle() and not self._held:
            return  # nothing was read or written: no transaction to end
        await self._flush("COMMIT", None, None, commit=True)

    async def _send(
        self, statement: Compiled, values: dict[str, Any], rows: Any
    ) -> psycopg.AsyncCursor[Any]:
        return await self._flush(statement.sql, statement.params(values), rows)

    async def _flush(
        self, sql: str, params: dict[str, Any] | None, rows: Any, *, commit: bool = False
    ) -> psycopg.AsyncCursor[Any]:
        if not self.idle():  # the transaction is open already
            return await self._trip(sql, params, rows, commit)
        try:
            return await self._trip(sql, params, rows, commit)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            # Found dead at its first statement (a database restart): nothing ran on
            # it, so it all goes again on a fresh connection, once. Not a COMMIT's
            # trip: a connection lost after the server committed would write twice.
            if commit or not self.connection.broken:
                raise
            log.info("transaction retried on a fresh connection")
            await self._pool.release(self.connection)
            try:
                self.connection = await self._pool.replace()
            except BaseException:
                # Handed back once already: the unit of work ends without it.
                self.released = True
                raise
            return await self._trip(sql, params, rows, commit)

    def idle(self) -> bool:
        """No transaction open on the connection: none begun yet (its BEGIN goes with
        the first statement), or it has ended."""
        return self.connection.info.transaction_status == _IDLE

    async def _trip(
        self, sql: str, params: dict[str, Any] | None, rows: Any, commit: bool
    ) -> psycopg.AsyncCursor[Any]:
        """One round trip: the BEGIN if not yet sent, the held writes, the statement,
        the reads asked for ahead."""
        connection = self.connection
        cursor = connection.kept_cursor("answers")
        cursor.row_factory = rows or tuple_row
        begin = self.idle()
        ahead = [] if commit else self._ahead
        if not begin and not self._held and not ahead:
            await cursor.execute(sql, params, prepare=not commit)
            return cursor
        async with connection.pipeline():
            if begin or self._held:
                # Their rows are not read: one cursor carries them all (a failure is
                # raised as the pipeline ends, as for any of its statements).
                writes = connection.kept_cursor("writes")
                if begin:
                    await writes.execute("BEGIN")
                for held_sql, held_params in self._held:
                    await writes.execute(held_sql, held_params, prepare=True)
            await cursor.execute(sql, params, prepare=not commit)
            for read in ahead:
                read.cursor = connection.cursor(row_factory=dict_row)
                await read.cursor.execute(read.sql, read.params, prepare=True)
        self._held = []
        if ahead:
            self._ahead = []
        return cursor


@dataclass(eq=False)
class _Ahead:
    """A read sent after another statement, in its round trip."""

    sql: str
    params: dict[str, Any]
    cursor: psycopg.AsyncCursor[Any] | None = None


class AsyncSqlPosts:
    def __init__(self, session: _Session, outbox: EventLog) -> None:
        self._db = session
        self._outbox = outbox

    async def add(self, post: Post) -> None:
        await self._db.run(_INSERT_POST, post_repository._to_row(post))
        self._outbox.add(*post.pull_events())

    async def list(self, where: PostFilter, after: Cursor | None, limit: int) -> list[Post]:
        # Built for its filters (as the synchronous repository builds it).
        statement = Compiled(post_repository.list_statement(where, after, limit))
        return [post_from_row(row) for row in await self._db.all(statement, {})]

    async def delete(self, post_id: UUID, expected_version: int) -> bool:
        values = {"post_id": post_id, "version": expected_version}
        return await self._db.run(_DELETE_POST, values) == 1

    async def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None:
        statement = _GET_POST_FOR_UPDATE if for_update else _GET_POST
        row = await self._db.one(statement, {"post_id": post_id})
        if row is None:
            return None
        post = post_from_row(row)
        if for_update:
            self._db.locked_posts[post.id] = post.version
        return post

    async def save(self, post: Post, expected_version: int) -> bool:
        params = save_params(post, expected_version)
        if not self._db.hold_locked_save(post.id, expected_version, _SAVE_POST, params) and (
            await self._db.run(_SAVE_POST, params) != 1
        ):
            return False
        post.version = expected_version + 1
        self._outbox.add(*post.pull_events())
        return True

    async def count_active_for_account(self, account_id: UUID) -> int:
        rows = await self._db.tuples(_COUNT_ACTIVE, {"account_id": account_id})
        return int(rows[0][0])


class AsyncSqlAccounts:
    def __init__(self, session: _Session, box: FernetBox) -> None:
        self._db = session
        self._box = box

    async def add(self, account: Account) -> None:
        await self._db.run(_INSERT_ACCOUNT, account_repository.account_row(account, self._box))

    async def list(self, user_id: str | None, after: Cursor | None, limit: int) -> list[Account]:
        # Built for its filters (as the synchronous repository builds it).
        statement = Compiled(account_repository.list_statement(user_id, after, limit))
        return [account_from_row(row, self._box) for row in await self._db.all(statement, {})]

    async def save(self, account: Account, expected_version: int) -> bool:
        params = account_repository.save_params(account, expected_version, self._box)
        if await self._db.run(_SAVE_ACCOUNT, params) != 1:
            return False
        account.version = expected_version + 1
        return True

    async def delete(self, account_id: UUID, expected_version: int) -> bool:
        values = {"account_id": account_id, "version": expected_version}
        return await self._db.run(_DELETE_ACCOUNT, values) == 1

    async def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None:
        statement = _GET_ACCOUNT_FOR_UPDATE if for_update else _GET_ACCOUNT
        row = await self._db.one(statement, {"account_id": account_id})
        return account_from_row(row, self._box) if row is not None else None

    async def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        row = await self._db.one(_LOCK_WITH_POST, {"post_id": post_id, "user_id": user_id})
        if row is None:
            return None
        account = account_from_row(account_repository._Prefixed(row, "a_"), self._box)
        post = post_from_row(account_repository._Prefixed(row, "p_"))
        self._db.locked_posts[post.id] = post.version
        return account, post


class AsyncSqlIdempotencyKeys:
    def __init__(self, session: _Session) -> None:
        self._db = session
        self._ahead: dict[tuple[str, str], _Ahead] = {}

    def read_ahead(self, scope: str, key: str) -> None:
        self._ahead[scope, key] = self._db.ahead(_GET_KEY, {"scope": scope, "key": key})

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        read = self._ahead.pop((scope, key), None)
        cursor = self._db.arrived(read) if read is not None else None
        if cursor is not None:
            row = await cursor.fetchone()
        else:
            row = await self._db.one(_GET_KEY, {"scope": scope, "key": key})
        return IdempotencyRecord(row["request_hash"], row["resource_id"]) if row else None

    async def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        self._db.later(_PUT_KEY, records.key_params(scope, key, record))


class AsyncSqlAuditLog:
    def __init__(self, session: _Session) -> None:
        self._db = session

    async def record(self, entry: AuditEntry) -> None:
        self._db.later(_INSERT_AUDIT, records.audit_params(entry))


class AsyncSqlScheduleQueries:
    def __init__(self, session: _Session) -> None:
        self._db = session
        self._ahead: tuple[UUID, datetime, _Ahead] | None = None

    def read_ahead_beside(self, post_id: UUID, since: datetime) -> None:
        self._ahead = (
            post_id,
            since,
            self._db.ahead(_TAKEN_BESIDE_POST, {"post_id": post_id, "since": since}),
        )

    async def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            post_id, read_since, read = ahead
            cursor = self._db.arrived(read)
            if cursor is not None and post_id == exclude_post_id and read_since <= since:
                rows = await cursor.fetchall()
                # The first row names the post's account then: the answer counts only
                # for that account (otherwise it is asked again below).
                if rows and rows[0]["owner"] == account_id:
                    return [
                        TakenTime(row["id"], row["text"], row["at"])
                        for row in rows
                        if row["id"] is not None and row["at"] >= since
                    ]
        values: dict[str, Any] = {"account_id": account_id, "since": since}
        statement = _TAKEN
        if exclude_post_id is not None:
            statement, values["exclude_post_id"] = _TAKEN_BUT, exclude_post_id
        rows = await self._db.tuples(statement, values)
        return [TakenTime(row[0], row[1], row[2]) for row in rows]


class AsyncSqlCampaigns:
    def __init__(self, session: _Session) -> None:
        self._db = session

    async def add(self, campaign: Campaign) -> None:
        await self._db.run(_INSERT_CAMPAIGN, campaign_repository.campaign_row(campaign))

    async def list(self, user_id: str, after: Cursor | None, limit: int) -> list[Campaign]:
        # Built for its filters (as the synchronous repository builds it).
        statement = Compiled(campaign_repository.list_statement(user_id, after, limit))
        return [campaign_from_row(row) for row in await self._db.all(statement, {})]

    async def get(self, campaign_id: UUID) -> Campaign | None:
        row = await self._db.one(_GET_CAMPAIGN, {"campaign_id": campaign_id})
        return campaign_from_row(row) if row is not None else None


class AsyncSqlMedia:
    def __init__(self, session: _Session) -> None:
        self._db = session

    async def add(self, media: Media, data: bytes) -> None:
        await self._db.run(_INSERT_MEDIA, media_repository.media_row(media, data))

    async def get(self, media_id: UUID) -> Media | None:
        row = await self._db.one(_GET_MEDIA, {"media_id": media_id})
        return media_from_row(row) if row is not None else None

    async def kinds(self, user_id: str, media_ids: Sequence[UUID]) -> dict[UUID, MediaKind]:
        if not media_ids:
            return {}
        rows = await self._db.all(_MEDIA_KINDS, {"user_id": user_id, "ids": list(media_ids)})
        return {row["id"]: MediaKind(row["kind"]) for row in rows}

    async def usage(self, user_id: str) -> tuple[int, int]:
        await self._db.run(_MEDIA_USAGE_LOCK, media_repository.usage_lock_params(user_id))
        rows = await self._db.tuples(_MEDIA_USAGE, {"user_id": user_id})
        return int(rows[0][0]), int(rows[0][1])


class AsyncSqlErasures:
    def __init__(self, session: _Session, pseudonyms: Pseudonyms) -> None:
        self._db = session
        self._pseudonyms = pseudonyms

    async def is_erased(self, user_id: str) -> bool:
        await self._db.run(_LOCK_AGAINST_ERASURE, {"user_id": user_id})
        params = tombstone_params(self._pseudonyms, user_id)
        return await self._db.one(_ERASED, params) is not None


class AsyncSqlAnalytics:
    def __init__(self, session: _Session) -> None:
        self._db = session

    async def add_snapshot(self, post_id: UUID, snapshot: Snapshot, source: str) -> None:
        await self._db.run(
            _INSERT_SNAPSHOT, analytics_repository.snapshot_row(post_id, snapshot, source)
        )

    async def mark_deleted(self, post_id: UUID, detected_at: datetime) -> None:
        await self._db.run(_MARK_DELETED, {"post_id": post_id, "detected_at": detected_at})

    async def published_by_x_id(self, x_post_ids: Sequence[str]) -> dict[str, PublishedRef]:
        if not x_post_ids:
            return {}
        rows = await self._db.all(_PUBLISHED_BY_X_ID, {"ids": list(x_post_ids)})
        return {
            row["x_post_id"]: PublishedRef(
                row["id"], row["account_id"], row["user_id"], row["x_post_id"]
            )
            for row in rows
        }

    async def record_webhook_event(
        self, event_id: str, event_type: str, received_at: datetime
    ) -> bool:
        values = {"event_id": event_id, "event_type": event_type, "received_at": received_at}
        return await self._db.one(_RECORD_WEBHOOK_EVENT, values) is not None

    async def latest(self, post_id: UUID) -> Snapshot | None:
        series = snapshots_from_rows(await self._db.all(_LATEST, {"post_id": post_id}))
        return series[0] if series else None

    async def series(self, post_id: UUID) -> list[Snapshot]:
        return snapshots_from_rows(await self._db.all(_SERIES, {"post_id": post_id}))

    async def deleted_on_x(self, post_id: UUID) -> bool:
        rows = await self._db.tuples(_DELETED_ON_X, {"post_id": post_id})
        return bool(rows[0][0]) if rows else False

    async def account_posts(self, account_id: UUID, since: datetime | None) -> list[MeasuredPost]:
        values = {"account_id": account_id, "since": since}
        return [measured_from_row(row) for row in await self._db.all(_ACCOUNT_POSTS, values)]

    async def user_posts(self, user_id: str, start: datetime, end: datetime) -> list[MeasuredPost]:
        values = {"user_id": user_id, "start": start, "end": end}
        return [measured_from_row(row) for row in await self._db.all(_USER_POSTS, values)]


class AsyncSqlInsights:
    def __init__(self, session: _Session) -> None:
        self._db = session

    async def campaign_posts(self, campaign_id: UUID) -> list[MeasuredPost]:
        rows = await self._db.all(_CAMPAIGN_POSTS, {"campaign_id": campaign_id})
        return [measured_from_row(row) for row in rows]

    async def published_outside(
        self, campaign_id: UUID, account_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> list[MeasuredPost]:
        if not account_ids:
            return []
        values = {
            "campaign_id": campaign_id,
            "account_ids": list(account_ids),
            "start": start,
            "end": end,
        }
        return [measured_from_row(row) for row in await self._db.all(_OUTSIDE, values)]

    async def series_of(self, post_ids: Sequence[UUID]) -> dict[UUID, list[Snapshot]]:
        if not post_ids:
            return {}
        rows = await self._db.all(_SERIES_OF, {"post_ids": list(post_ids)})
        return insights_repository.series_by_post(rows)

    async def follower_snapshots(
        self, account_id: UUID, start: datetime, end: datetime
    ) -> list[FollowerSnapshot]:
        values = {"account_id": account_id, "start": start, "end": end}
        rows = await self._db.all(_FOLLOWERS, values)
        return [insights_repository.follower_from_row(row) for row in rows]

    async def engagement_history(
        self, account_id: UUID | None, published_before: datetime, limit: int
    ) -> list[PastPost]:
        statement = _ACCOUNT_HISTORY if account_id is not None else _ALL_HISTORY
        values = insights_repository.history_params(account_id, published_before, limit)
        rows = await self._db.all(statement, values)
        return [insights_repository.past_post_from_row(row) for row in rows]

    async def trend_alerts_for_post(
        self, post_id: UUID, account_id: UUID, published_at: datetime | None
    ) -> list[TrendAlert]:
        values = insights_repository.alerts_params(post_id, account_id, published_at)
        return [trend_alert_from_row(row) for row in await self._db.all(_ALERTS, values)]


class AsyncSqlSpendLedger:
    def __init__(self, session: _Session, prices: PriceTable) -> None:
        self._db = session
        self._prices = prices

    async def rows(self, scope: SpendScope, start: datetime, end: datetime) -> list[SpendRow]:
        name, values = spend_ledger.scope_params(scope, start, end)
        rows = await self._db.all(_SPEND_ROWS[name], values)
        return [spend_ledger.spend_row(row) for row in rows]

    async def published_posts(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        name, values = spend_ledger.scope_params(scope, start, end)
        rows = await self._db.tuples(_PUBLISHED[name], values)
        return int(rows[0][0])

    async def budget_states(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        if not account_ids:
            return {}
        budgets = await self._db.all(_BUDGETS, {"ids": list(account_ids)})
        if not budgets:
            return {}
        ids = [row["id"] for row in budgets]
        scheduled = await self._db.all(_SCHEDULED_THIS_MONTH, {"ids": ids})
        return spend_ledger.budget_states_of(budgets, scheduled, self._prices)


class AsyncSqlUnitOfWork(AsyncUnitOfWork):
    """The port's attributes are typed by the port it subclasses, so mypy holds each
    repository to its port."""

    def __init__(self, config: AsyncSqlUnitOfWorkFactory) -> None:
        self._database = config.database
        self._box = config.box
        self._pseudonyms = config.pseudonyms
        self._prices = config.prices
        self._on_post_writes = config.on_post_writes
        self._session: _Session | None = None
        self._trace: UnitOfWorkTrace | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        self._session = session = _Session(self._database, await self._database.checkout())
        self._trace = UnitOfWorkTrace()
        self.outbox = EventLog()
        self.posts = AsyncSqlPosts(session, self.outbox)
        self.accounts = AsyncSqlAccounts(session, self._box)
        self.idempotency = AsyncSqlIdempotencyKeys(session)
        self.audit = AsyncSqlAuditLog(session)
        self.schedule = AsyncSqlScheduleQueries(session)
        self.campaigns = AsyncSqlCampaigns(session)
        self.media = AsyncSqlMedia(session)
        self.erasures = AsyncSqlErasures(session, self._pseudonyms)
        self.analytics = AsyncSqlAnalytics(session)
        self.insights = AsyncSqlInsights(session)
        self.spend = AsyncSqlSpendLedger(session, self._prices)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        assert session is not None
        conn = session.connection
        try:
            if session.released:
                pass  # a dead connection, handed back when it was found dead
            elif not session.idle():
                await conn.execute("ROLLBACK")  # nothing to undo after commit
        except psycopg.Error:
            pass  # a broken connection: the pool drops it
        finally:
            if not session.released:
                await self._database.release(conn)
            if self._trace is not None:
                self._trace.finish(exc)
                self._trace = None
        if self._committed and session.wrote_posts:
            # With the connection back in the pool, and even when the call was
            # cancelled after its COMMIT reached the database.
            await self._notify_post_writes()
        # The ports' vocabulary, as the synchronous unit of work translates it.
        if isinstance(exc, psycopg.errors.UniqueViolation):
            raise DuplicateKey(exc.diag.constraint_name or "") from exc
        if isinstance(exc, psycopg.errors.DivisionByZero) and session.checked_writes:
            # A held save that changed no row (one_row): as a versioned save that
            # found another version, the change is refused.
            raise Aborted.concurrent_change() from exc
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            raise Unavailable(
                "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
            ) from exc

    async def commit(self) -> None:
        session = self._session
        assert session is not None and not self._committed, "commit once, inside"
        written = self.outbox.drain()
        params = outbox_params(written)
        if params is not None:
            session.later(_WRITE_EVENTS, params)
        try:
            await session.commit()
        finally:
            # A cancellation may land after the COMMIT was done: the transaction's
            # state, not the await's outcome, says whether it was.
            if session.idle():
                self._committed = True
                if self._trace is not None:
                    self._trace.committed(written)

    async def _notify_post_writes(self) -> None:
        """After a commit that changed a post row, as the synchronous engine's hook: a
        reader that refills a cache from now on sees the committed row."""
        if self._on_post_writes is None:
            return
        try:
            await self._on_post_writes()
        except Exception:  # the write is committed; a cache problem must not undo it
            log.exception("post write callback failed")


@dataclass(frozen=True)
class AsyncSqlUnitOfWorkFactory:
    """Units of work on a pool of their own, opened by the server on its loop.
    `on_post_writes` is awaited after each commit that changed a post row (the post
    cache's new generation, docs/integration.md)."""

    database: AsyncPool
    box: FernetBox
    # Erased users are found by their pseudonym (docs/security.md).
    pseudonyms: Pseudonyms
    on_post_writes: PostWritesHook | None = None
    # The spend ledger's prices: a scheduled post's reserved cost (budget_states).
    prices: PriceTable = field(default_factory=PriceTable)

    def __call__(self) -> AsyncSqlUnitOfWork:
        return AsyncSqlUnitOfWork(self)
