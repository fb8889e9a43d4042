"""GetPost's asynchronous read path against real PostgreSQL: the same posts and the
same errors as the synchronous unit of work, and UNAVAILABLE when the database is."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from xmp.posts.v1 import post_service_pb2

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.async_reads import AsyncPostReads, PooledConnection, libpq_url
from post_management.adapters.db.async_unit_of_work import AsyncSqlUnitOfWorkFactory
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.memory.composition import memory_adapters
from post_management.domain.account import Account
from post_management.domain.auth import Principal, Role
from post_management.domain.date_range import parse_date_range
from post_management.domain.errors import NotFound, PermissionDenied, Unavailable
from post_management.domain.post import Post, PostState, Priority
from post_management.domain.privacy import Pseudonyms
from post_management.entrypoints.grpc.mapping import post_to_proto
from post_management.services.posts.posts import PostService
from post_management.services.posts.queries import PostQueries
from tests.conftest import MACHINE_PG, _fresh_database
from tests.contract.builders import a_post, an_account, store
from tests.integration.grpc_fixtures import Client
from tests.support.harness import RunningServer, settings_for


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


@pytest.fixture(scope="module")
def engine(database: str) -> Iterator[Engine]:
    engine = make_engine(database, pool_size=2)
    yield engine
    engine.dispose()


def _full_post(engine: Engine, user: str) -> uuid.UUID:
    """A post with every column set to something other than its default."""
    account, post, campaign = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=123456)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (id, user_id, handle, x_user_id, timezone, state, version,"
                " created_at, updated_at)"
                " VALUES (:id, :user, 'h', :x, 'UTC', 'ACTIVE', 1, :now, :now)"
            ),
            {"id": account, "user": user, "x": str(account.int % 10**12), "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO campaigns (id, user_id, name, created_at, updated_at)"
                " VALUES (:id, :user, 'c', :now, :now)"
            ),
            {"id": campaign, "user": user, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO posts (id, user_id, account_id, text, media_ids, reply_to_x_post_id,"
                " attachment_ids, thread, segment_x_post_ids, state, priority, due_at, timezone,"
                " published_at, x_post_id, attempt_count, last_error, version, campaign_id,"
                " created_at, updated_at) VALUES (:id, :user, :account, 'héllo ✓', '{m1,m2}',"
                " '17', :attachments, '{two,three}', '{11,12,13}', 'PUBLISHED', 1, :due,"
                " 'Europe/Paris', :published, '11', 2, 'was late', 7, :campaign, :created,"
                " :updated)"
            ),
            {
                "id": post,
                "user": user,
                "account": account,
                "attachments": [uuid.uuid4(), uuid.uuid4()],
                "due": now + timedelta(hours=1),
                "published": now + timedelta(hours=1, seconds=2),
                "campaign": campaign,
                "created": now - timedelta(days=1),
                "updated": now,
            },
        )
    return post


async def test_reads_the_same_post_as_the_unit_of_work(database: str, engine: Engine) -> None:
    post_id = _full_post(engine, "alice")
    uow = SqlUnitOfWorkFactory(
        engine, FernetBox.parse(Fernet.generate_key().decode()), Pseudonyms(b"k" * 32)
    )
    with uow() as unit:
        expected = unit.posts.get(post_id)
    reads = AsyncPostReads(database)
    await reads.open()
    try:
        assert expected is not None
        assert await reads.get(post_id) == expected
        assert await reads.get(uuid.uuid4()) is None
    finally:
        await reads.close()


async def test_same_answers_and_errors_as_the_post_service(database: str, engine: Engine) -> None:
    post_id = _full_post(engine, "alice")
    reads = AsyncPostReads(database)
    await reads.open()
    box = FernetBox.parse(Fernet.generate_key().decode())
    uow = AsyncSqlUnitOfWorkFactory(reads, box, Pseudonyms(b"k" * 32))
    service = PostService(uow, clock=None)  # type: ignore[arg-type]  # get reads no clock
    queries = PostQueries(reads, None)
    try:
        for principal in (Principal("alice", Role.USER), Principal("svc", Role.SERVICE)):
            assert await queries.get(principal, post_id) == await service.get(principal, post_id)
        with pytest.raises(PermissionDenied) as aservice_denied:
            await queries.get(Principal("bob", Role.USER), post_id)
        with pytest.raises(PermissionDenied) as service_denied:
            await service.get(Principal("bob", Role.USER), post_id)
        assert aservice_denied.value.reason == service_denied.value.reason
        missing = uuid.uuid4()
        with pytest.raises(NotFound) as aservice_missing:
            await queries.get(Principal("alice", Role.USER), missing)
        with pytest.raises(NotFound) as service_missing:
            await service.get(Principal("alice", Role.USER), missing)
        assert str(aservice_missing.value) == str(service_missing.value)
        assert (aservice_missing.value.reason, aservice_missing.value.metadata) == (
            service_missing.value.reason,
            service_missing.value.metadata,
        )
    finally:
        await reads.close()


async def test_a_dropped_connection_is_replaced_without_an_error(
    database: str, engine: Engine
) -> None:
    post_id = _full_post(engine, "alice")
    reads = AsyncPostReads(database, min_size=1, max_size=1)
    await reads.open()
    try:
        assert (await reads.get(post_id)) is not None
        name = make_url(database).database
        with engine.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalar_one()
        assert killed >= 1
        post = await reads.get(post_id)
        assert post is not None and post.id == post_id
    finally:
        await reads.close()


async def test_a_connection_keeps_one_cursor_for_its_reads(database: str, engine: Engine) -> None:
    """Reads on one pooled connection share its kept cursor (one per purpose), each
    reading its own rows; a cursor closed meanwhile is replaced."""
    first, second = _full_post(engine, "alice"), _full_post(engine, "bob")
    reads = AsyncPostReads(database, min_size=1, max_size=1)
    await reads.open()
    try:
        seen: list[psycopg.AsyncCursor[tuple[Any, ...]]] = []

        async def kept(connection: PooledConnection) -> psycopg.AsyncCursor[tuple[Any, ...]]:
            return connection.kept_cursor("reads")

        for post_id in (first, second):
            post = await reads.get(post_id)
            assert post is not None and post.id == post_id
            seen.append(await reads.read(kept))
        assert seen[0] is seen[1]

        async def text_cursor(connection: PooledConnection) -> psycopg.AsyncCursor[Any]:
            return connection.kept_cursor("answers")

        assert await reads.read(text_cursor) is not seen[0]
        await seen[0].close()
        post = await reads.get(first)
        assert post is not None and post.id == first
        assert await reads.read(kept) is not seen[0]
    finally:
        await reads.close()


async def test_unavailable_when_the_database_is_not_there(database: str) -> None:
    gone = make_url(database).set(database=f"pm_missing_{uuid.uuid4().hex[:8]}")
    reads = AsyncPostReads(gone.render_as_string(hide_password=False), checkout_timeout=0.5)
    with pytest.raises(Unavailable):  # not opened yet
        await reads.get(uuid.uuid4())
    await reads.open()
    try:
        with pytest.raises(Unavailable) as caught:
            await reads.get(uuid.uuid4())
        assert caught.value.reason == "DATABASE_UNAVAILABLE"
    finally:
        await reads.close()


def test_libpq_url_takes_any_scheme_the_operator_wrote() -> None:
    assert libpq_url("postgres://u:p@h:5/d") == "postgresql://u:p@h:5/d"
    assert libpq_url("postgresql+psycopg://u:p@h/d?sslmode=disable") == (
        "postgresql://u:p@h/d?sslmode=disable"
    )


@pytest.mark.parametrize("cache_seconds", [0.0, 5.0])
def test_get_post_over_grpc_answers_as_the_unit_of_work(
    database: str, tmp_path: Path, cache_seconds: float
) -> None:
    server = RunningServer(
        settings_for(database, tmp_path / "data", post_cache_ttl_seconds=cache_seconds)
    )
    alice, bob = Client(server, "alice"), Client(server, "bob")
    try:
        account = alice.create_account(str(uuid.uuid4().int % 10**12))
        created = alice.create_post(account.id, "over the loop", thread=["and more"])
        for _ in range(2):  # the second may come from the cache
            fetched = alice.posts.GetPost(
                post_service_pb2.GetPostRequest(post_id=created.id), metadata=alice.metadata
            )
            with server.container.infrastructure.uow() as unit:
                expected = unit.posts.get(uuid.UUID(created.id))
            assert expected is not None and fetched == post_to_proto(expected)
        for client, post_id, code in (
            (bob, created.id, grpc.StatusCode.PERMISSION_DENIED),
            (alice, str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
            (alice, "not-a-uuid", grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                client.posts.GetPost(
                    post_service_pb2.GetPostRequest(post_id=post_id), metadata=client.metadata
                )
            assert caught.value.code() == code
    finally:
        alice.channel.close()
        bob.channel.close()
        server.stop()


def _schedule_rows(user: str) -> list[Account | Post]:
    """Two accounts of `user` (and one of someone else) with posts over four
    priorities, several states and equal due times."""
    base = datetime(2031, 3, 10, 12, tzinfo=UTC)
    accounts = [an_account(base, user), an_account(base, user)]
    foreign = an_account(base, "someone-else")
    posts = []
    for i in range(30):
        post = a_post(
            accounts[i % 2],
            base - timedelta(days=1),
            state=(PostState.SCHEDULED, PostState.SCHEDULED, PostState.FAILED, PostState.DRAFT)[
                i % 4
            ],
            priority=Priority(1 + i % 4),
            # Pairs share a due time: the id breaks the tie.
            due_in=timedelta(days=1, hours=(i // 2) * 7) if i % 4 != 3 else None,
        )
        posts.append(post)
    return [*accounts, foreign, *posts]


async def test_scheduled_listing_answers_as_the_memory_twin(database: str, engine: Engine) -> None:
    """The listing over PostgreSQL and over the memory reads, on the same rows: the
    same pages, tokens, counts and refusals."""
    from post_management.services.scheduling.listing import (
        Paging,
        ScheduledFilter,
        ScheduledListing,
    )

    user = f"lister-{uuid.uuid4().hex[:6]}"
    rows = _schedule_rows(user)
    accounts = [row.id for row in rows[:2]]
    foreign = rows[2].id
    pseudonyms = Pseudonyms(b"k" * 32)
    uow = SqlUnitOfWorkFactory(engine, FernetBox.parse(Fernet.generate_key().decode()), pseudonyms)
    store(uow, *rows)
    memory = memory_adapters(pseudonyms=pseudonyms)
    store(memory.uow, *rows)
    twin = ScheduledListing(memory.post_reads)
    reads = AsyncPostReads(database)
    await reads.open()
    listing = ScheduledListing(reads)
    owner = Principal(user, Role.USER)
    try:
        filters = [
            ScheduledFilter(user),
            ScheduledFilter(user, account_id=accounts[1]),
            ScheduledFilter(user, account_id=uuid.uuid4()),  # no such account: empty
            ScheduledFilter(user, state=PostState.FAILED),
            ScheduledFilter(user, priority=Priority.HIGH),
            ScheduledFilter(user, dates=parse_date_range("2031-03-11", "2031-03-13")),
        ]
        for where in filters:
            # (3, 50): past the last post, an empty page that still counts them all.
            for limit, offset in ((0, 0), (3, 0), (3, 2), (100, 1), (3, 50)):
                expected = await twin.list(owner, where, Paging(limit, offset))
                got = await listing.list(owner, where, Paging(limit, offset))
                assert got == expected, (where, limit, offset)
            # Follow the page tokens to the end: the same pages.
            token, pages = "", 0
            while True:
                expected = await twin.list(owner, where, Paging(4, 0, token))
                got = await listing.list(owner, where, Paging(4, 0, token))
                assert got == expected
                pages += 1
                token = got.next_page_token
                if not token:
                    break
            assert pages >= 1
        assert (await listing.list(owner, ScheduledFilter(user), Paging())).total_count == 16
        # The same refusals, in the same order of checks (a bad priority or date is
        # refused where the request is read, before either listing).
        cases = [
            (Principal("bob", Role.USER), ScheduledFilter(user), 0, 0, ""),
            (owner, ScheduledFilter(user, account_id=foreign), 0, 0, ""),
            (owner, ScheduledFilter(user), -1, 0, ""),
            (owner, ScheduledFilter(user), 0, 2, "token"),
            (owner, ScheduledFilter(user), 0, 0, "not-a-token"),
        ]
        for principal, where, limit, offset, token in cases:
            with pytest.raises(Exception) as twin_error:
                await twin.list(principal, where, Paging(limit, offset, token))
            with pytest.raises(Exception) as async_error:
                await listing.list(principal, where, Paging(limit, offset, token))
            assert type(async_error.value) is type(twin_error.value)
            assert async_error.value.reason == twin_error.value.reason  # type: ignore[attr-defined]
    finally:
        await reads.close()
