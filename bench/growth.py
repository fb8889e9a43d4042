"""Section 4 (storage): schedule, list and claim latency with a small and a large
posts table, the plans PostgreSQL picks for their statements, and whether those
plans use the indexes.

The calls go through the service's own use cases and queue in this process (no
gRPC), so what changes between the two sizes is only the table. The measured
user's data stays the same size; the filler belongs to other users and accounts,
in the mix a live table holds (mostly published, a third still queued ahead, some
drafts).
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bench.common import (
    POST_COLUMNS,
    Report,
    Row,
    copy_rows,
    fresh_database,
    log,
    median,
    new_key,
    percentile,
    post_row,
    seed_accounts,
)
from post_management.adapters.clock import SystemClock
from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.async_reads import AsyncPool, AsyncPostReads
from post_management.adapters.db.async_unit_of_work import AsyncSqlUnitOfWorkFactory
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.publish_queue import SqlPublishQueue
from post_management.domain.auth import Principal, Role
from post_management.domain.conflicts import ConflictPolicy
from post_management.domain.privacy import Pseudonyms
from post_management.domain.requested_time import RequestedTime, parse_requested_time
from post_management.services.scheduling.listing import (
    Paging,
    ScheduledFilter,
    ScheduledListing,
)
from post_management.services.scheduling.scheduling import SchedulingService
from post_management.services.scheduling.support import ScheduleRequest

T = TypeVar("T")
USERS = 10
ACCOUNTS = 100  # the measured user's accounts; a claim takes one post per account
POSTS_PER_USER = 100
FILLER_ACCOUNTS = 2_000
FILLER_USERS = 500


@dataclass
class Params:
    small: int = 10_000
    large: int = 1_000_000
    samples: int = 300  # schedule and list calls per size
    claims: int = 30  # claim batches (of 100) per size


def quick_params() -> Params:
    return Params(large=100_000, samples=100, claims=10)


class Statements:
    """Every statement an engine runs while `capture` is on, for EXPLAIN."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.capture = False
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.capture:
            self.seen.append((statement, params))


class _Recorded:
    """A psycopg connection (or cursor) whose statements `Statements` sees too."""

    def __init__(self, inner: Any, statements: Statements) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_statements", statements)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)  # a cursor's row_factory, say

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self._statements._record(None, None, str(query), params)
        result = await self._inner.execute(query, params, **kwargs)
        return self if result is self._inner else result

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _RecordedCursor(self._inner.cursor(*args, **kwargs), self._statements)

    def kept_cursor(self, purpose: str) -> Any:
        return _RecordedCursor(self._inner.kept_cursor(purpose), self._statements)


class _RecordedCursor(_Recorded):
    async def __aenter__(self) -> _RecordedCursor:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


class RecordedPool(AsyncPool):
    """The commands' pool, its units of work's statements recorded for EXPLAIN."""

    def __init__(self, url: str, statements: Statements) -> None:
        super().__init__(url, min_size=1, max_size=2, name="bench-commands")
        self._statements = statements

    async def checkout(self) -> Any:
        return _Recorded(await super().checkout(), self._statements)

    async def release(self, connection: Any) -> None:
        await super().release(connection._inner)


class RecordedPostReads(AsyncPostReads):
    """ListScheduledPosts' reads, their statements recorded for EXPLAIN."""

    def __init__(self, url: str, statements: Statements) -> None:
        super().__init__(url, min_size=1, max_size=2, name="bench-reads")
        self._statements = statements

    async def _with_connection(self, run: Callable[[Any], Awaitable[T]]) -> T:
        async def recorded(connection: Any) -> T:
            return await run(_Recorded(connection, self._statements))

        return await super()._with_connection(recorded)


class Bench:
    def __init__(self, url: str, key: str) -> None:
        self.engine = make_engine(url)
        self.statements = Statements(self.engine)
        box = FernetBox([key])
        pseudonyms = Pseudonyms(secrets.token_bytes(32))
        # SchedulePost runs on the asynchronous unit of work, on a loop of its own here.
        self.loop = asyncio.new_event_loop()
        self.reads = RecordedPool(url, self.statements)
        self.loop.run_until_complete(self.reads.open())
        self.scheduling = SchedulingService(
            AsyncSqlUnitOfWorkFactory(self.reads, box, pseudonyms), SystemClock()
        )
        # ListScheduledPosts' path as served: the listing over the asynchronous reads.
        self.post_reads = RecordedPostReads(url, self.statements)
        self.loop.run_until_complete(self.post_reads.open())
        self.listing = ScheduledListing(self.post_reads)
        self.queue = SqlPublishQueue(self.engine, box)
        self.principal = Principal("bench", Role.SERVICE)
        self.rng = random.Random(11)
        self.accounts = seed_accounts(self.engine, key, ACCOUNTS, USERS, "g")
        self.filler_accounts = seed_accounts(self.engine, key, FILLER_ACCOUNTS, FILLER_USERS, "f")
        now = datetime.now(UTC)
        rows = []
        self.owned: list[tuple[uuid.UUID, str]] = []
        for i in range(USERS * POSTS_PER_USER):
            user = f"g-user-{i % ACCOUNTS % USERS}"
            due = now + timedelta(minutes=self.rng.randrange(120, 200 * 24 * 60))
            row = post_row(user, self.accounts[i % ACCOUNTS], f"g post {i}", "SCHEDULED", due, now)
            rows.append(row)
            self.owned.append((row[0], user))
        copy_rows(self.engine, "posts", POST_COLUMNS, iter(rows))
        self.stored = len(rows)

    def fill(self, total: int) -> None:
        """COPY filler rows until the table holds `total` posts."""
        wanted = total - self.stored
        if wanted <= 0:
            return
        now = datetime.now(UTC)
        rng = random.Random(total)

        def rows() -> Iterator[tuple[Any, ...]]:
            for i in range(wanted):
                n = self.stored + i
                account = self.filler_accounts[n % FILLER_ACCOUNTS]
                user = f"f-user-{n % FILLER_ACCOUNTS % FILLER_USERS}"
                kind = rng.random()
                if kind < 0.6:
                    at = now - timedelta(minutes=rng.randrange(10, 90 * 24 * 60))
                    yield post_row(user, account, f"f {n}", "PUBLISHED", at, now, published_at=at)
                elif kind < 0.9:
                    at = now + timedelta(minutes=rng.randrange(10, 300 * 24 * 60))
                    yield post_row(user, account, f"f {n}", "SCHEDULED", at, now, rng.randint(1, 4))
                else:
                    yield post_row(user, account, f"f {n}", "DRAFT", None, now)

        started = time.monotonic()
        copy_rows(self.engine, "posts", POST_COLUMNS, rows())
        with self.engine.connect() as connection:
            connection.execute(text("ANALYZE posts"))
            connection.execute(text("ANALYZE accounts"))
            connection.commit()
        self.stored = total
        log(f"growth: {total:,} posts stored ({time.monotonic() - started:.1f} s to load)")

    def _future(self) -> RequestedTime | None:
        at = datetime.now(UTC) + timedelta(minutes=self.rng.randrange(120, 300 * 24 * 60))
        return parse_requested_time(
            at.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        )

    def schedule_once(self) -> None:
        post_id, user = self.rng.choice(self.owned)
        request = ScheduleRequest(
            post_id, user, self._future(), conflict_policy=ConflictPolicy.MOVE
        )
        self.loop.run_until_complete(self.scheduling.schedule(self.principal, request))

    def list_once(self) -> None:
        user = f"g-user-{self.rng.randrange(USERS)}"
        self.loop.run_until_complete(
            self.listing.list(self.principal, ScheduledFilter(user_id=user), Paging(limit=20))
        )

    def claim_once(self, capture: bool = False) -> float:
        """100 due posts (one per account) claimed in one batch, then put back."""
        now = datetime.now(UTC)
        due_ids = [self.owned[i][0] for i in range(ACCOUNTS)]
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE posts SET state = 'SCHEDULED', due_at = :due, attempt_id = NULL "
                    "WHERE id = ANY(:ids)"
                ),
                {"due": now - timedelta(seconds=1), "ids": due_ids},
            )
        began = time.perf_counter()
        self.statements.capture = capture
        try:
            claims = self.queue.claim_due(100, timedelta(seconds=90))
        finally:
            self.statements.capture = False
        took = time.perf_counter() - began
        with self.engine.begin() as connection:
            # Back in the queue, out of the way: the next round starts alike.
            connection.execute(
                text(
                    "UPDATE posts SET state = 'SCHEDULED', due_at = :later, attempt_id = NULL, "
                    "lease_expires_at = NULL WHERE id = ANY(:ids)"
                ),
                {"later": now + timedelta(days=30), "ids": due_ids},
            )
        if len(claims) != ACCOUNTS:
            raise RuntimeError(f"claimed {len(claims)} of {ACCOUNTS} due posts")
        return took

    def timed(self, call: Callable[[], object], n: int) -> list[float]:
        out = []
        for _ in range(n):
            began = time.perf_counter()
            call()
            out.append(time.perf_counter() - began)
        return out

    def measure(self, params: Params) -> dict[str, list[float]]:
        # Warm the caches and the statement cache first.
        self.timed(self.schedule_once, 20)
        self.timed(self.list_once, 20)
        return {
            "schedule": self.timed(self.schedule_once, params.samples),
            "list": self.timed(self.list_once, params.samples),
            "claim": [self.claim_once() for _ in range(params.claims)],
        }

    def plans(self) -> dict[str, list[str]]:
        """EXPLAIN of every statement one schedule, one list and one claim run."""
        found: dict[str, list[str]] = {}
        paths: tuple[tuple[str, Callable[[], object]], ...] = (
            ("schedule", self.schedule_once),
            ("list", self.list_once),
            ("claim", lambda: self.claim_once(capture=True)),
        )
        for name, call in paths:
            self.statements.seen.clear()
            self.statements.capture = name != "claim"
            try:
                call()
            finally:
                self.statements.capture = False
            found[name] = [
                short(self._explain(statement, params))
                for statement, params in self.statements.seen
                if _touches_posts(statement)
            ]
        return found

    def _explain(self, statement: str, params: Any) -> str:
        if isinstance(params, list | tuple) and params and isinstance(params[0], dict):
            params = params[0]  # executemany: one row's plan is the plan
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, params).all()
            connection.rollback()
        return "\n".join(r[0] for r in rows)


def _touches_posts(statement: str) -> bool:
    return bool(re.search(r"\bposts\b", statement)) and not statement.lstrip().upper().startswith(
        ("INSERT INTO POST_ATTEMPTS", "SAVEPOINT", "RELEASE")
    )


# The indexes each path is built on (src/post_management/adapters/db/schema.py).
EXPECTED = {
    "schedule": ("pk_posts", "ix_posts_account_due"),
    "list": ("ix_posts_user_created",),
    "claim": ("ix_posts_due_scheduled",),
}


def uses_indexes(name: str, plans: list[str]) -> bool:
    """No sequential scan of posts, and the path's own indexes are used."""
    joined = "\n".join(plans)
    if not plans or re.search(r"Seq Scan on posts\b", joined):
        return False
    return all(index in joined for index in EXPECTED[name])


def short(plan: str) -> str:
    """Long literal lists (ids) cut, for reading."""
    return re.sub(r"'\{[^}]{60,}\}'", "'{...}'", plan)


def run(report: Report, params: Params) -> None:
    key = new_key()
    results: dict[int, dict[str, list[float]]] = {}
    plans: dict[int, dict[str, list[str]]] = {}
    with fresh_database() as url:
        bench = Bench(url, key)
        try:
            for size in (params.small, params.large):
                bench.fill(size)
                results[size] = bench.measure(params)
                plans[size] = bench.plans()
        finally:
            bench.loop.run_until_complete(bench.reads.close())
            bench.loop.run_until_complete(bench.post_reads.close())
            bench.loop.close()
            bench.engine.dispose()
    report.details["growth_plans"] = plans
    small, large = params.small, params.large
    for name in ("schedule", "list", "claim"):
        a, b = results[small][name], results[large][name]
        p50a, p50b = median(a) * 1000, median(b) * 1000
        ratio = p50b / p50a if p50a else 0.0
        note = (
            f"p50 {p50a:.2f} -> {p50b:.2f} ms, p99 {percentile(a, 99) * 1000:.2f} -> "
            f"{percentile(b, 99) * 1000:.2f} ms ({small:,} -> {large:,} posts)"
        )
        if name == "claim":
            note += ", per batch of 100"
        report.add(
            Row(
                "4 growth",
                f"{name} latency {large:,} / {small:,}",
                ratio,
                "x",
                "<= 1.5x",
                ratio <= 1.5,
                note,
            )
        )
        indexed = uses_indexes(name, plans[large][name])
        report.add(
            Row(
                "4 growth",
                f"{name} plans use indexes",
                len(plans[large][name]),
                "statements",
                "index scans only",
                indexed,
                ", ".join(EXPECTED[name]),
            )
        )
