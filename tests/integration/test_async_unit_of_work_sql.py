"""What only PostgreSQL shows of the asynchronous unit of work: JSON nulls stored as
the synchronous unit of work stores them, connections that died in the pool, a call
cancelled after its COMMIT, and the commands' pool kept apart from the reads'."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from xmp.posts.v1 import post_service_pb2, scheduling_service_pb2, scheduling_service_pb2_grpc

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db import async_unit_of_work
from post_management.adapters.db.async_reads import AsyncPool, libpq_url
from post_management.adapters.db.async_statements import one_row
from post_management.adapters.db.async_unit_of_work import (
    AsyncSqlUnitOfWork,
    AsyncSqlUnitOfWorkFactory,
)
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.domain.errors import Unavailable
from post_management.domain.post import Post, PostState
from post_management.domain.privacy import Pseudonyms
from post_management.ports.repositories import AuditEntry
from tests.contract.builders import a_post, an_account, store
from tests.integration.grpc_fixtures import Client

BOX = FernetBox([Fernet.generate_key().decode()])
PSEUDONYMS = Pseudonyms(secrets.token_bytes(32))


def _entry(resource_id: uuid.UUID, action: str) -> AuditEntry:
    return AuditEntry("user:alice", action, "post", resource_id, "alice", None, {"a": 1})


def _stored_drafts(engine: Engine, count: int) -> list[Post]:
    """`count` drafts of one new account, stored through the synchronous unit of work."""
    now = datetime.now(UTC)
    account = an_account(now)
    drafts = [a_post(account, now, state=PostState.DRAFT, due_in=None) for _ in range(count)]
    store(SqlUnitOfWorkFactory(engine, BOX, PSEUDONYMS), account, *drafts)
    return drafts


def _count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statement of each round trip the asynchronous units of work make from now
    on, in order (each trip's own statement, after its BEGIN and held writes)."""
    trips: list[str] = []
    trip = async_unit_of_work._Session._trip

    async def counted(self: async_unit_of_work._Session, sql: str, *args: object) -> object:
        trips.append(sql)
        return await trip(self, sql, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(async_unit_of_work._Session, "_trip", counted)
    return trips


@contextlib.asynccontextmanager
async def _one_unit(database: str) -> AsyncIterator[AsyncSqlUnitOfWork]:
    """A unit of work on a pool of one connection, closed after it."""
    pool = AsyncPool(database, min_size=1, max_size=1, name="one-unit")
    await pool.open()
    try:
        async with AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)() as unit:
            yield unit
    finally:
        await pool.close()


async def _locked(unit: AsyncSqlUnitOfWork, post_id: uuid.UUID) -> Post:
    post = await unit.posts.get(post_id, for_update=True)
    assert post is not None
    return post


def _kill_pool_connections(engine: Engine) -> int:
    """Terminate the pools' connections to this database (not the engine's own)."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = '' AND pid <> pg_backend_pid()"
                    " AND datname = current_database() AND backend_type = 'client backend'"
                    " AND query NOT LIKE '%pg_terminate_backend%'"
                )
            ).scalar_one()
        )


async def test_a_missing_before_is_json_null_as_the_synchronous_unit_stores_it(
    machine_database: str, engine: Engine
) -> None:
    resource = uuid.uuid4()
    with SqlUnitOfWorkFactory(engine, BOX, PSEUDONYMS)() as work:
        work.audit.record(_entry(resource, "sync"))
        work.commit()
    pool = AsyncPool(machine_database, min_size=1, max_size=1, name="commands")
    await pool.open()
    try:
        async with AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)() as unit:
            await unit.audit.record(_entry(resource, "async"))
            await unit.commit()
    finally:
        await pool.close()
    with engine.connect() as connection:
        kinds = connection.execute(
            text("SELECT action, jsonb_typeof(before) FROM audit_log WHERE resource_id = :id"),
            {"id": resource},
        ).all()
    assert sorted(kinds) == [("async", "null"), ("sync", "null")]


async def test_connections_that_died_in_the_pool_cost_no_call(
    machine_database: str, engine: Engine
) -> None:
    (post,) = _stored_drafts(engine, 1)
    pool = AsyncPool(machine_database, min_size=3, max_size=3, name="dying")
    await pool.open()
    uow = AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)
    try:

        async def read() -> None:
            async with uow() as unit:
                assert await unit.posts.get(post.id) is not None
                await asyncio.sleep(0.05)  # all three connections out at once

        await asyncio.gather(read(), read(), read())
        killed = _kill_pool_connections(engine)  # a database restart, as the pool sees it
        assert killed >= 3
        for _ in range(3):
            async with uow() as unit:
                assert await unit.posts.get(post.id) is not None
    finally:
        await pool.close()


@pytest.mark.parametrize("cancelled", ["after", "before"])
async def test_a_call_cancelled_after_its_commit_still_tells_the_cache(
    machine_database: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, cancelled: str
) -> None:
    """The cancellation lands as the COMMIT's answer comes back (after) or before the
    COMMIT is sent (before): the cache hears of the first only."""
    (post,) = _stored_drafts(engine, 1)
    told: list[str] = []

    async def hook() -> None:
        told.append("told")

    send = async_unit_of_work._Session.commit

    async def cancelled_commit(session: async_unit_of_work._Session) -> None:
        if cancelled == "after":
            await send(session)
        raise asyncio.CancelledError

    monkeypatch.setattr(async_unit_of_work._Session, "commit", cancelled_commit)
    pool = AsyncPool(machine_database, min_size=1, max_size=1, name="cancelled")
    await pool.open()
    uow = AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS, on_post_writes=hook)
    try:
        with pytest.raises(asyncio.CancelledError):
            async with uow() as unit:
                loaded = await unit.posts.get(post.id)
                assert loaded is not None
                loaded.text = "edited"
                assert await unit.posts.save(loaded, 1)
                await unit.commit()
        # The connection went back usable either way.
        monkeypatch.undo()
        async with uow() as unit:
            assert await unit.posts.get(post.id) is not None
    finally:
        await pool.close()
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT text, version FROM posts WHERE id = :id"), {"id": post.id}
        ).one()
    if cancelled == "after":
        assert (tuple(row), told) == (("edited", 2), ["told"])
    else:
        assert (tuple(row), told) == ((post.text, 1), [])


def test_reads_answer_while_every_command_waits_for_a_lock(alice: Client, engine: Engine) -> None:
    account = alice.create_account("4242")
    post = alice.create_post(account.id, "held")
    stub = scheduling_service_pb2_grpc.PostSchedulingServiceStub(alice.channel)
    request = scheduling_service_pb2.SchedulePostRequest(post_id=post.id, user_id="alice")
    waiting = []
    with engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE"), {"id": account.id})
        # More schedules than any pool has connections, all waiting on the account.
        for _ in range(24):
            waiting.append(stub.SchedulePost.future(request, metadata=alice.metadata, timeout=30))
        time.sleep(1.0)
        started = time.monotonic()
        found = alice.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=post.id), metadata=alice.metadata, timeout=10
        )
        assert found.id == post.id and time.monotonic() - started < 2.0
        holder.commit()
    codes = []
    for call in waiting:
        try:
            call.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())
    # The first schedules the post; the rest find it scheduled (or replay nothing).
    assert codes.count(grpc.StatusCode.OK) >= 1
    assert grpc.StatusCode.UNAVAILABLE not in codes
    assert not any(thread.name.startswith("Dummy") for thread in threading.enumerate())


async def test_a_dead_connection_with_no_fresh_one_to_take_goes_back_once(
    machine_database: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first statement finds its connection dead and no other can be had (the
    database still down): UNAVAILABLE, and the dead connection is handed back to the
    pool once, not a second time as the unit of work ends (the pool would replace it
    twice and hold a connection past its size)."""
    (post,) = _stored_drafts(engine, 1)
    pool = AsyncPool(machine_database, min_size=1, max_size=1, name="no-fresh-one")
    await pool.open()
    uow = AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)
    returned: list[int] = []
    release = pool.release

    async def counted_release(connection: async_unit_of_work.Connection) -> None:
        returned.append(id(connection))
        await release(connection)

    monkeypatch.setattr(pool, "release", counted_release)
    try:
        async with uow() as unit:  # the pool's one connection, used once
            assert await unit.posts.get(post.id) is not None
        _kill_pool_connections(engine)  # the database restarts under it
        checkout = pool.checkout
        taken = 0

        async def down_after_the_first() -> async_unit_of_work.Connection:
            nonlocal taken
            taken += 1
            if taken > 1:  # the replacement: none to be had
                raise Unavailable("the database is unavailable")
            return await checkout()

        monkeypatch.setattr(pool, "checkout", down_after_the_first)
        returned.clear()
        with pytest.raises(Unavailable):
            async with uow() as unit:
                await unit.posts.get(post.id)
        assert taken == 2 and len(returned) == 1
        monkeypatch.setattr(pool, "checkout", checkout)
        async with uow() as unit:  # the pool serves again, within its size
            assert await unit.posts.get(post.id) is not None
        await asyncio.sleep(0.2)
        assert pool._pool is not None
        stats = pool._pool.get_stats()
        assert stats["pool_available"] <= stats["pool_max"], stats
    finally:
        await pool.close()


async def test_a_first_trip_that_carries_the_commit_is_never_resent(
    machine_database: str, engine: Engine
) -> None:
    """A unit of work that only held writes sends BEGIN, them and COMMIT in one trip.
    When its connection is found dead there, the server may have committed before the
    connection went: UNAVAILABLE, and the writes are not sent again on another
    connection (they would be written twice). A read-only first trip is resent."""
    resource = uuid.uuid4()
    pool = AsyncPool(machine_database, min_size=1, max_size=1, name="commit-trip")
    await pool.open()
    uow = AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)
    try:
        async with uow() as unit:  # the pool's one connection, made and handed back
            await unit.audit.record(_entry(uuid.uuid4(), "warm"))
            await unit.commit()
        killed = _kill_pool_connections(engine)  # a database restart, as the pool sees it
        assert killed >= 1
        with pytest.raises(Unavailable):
            async with uow() as unit:
                await unit.audit.record(_entry(resource, "held"))
                await unit.commit()
        async with uow() as unit:  # the pool has a live connection again
            await unit.audit.record(_entry(resource, "after"))
            await unit.commit()
    finally:
        await pool.close()
    with engine.connect() as connection:
        actions = connection.execute(
            text("SELECT action FROM audit_log WHERE resource_id = :id"), {"id": resource}
        ).scalars()
        assert list(actions) == ["after"]


async def test_a_schedule_makes_two_round_trips_with_a_request_id_or_without(
    machine_database: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SchedulePost asks for its request id's row and the account's taken times once
    it holds the lock; both are read in the lock's round trip. The save of the post it
    holds locked goes with the COMMIT. So a schedule makes two trips, with a request
    id or without (and answers a replay the same)."""
    from post_management.adapters.clock import SystemClock
    from post_management.domain.auth import Principal, Role
    from post_management.domain.requested_time import parse_requested_time
    from post_management.services.scheduling.scheduling import SchedulingService
    from post_management.services.scheduling.support import ScheduleRequest

    now = datetime.now(UTC)
    posts = _stored_drafts(engine, 2)
    trips = _count_trips(monkeypatch)
    pool = AsyncPool(machine_database, min_size=1, max_size=1, name="trips")
    await pool.open()
    scheduling = SchedulingService(AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS), SystemClock())
    alice = Principal("alice", Role.USER)
    counts = []
    try:
        for post, request_id in ((posts[0], ""), (posts[1], "req-trips")):
            due = parse_requested_time((now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:00Z"))
            request = ScheduleRequest(post.id, "alice", due, request_id=request_id)
            trips.clear()
            first = await scheduling.schedule(alice, request)
            counts.append(len(trips))
        replay = await scheduling.schedule(alice, request)
    finally:
        await pool.close()
    # BEGIN with the lock, the request id's row and the taken times; the save and the
    # other held writes with the COMMIT.
    assert counts == [2, 2], counts
    assert trips[-1] == "COMMIT"
    assert replay.post.id == first.post.id and replay.post.version == first.post.version


async def test_held_saves_are_read_back_chain_and_refuse_a_stale_version(
    machine_database: str, engine: Engine
) -> None:
    """Saves of a post the unit holds locked go with the COMMIT; the unit still reads
    its own writes (held writes go before any later statement), saves the post again
    over the version it just saved, and a save at a version the row no longer has is
    answered False at once."""
    post = _stored_drafts(engine, 1)[0]
    async with _one_unit(machine_database) as unit:
        locked = await _locked(unit, post.id)
        first = locked.version
        locked.text = "once"
        assert await unit.posts.save(locked, first)  # held
        read = await unit.posts.get(post.id)
        assert read is not None and (read.text, read.version) == ("once", first + 1)
        locked.text = "twice"
        assert await unit.posts.save(locked, first + 1)  # held again, over the first
        assert not await unit.posts.save(locked, first)  # stale: answered at once
        await unit.commit()
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT text, version FROM posts WHERE id = :id"), {"id": post.id}
        ).one()
    assert tuple(stored) == ("twice", first + 2)


async def test_a_save_after_the_unit_changed_the_row_itself_is_answered_at_once(
    machine_database: str, engine: Engine
) -> None:
    """A post the unit locked and then deleted: the lock's version no longer counts,
    so a save is sent at once and answered False (not held to fail at the COMMIT)."""
    post = _stored_drafts(engine, 1)[0]
    async with _one_unit(machine_database) as unit:
        locked = await _locked(unit, post.id)
        assert await unit.posts.delete(post.id, locked.version)
        locked.text = "changed"
        assert not await unit.posts.save(locked, locked.version)


async def test_the_held_save_fails_its_statement_when_it_changes_no_row(
    machine_database: str, engine: Engine
) -> None:
    """The statement a held save is sent as (async_statements.one_row) changes the row
    it names, and fails (so its transaction does) when it changes none."""
    post = _stored_drafts(engine, 1)[0]
    update = "UPDATE posts SET text = %(text)s WHERE id = %(id)s AND version = %(version)s"
    async with await psycopg.AsyncConnection.connect(libpq_url(machine_database)) as connection:
        with pytest.raises(psycopg.errors.DivisionByZero):
            await connection.execute(
                one_row(update), {"text": "never", "id": post.id, "version": post.version + 7}
            )
        await connection.rollback()
        await connection.execute(
            one_row(update), {"text": "saved", "id": post.id, "version": post.version}
        )
        await connection.commit()
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT text FROM posts WHERE id = :id"), {"id": post.id}
        ).scalar_one()
    assert stored == "saved"


async def test_a_save_of_a_post_not_held_locked_is_answered_at_once(
    machine_database: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a post read FOR UPDATE in the unit is saved with the COMMIT: any other save
    makes its own round trip and answers False at a version the row no longer has."""
    post = _stored_drafts(engine, 1)[0]
    trips = _count_trips(monkeypatch)
    pool = AsyncPool(machine_database, min_size=1, max_size=1, name="unheld-save")
    await pool.open()
    try:
        async with AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)() as unit:
            read = await unit.posts.get(post.id)
            assert read is not None
            assert not await unit.posts.save(read, read.version + 1)  # another version
            assert await unit.posts.save(read, read.version)
            await unit.commit()
    finally:
        await pool.close()
    assert len(trips) == 4 and trips[-1] == "COMMIT"  # the read, each save, the COMMIT


async def test_a_commit_with_nothing_read_or_written_sends_nothing(
    machine_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No statement went, so no transaction is open: the commit has none to end and
    makes no round trip (not a BEGIN and a COMMIT for nothing)."""
    trips = _count_trips(monkeypatch)
    pool = AsyncPool(machine_database, min_size=1, max_size=1, name="no-trip")
    await pool.open()
    try:
        async with AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)() as unit:
            await unit.commit()
        async with AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)() as unit:
            await unit.audit.record(_entry(uuid.uuid4(), "held"))
            await unit.commit()
    finally:
        await pool.close()
    assert trips == ["COMMIT"]  # only the second: BEGIN, the held write and COMMIT
