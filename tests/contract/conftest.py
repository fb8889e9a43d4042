"""Each port's contract runs on both implementations: the memory adapters and the
PostgreSQL ones (a fresh database of the machine's server, emptied before each test)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, event, text

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.analytics_repository import AdvisoryLeaderLock
from post_management.adapters.db.async_privacy import AsyncSqlPrivacyStore
from post_management.adapters.db.async_reads import AsyncPool, AsyncPostReads
from post_management.adapters.db.async_unit_of_work import AsyncSqlUnitOfWorkFactory
from post_management.adapters.db.clock import TEST_OFFSET_SETTING, DatabaseClock
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.media_repository import SqlMediaUploads
from post_management.adapters.db.privacy_repository import SqlPrivacyStore
from post_management.adapters.db.publish_queue import SqlPublishQueue
from post_management.adapters.db.spend_ledger import SqlSpendMeter
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.kafka.serialization import outbox_payload
from post_management.adapters.memory.clock import SettableClock
from post_management.adapters.memory.composition import memory_adapters
from post_management.adapters.memory.repositories import MemoryErasureTombstones
from post_management.domain.events import DomainEvent
from post_management.domain.privacy import Pseudonyms
from post_management.domain.x_spend import PriceTable
from post_management.ports.analytics import LeaderLock
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.media import MediaUploads
from post_management.ports.post_reads import AsyncPostReader, AsyncScheduleReader
from post_management.ports.privacy import AsyncPrivacyStore, PrivacyStore
from post_management.ports.publishing import PublishQueue
from post_management.ports.unit_of_work import UnitOfWorkFactory
from post_management.ports.x_spend import SpendMeter
from tests.conftest import truncate

IMPLEMENTATIONS = ["memory", "postgres"]
T = TypeVar("T")


class PostReads(AsyncPostReader, AsyncScheduleReader, Protocol):
    """The request path's reads (ports/post_reads.py), both of them."""


@dataclass(frozen=True)
class StoredEvent:
    """An outbox row as its implementation keeps it; `payload` is what the relay would
    send (PostgreSQL stores it; the memory outbox keeps the typed event it comes from)."""

    event_id: uuid.UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: DomainEvent) -> StoredEvent:
        """What an implementation must have stored for `event`."""
        fields = (event.event_type, event.aggregate_type, event.aggregate_id, event.occurred_at)
        return cls(event.event_id, *fields, outbox_payload(event))


class DatabaseTime:
    """The database's clock, moved forward for this engine's connections by the
    test-only session offset (adapters/db/clock.py)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._offset = timedelta(0)
        self._lock = threading.Lock()
        event.listen(engine, "checkout", self._on_checkout)

    def _on_checkout(self, connection: Any, record: Any, proxy: Any) -> None:
        with self._lock:
            seconds = self._offset.total_seconds()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config(%s, %s, false)", (TEST_OFFSET_SETTING, f"{seconds} seconds")
            )

    def now(self) -> datetime:
        return DatabaseClock(self._engine).now()

    def advance(self, by: timedelta) -> None:
        with self._lock:
            self._offset += by


class MemoryTime:
    def __init__(self, clock: SettableClock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now()

    def advance(self, by: timedelta) -> None:
        self._clock.advance(by)


@dataclass
class World:
    """One implementation of the storage ports, and what a test needs around them."""

    name: str
    uow: UnitOfWorkFactory
    queue: PublishQueue
    time: DatabaseTime | MemoryTime
    # Leaves the user's erasure tombstone (what the privacy store's erasure writes).
    erase: Callable[[str], None]
    # The audit trail of one resource, oldest first: (actor, action, after).
    audit: Callable[[uuid.UUID], list[tuple[str, str, Any]]]
    # Every outbox row, in the order the relay would send them.
    outbox: Callable[[], list[StoredEvent]]
    # The engine's ports outside the unit of work, each call its own transaction.
    uploads: MediaUploads
    meter: SpendMeter
    # The asynchronous unit of work on the same rows, opened on the running loop.
    async_uow: Callable[[], AbstractAsyncContextManager[AsyncUnitOfWorkFactory]]
    # The request path's reads of committed rows, opened on the running loop.
    post_reads: Callable[[], AbstractAsyncContextManager[PostReads]]
    # The privacy RPCs' store on the rows of an opened asynchronous factory.
    privacy: Callable[[AsyncUnitOfWorkFactory], AsyncPrivacyStore]
    # The pseudonyms erased users' rows are kept under.
    pseudonyms: Pseudonyms
    # Every erasure tombstone kept (its user hash).
    tombstones: Callable[[], set[str]]
    # Every queued removal on X: (user hash, X post id, whether tokens are kept).
    removals: Callable[[], list[tuple[str, str, bool]]]
    # From now on the erasure's own audit row cannot be written: the error it raises.
    fail_erasure_record: Callable[[], type[Exception]]
    # The background jobs' privacy store (removals on X, retention) on the same rows.
    privacy_jobs: PrivacyStore
    # A caller's handle on the one leader lock every handle of this world shares (as
    # replicas share the database's advisory lock).
    leader_lock: Callable[[], LeaderLock]


def _memory_world() -> World:
    pseudonyms = Pseudonyms(secrets.token_bytes(32))
    adapters = memory_adapters(datetime.now(UTC), pseudonyms)
    store = adapters.store
    tombstones = MemoryErasureTombstones(store, pseudonyms)

    def audit(resource_id: uuid.UUID) -> list[tuple[str, str, Any]]:
        return [
            (e.actor, e.action, e.after)
            for _, e in store.tables.audit
            if e.resource_id == resource_id
        ]

    def outbox() -> list[StoredEvent]:
        with store.lock:
            kept = list(store.tables.outbox)
        return [StoredEvent.of(event) for event in kept]

    def fail_erasure_record() -> type[Exception]:
        store.tables.audit = _RefusingErasureRecords(store.tables.audit)
        return RuntimeError

    return World(
        "memory",
        adapters.uow,
        adapters.queue,
        MemoryTime(adapters.settable_clock),
        tombstones.erase,
        audit,
        outbox,
        adapters.uploads,
        adapters.meter,
        lambda: _ready(adapters.async_uow),
        lambda: _ready(adapters.post_reads),
        privacy=lambda _: adapters.privacy,
        pseudonyms=pseudonyms,
        tombstones=lambda: set(store.tables.erased_users),
        removals=lambda: [
            (row.user_hash, row.x_post_id, row.credentials is not None)
            for row in store.tables.x_removals
        ],
        fail_erasure_record=fail_erasure_record,
        privacy_jobs=adapters.privacy_jobs,
        leader_lock=lambda: adapters.leader_lock,
    )


class _RefusingErasureRecords(list[Any]):
    """The memory audit log, refusing the erasure's own row (copied as it is, so a
    rolled-back unit of work keeps refusing)."""

    def append(self, row: Any) -> None:
        if row[1].action == "user.erase":
            raise RuntimeError("the erasure's audit row cannot be written")
        super().append(row)


def read(world: World, reads: Callable[[AsyncUnitOfWork], Awaitable[T]]) -> T:
    """What `reads` answers in an asynchronous unit of work of its own, on a loop of
    its own."""

    async def opened() -> T:
        async with world.async_uow() as factory, factory() as work:
            return await reads(work)

    return asyncio.run(opened())


@asynccontextmanager
async def _ready(opened: T) -> AsyncIterator[T]:
    yield opened


@asynccontextmanager
async def _sql_post_reads(url: str) -> AsyncIterator[PostReads]:
    reads = AsyncPostReads(url, min_size=1, max_size=4)
    await reads.open()
    try:
        yield reads
    finally:
        await reads.close()


def _async_sql(
    url: str, box: FernetBox, pseudonyms: Pseudonyms
) -> AbstractAsyncContextManager[AsyncUnitOfWorkFactory]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[AsyncUnitOfWorkFactory]:
        database = AsyncPool(url, min_size=1, max_size=4, name="commands")
        await database.open()
        try:
            yield AsyncSqlUnitOfWorkFactory(database, box, pseudonyms)
        finally:
            await database.close()

    return opened()


@pytest.fixture(params=IMPLEMENTATIONS)
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "memory":
        yield _memory_world()
        return
    url: str = request.getfixturevalue("machine_database")
    truncate(url)
    engine = make_engine(url)
    box = FernetBox([Fernet.generate_key().decode()])
    pseudonyms = Pseudonyms(secrets.token_bytes(32))

    def erase(user_id: str) -> None:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO erased_users (user_hash, erased_at) VALUES (:hash, now())"),
                {"hash": pseudonyms.of(user_id)},
            )

    def audit(resource_id: uuid.UUID) -> list[tuple[str, str, Any]]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT actor, action, after FROM audit_log WHERE resource_id = :id ORDER BY id"
                ),
                {"id": resource_id},
            ).all()
        return [(row.actor, row.action, row.after) for row in rows]

    def outbox() -> list[StoredEvent]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT event_id, event_type, aggregate_type, aggregate_id, occurred_at,"
                    " payload FROM outbox ORDER BY id"
                )
            ).all()
        return [StoredEvent(*row) for row in rows]

    def tombstones() -> set[str]:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT user_hash FROM erased_users")).scalars())

    def removals() -> list[tuple[str, str, bool]]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT user_hash, x_post_id, credentials_encrypted IS NOT NULL"
                    " FROM x_removals ORDER BY id"
                )
            ).all()
        return [(row[0], row[1], row[2]) for row in rows]

    def fail_erasure_record() -> type[Exception]:
        with engine.begin() as connection:
            for statement in _REFUSE_ERASURE_RECORDS:
                connection.execute(text(statement))
        return psycopg.errors.RaiseException

    try:
        yield World(
            "postgres",
            SqlUnitOfWorkFactory(engine, box, pseudonyms),
            SqlPublishQueue(engine, box),
            DatabaseTime(engine),
            erase,
            audit,
            outbox,
            SqlMediaUploads(engine),
            SqlSpendMeter(engine, PriceTable()),
            lambda: _async_sql(url, box, pseudonyms),
            lambda: _sql_post_reads(url),
            privacy=lambda factory: AsyncSqlPrivacyStore(_sql_factory(factory).database),
            pseudonyms=pseudonyms,
            tombstones=tombstones,
            removals=removals,
            fail_erasure_record=fail_erasure_record,
            privacy_jobs=SqlPrivacyStore(engine, box),
            leader_lock=lambda: AdvisoryLeaderLock(engine),
        )
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER IF EXISTS refuse_erasure_records ON audit_log"))
        engine.dispose()


def _sql_factory(factory: AsyncUnitOfWorkFactory) -> AsyncSqlUnitOfWorkFactory:
    assert isinstance(factory, AsyncSqlUnitOfWorkFactory)
    return factory


# The lever of fail_erasure_record: a trigger that refuses the erasure's own row.
_REFUSE_ERASURE_RECORDS = [
    """
    CREATE OR REPLACE FUNCTION refuse_erasure_records() RETURNS trigger AS $$
    BEGIN
        IF NEW.action = 'user.erase' THEN
            RAISE EXCEPTION 'the erasure''s audit row cannot be written';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER refuse_erasure_records BEFORE INSERT ON audit_log"
    " FOR EACH ROW EXECUTE FUNCTION refuse_erasure_records()",
]


# --- the X API: the memory one, and the tweepy adapter against the emulator ---------

from post_management.adapters.memory.x_api import ANSWER_LOST, MemoryXApi  # noqa: E402
from post_management.ports.x_api import UnknownOutcome, XApi  # noqa: E402


@dataclass
class XWorld:
    """One implementation of the X API, and the levers a test pulls on its X."""

    name: str
    api: XApi
    suspend: Callable[[str], None]
    revoke: Callable[[str], None]
    # The next create-post: X acts, the answer is lost / X fails before acting.
    lose_next_answer: Callable[[], None]
    fail_next_create: Callable[[], None]


@pytest.fixture(params=["memory", "emulator"])
def x_world(request: pytest.FixtureRequest) -> XWorld:
    if request.param == "memory":
        memory = MemoryXApi()
        return XWorld(
            "memory",
            memory,
            memory.suspend,
            memory.revoke,
            lambda: memory.script_create(ANSWER_LOST),
            lambda: memory.script_create(UnknownOutcome("X answered 503")),
        )
    control = request.getfixturevalue("emulator").control
    return XWorld(
        "emulator",
        request.getfixturevalue("x_api"),
        control.suspend,
        control.revoke,
        lambda: control.inject_fault("POST", "/2/tweets", "accept_then_drop"),
        lambda: control.inject_fault("POST", "/2/tweets", "status", status=503),
    )
