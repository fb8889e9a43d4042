"""Post reads over a psycopg 3 async pool: one prepared statement, one round trip.
The pool also lends the asynchronous unit of work its connections (`begin`).

The connections are in autocommit, so a read is one SELECT with no BEGIN or COMMIT
around it; `prepare=True` has PostgreSQL parse and plan it once per connection.
Results come in PostgreSQL's binary format: uuids, timestamps and arrays are read
from their bytes instead of parsed from text (about half the cost of a post row).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from post_management.adapters.db.engine import normalize_url
from post_management.domain.errors import Unavailable
from post_management.domain.post import Post, PostState, Priority
from post_management.domain.reasons import Reason
from post_management.ports.schedule_queries import DueCursor, ScheduledQuery

log = logging.getLogger(__name__)
T = TypeVar("T")

# Column order of _post below.
POST_COLUMNS = (
    "id, user_id, account_id, text, media_ids, reply_to_x_post_id, attachment_ids,"
    " thread, segment_x_post_ids, state, priority, due_at, timezone, published_at,"
    " x_post_id, attempt_count, last_error, version, campaign_id, created_at, updated_at"
)
# Only constant SQL fragments are joined into statements here; values are parameters.
SELECT_POST = f"SELECT {POST_COLUMNS} FROM posts WHERE id = %s"  # noqa: S608
SELECT_ACCOUNT_OWNER = "SELECT user_id FROM accounts WHERE id = %s"
CONNECT_TIMEOUT_SECONDS = 5
# Waiting longer for a free connection than this answers UNAVAILABLE.
CHECKOUT_TIMEOUT_SECONDS = 5.0


def libpq_url(url: str) -> str:
    """The service's database URL (any scheme the operator wrote) as libpq takes it."""
    parsed = make_url(normalize_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


_STATES = {state.value: state for state in PostState}
_PRIORITIES = {int(priority): priority for priority in Priority}


def _post(row: tuple[Any, ...]) -> Post:
    # The arrays are lists of the row's own (psycopg makes new ones per row); the
    # enums by dictionary, an unknown value failing as the enum's call would.
    state, priority = _STATES.get(row[9]), _PRIORITIES.get(row[10])
    return Post(
        id=row[0],
        user_id=row[1],
        account_id=row[2],
        text=row[3],
        media_ids=row[4],
        reply_to_x_post_id=row[5],
        attachment_ids=row[6],
        thread=row[7],
        segment_x_post_ids=row[8],
        state=state if state is not None else PostState(row[9]),
        priority=priority if priority is not None else Priority(row[10]),
        scheduled_for=row[11],
        timezone=row[12],
        published_at=row[13],
        x_post_id=row[14],
        attempt_count=row[15],
        last_error=row[16],
        version=row[17],
        campaign_id=row[18],
        created_at=row[19],
        updated_at=row[20],
    )


# A pooled connection's kept cursors, by what they serve: "reads", the post reads
# (results in binary, rows as tuples); "answers", the unit of work's statements whose
# rows it reads; "writes", statements whose rows nobody reads (BEGIN and held writes
# in a pipeline, where one cursor may carry several).
Purpose = Literal["reads", "answers", "writes"]


class PooledConnection(psycopg.AsyncConnection[tuple[Any, ...]]):
    """A pooled connection that keeps its cursors: a cursor made per statement (what
    `connection.execute` does) cost a post read about a quarter of its CPU (122-141
    us against 86-98 us with a kept one, measured on this loop)."""

    _kept: dict[Purpose, psycopg.AsyncCursor[Any]] | None = None

    def kept_cursor(self, purpose: Purpose) -> psycopg.AsyncCursor[Any]:
        """The connection's cursor for `purpose`. A statement's rows are read before the
        cursor runs the next one."""
        kept = self._kept
        if kept is None:
            kept = self._kept = {}
        cursor = kept.get(purpose)
        if cursor is None or cursor.closed:
            cursor = kept[purpose] = self.cursor(binary=purpose == "reads")
        return cursor


class AsyncPool:
    """A psycopg async pool opened on the serving loop (an AsyncResource). The reads
    below take connections from one; the asynchronous unit of work from another
    (`begin`, `release`), so commands waiting on row locks never hold up a read."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        # As many as the calls a busy server has in flight at once: a call that finds
        # every connection taken waits in the pool's queue, which costs it more CPU
        # than its read (measured at 16 in flight: about a tenth of a GetPost).
        max_size: int = 16,
        checkout_timeout: float = CHECKOUT_TIMEOUT_SECONDS,
        name: str = "post-reads",
    ) -> None:
        self._name = name
        self._conninfo = libpq_url(url)
        self._min = min_size
        self._max = max_size
        self._checkout_timeout = checkout_timeout
        self._pool: AsyncConnectionPool[PooledConnection] | None = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[PooledConnection] = AsyncConnectionPool(
            self._conninfo,
            connection_class=PooledConnection,
            min_size=self._min,
            max_size=self._max,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            timeout=self._checkout_timeout,
            name=self._name,
            open=False,
        )
        # Not waiting for min_size: a database that is down at start-up answers
        # UNAVAILABLE per call (as the sync engine does) instead of stopping the server.
        await pool.open(wait=False)
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def begin(self) -> PooledConnection:
        """A pooled connection with a transaction begun, for the asynchronous unit of
        work, which hands it back with `release`. BEGIN is the first statement: a
        connection that died in the pool (a database restart) fails there; the pool
        then checks its idle connections, dropping the dead ones, and a fresh one is
        taken."""
        if self._pool is None:
            raise Unavailable("the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE)
        for attempt in (1, 2):
            try:
                connection = await self._pool.getconn()
            except PoolTimeout as exc:
                raise Unavailable(
                    "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
                ) from exc
            try:
                await connection.execute("BEGIN")
                return connection
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                await self._pool.putconn(connection)  # broken: the pool drops it
                if attempt == 1:
                    await self._pool.check()  # the others died with it, most likely
                if attempt == 2:
                    raise Unavailable(
                        "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
                    ) from exc
                log.info("transaction retried on a fresh connection: %s", type(exc).__name__)
            except BaseException:
                await self._pool.putconn(connection)
                raise
        raise AssertionError("unreachable")

    async def checkout(self) -> PooledConnection:
        """A pooled connection, no statement sent yet (the asynchronous unit of work
        sends its BEGIN with its first statement); handed back with `release`."""
        if self._pool is None:
            raise Unavailable("the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE)
        try:
            return await self._pool.getconn()
        except PoolTimeout as exc:
            raise Unavailable(
                "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
            ) from exc

    async def replace(self) -> PooledConnection:
        """Another connection for one found dead before it did anything (a database
        restart), which the caller has handed back (`release`) first: the pool checks
        its idle ones, which most likely died with it, and lends a fresh one."""
        if self._pool is not None:
            await self._pool.check()
        return await self.checkout()

    async def release(self, connection: PooledConnection) -> None:
        """Hand back a connection from `begin`, its transaction ended."""
        if self._pool is not None:
            await self._pool.putconn(connection)
        else:
            await connection.close()  # the pool closed meanwhile

    async def read(self, run: Callable[[PooledConnection], Awaitable[T]]) -> T:
        """`run` on a pooled connection in autocommit: reads outside a transaction
        (the privacy store's), retried as the post reads are."""
        return await self._with_connection(run)

    async def _with_connection(self, run: Callable[[PooledConnection], Awaitable[T]]) -> T:
        if self._pool is None:
            raise Unavailable("the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE)
        # A pooled connection may have died since its last use (a database restart):
        # the pool drops it on the error, and the second try takes a fresh one.
        for attempt in (1, 2):
            try:
                # getconn and putconn, not the pool's context manager: its connection
                # context (a COMMIT check in autocommit) and usage timing add nothing.
                connection = await self._pool.getconn()
                try:
                    return await run(connection)
                finally:
                    await self._pool.putconn(connection)
            except PoolTimeout as exc:
                # No connection could be had in time: the database is down or saturated.
                raise Unavailable(
                    "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
                ) from exc
            except psycopg.OperationalError as exc:
                if attempt == 1 and not isinstance(exc, psycopg.errors.QueryCanceled):
                    log.info("post read retried on a fresh connection: %s", type(exc).__name__)
                    continue
                raise Unavailable(
                    "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
                ) from exc
            except (psycopg.InterfaceError, TimeoutError) as exc:
                raise Unavailable(
                    "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
                ) from exc
        raise AssertionError("unreachable")


class AsyncPostReads(AsyncPool):
    """AsyncPostReader and AsyncScheduleReader over a pool of their own."""

    async def get(self, post_id: UUID) -> Post | None:
        row = await self._fetch_one(SELECT_POST, (post_id,))
        return _post(row) if row is not None else None

    async def account_owner(self, account_id: UUID) -> str | None:
        row = await self._fetch_one(SELECT_ACCOUNT_OWNER, (account_id,))
        return str(row[0]) if row is not None else None

    async def scheduled_page(
        self, query: ScheduledQuery, after: DueCursor | None, offset: int, limit: int
    ) -> tuple[list[Post], int]:
        where, params = _scheduled_conditions(query)
        matching = " AND ".join(where)
        count = f"SELECT count(*) FROM posts WHERE {matching}"  # noqa: S608
        # The page and the count in one statement: each row carries the count of all
        # matching posts (a window over the filter, computed before OFFSET and LIMIT).
        if after is None:
            page = (
                f"SELECT {POST_COLUMNS}, count(*) OVER () FROM posts"  # noqa: S608
                f" WHERE {matching} ORDER BY due_at, id OFFSET %s LIMIT %s"
            )
            page_params = (*params, offset, limit)
        else:
            # The count is of the whole filter, not only of what follows the cursor.
            page = (
                f"SELECT * FROM (SELECT {POST_COLUMNS}, count(*) OVER () FROM posts"  # noqa: S608
                f" WHERE {matching}) AS matching"
                " WHERE due_at > %s OR (due_at = %s AND id > %s)"
                " ORDER BY due_at, id OFFSET %s LIMIT %s"
            )
            page_params = (*params, after.due_at, after.due_at, after.id, offset, limit)
        rows, counted = await self._fetch_page(
            page, page_params, None if after is None and not offset else (count, tuple(params))
        )
        return [_post(row) for row in rows], counted

    async def _fetch_page(
        self,
        page: str,
        page_params: tuple[Any, ...],
        count: tuple[str, tuple[Any, ...]] | None,
    ) -> tuple[list[tuple[Any, ...]], int]:
        """The page with its count, one prepared statement. An empty page carries no
        count: it is 0 unless the page starts after some posts (`count` is given for
        that case), when the count statement follows on the same connection."""

        async def run(
            connection: PooledConnection,
        ) -> tuple[list[tuple[Any, ...]], int]:
            cursor = connection.kept_cursor("reads")
            await cursor.execute(page, page_params, prepare=True)
            rows = await cursor.fetchall()
            if rows:
                return rows, int(rows[0][-1])
            if count is None:
                return rows, 0
            await cursor.execute(*count, prepare=True)
            total = await cursor.fetchone()
            return rows, int(total[0]) if total is not None else 0

        return await self._with_connection(run)

    async def _fetch_one(self, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        async def run(
            connection: PooledConnection,
        ) -> tuple[Any, ...] | None:
            cursor = connection.kept_cursor("reads")
            await cursor.execute(query, params, prepare=True)
            return await cursor.fetchone()

        return await self._with_connection(run)


def _scheduled_conditions(query: ScheduledQuery) -> tuple[list[str], list[Any]]:
    """The filters of a ScheduledQuery, as SQL text and parameters."""
    where = ["user_id = %s", "state = %s", "due_at IS NOT NULL"]
    params: list[Any] = [query.user_id, query.state.value]
    if query.account_id is not None:
        where.append("account_id = %s")
        params.append(query.account_id)
    if query.priority is not None:
        where.append("priority = %s")
        params.append(int(query.priority))
    if query.start is not None:
        where.append("due_at >= %s")
        params.append(query.start)
    if query.end is not None:
        where.append("due_at < %s")
        params.append(query.end)
    return where, params
