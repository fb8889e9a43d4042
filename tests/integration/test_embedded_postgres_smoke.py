"""The server on the embedded PostgreSQL (the database `make run` starts), over real gRPC.

The other gRPC modules run on the machine's PostgreSQL only; this module gives its tests
a server on the embedded one (its own `server`, which `clean`, `alice` and `bob` of the
tier's conftest use) and walks the main paths once: accounts, posts, idempotent replay,
scheduling, listing, cancelling, the outbox, and error statuses with their reasons."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy.engine import make_url
from xmp.posts.v1 import account_service_pb2, post_pb2, post_service_pb2

from post_management.adapters.local import EmbeddedPostgres
from tests.conftest import MACHINE_PG
from tests.integration.grpc_fixtures import Client, error_details
from tests.integration.scheduling_support import (
    Database,
    Scheduler,
    at_utc,
    day_ahead,
    failure,
    utc,
    z,
)
from tests.support.harness import RunningServer, settings_for


@pytest.fixture(scope="module")
def server(
    embedded_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """This module's server, on a fresh, migrated database of the embedded PostgreSQL."""
    running = RunningServer(settings_for(embedded_database, Path(tmp_path_factory.mktemp("data"))))
    yield running
    running.stop()


@pytest.fixture
def db(clean: RunningServer) -> Iterator[Database]:
    database = Database(clean)
    yield database
    database.engine.dispose()


def test_the_server_runs_on_the_embedded_postgres(
    clean: RunningServer, embedded_postgres: EmbeddedPostgres
) -> None:
    used = make_url(clean.database_url)
    embedded = make_url(embedded_postgres.url)
    # The embedded server listens on a Unix socket in its data folder, not on TCP.
    assert used.query.get("host") == embedded.query.get("host")
    assert used.query.get("host")
    assert (used.host, used.port) != (make_url(MACHINE_PG).host, make_url(MACHINE_PG).port)


def test_accounts_and_posts(alice: Client) -> None:
    account = alice.create_account("4242", timezone="Europe/Berlin")
    got = alice.accounts.GetAccount(
        account_service_pb2.GetAccountRequest(account_id=account.id), metadata=alice.metadata
    )
    assert got.id == account.id and got.timezone == "Europe/Berlin"
    accounts = alice.accounts.ListAccounts(
        account_service_pb2.ListAccountsRequest(), metadata=alice.metadata
    )
    assert [a.id for a in accounts.accounts] == [account.id]

    created = alice.create_post(account.id, "first post")
    assert created.state == post_pb2.POST_STATE_DRAFT and created.etag
    fetched = alice.posts.GetPost(
        post_service_pb2.GetPostRequest(post_id=created.id), metadata=alice.metadata
    )
    assert fetched == created
    updated = alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=created.id, text="edited", etag=created.etag),
            update_mask=FieldMask(paths=["text"]),
        ),
        metadata=alice.metadata,
    )
    assert updated.text == "edited" and updated.etag != created.etag

    # A replayed request_id answers the first result and creates nothing.
    request = post_service_pb2.CreatePostRequest(
        post=post_pb2.Post(user_id="alice", account_id=account.id, text="once"),
        request_id=str(uuid.uuid4()),
    )
    first = alice.posts.CreatePost(request, metadata=alice.metadata)
    assert alice.posts.CreatePost(request, metadata=alice.metadata).id == first.id
    listed = alice.posts.ListPosts(post_service_pb2.ListPostsRequest(), metadata=alice.metadata)
    assert sorted(p.id for p in listed.posts) == sorted([created.id, first.id])


def test_schedule_list_and_cancel(alice: Client, db: Database) -> None:
    scheduler = Scheduler(alice)
    account = alice.create_account()
    post = alice.create_post(account.id)
    day = day_ahead()

    done = scheduler.schedule(post.id, scheduled_for=f"{day}T10:00:00Z", priority="HIGH")
    assert done.post.state == post_pb2.POST_STATE_SCHEDULED
    assert utc(done.post.scheduled_for) == at_utc(day, 10)
    assert done.post.priority == post_pb2.PRIORITY_HIGH
    page = scheduler.list(limit=10)
    assert [p.id for p in page.posts] == [post.id] and page.total_count == 1

    cancelled = scheduler.cancel(post.id)
    assert cancelled.state == post_pb2.POST_STATE_CANCELLED
    assert [(kind, key) for kind, key, _ in db.outbox()] == [
        ("post.scheduled", post.id),
        ("post.queue_added", post.id),
        ("post.cancelled", post.id),
    ]
    assert db.outbox()[-1][2]["scheduledFor"] == f"{day}T10:00:00Z"


def test_error_statuses_carry_their_reasons(alice: Client, bob: Client) -> None:
    scheduler = Scheduler(alice)
    account = alice.create_account("77")
    post = alice.create_post(account.id)

    missing = failure(
        lambda: alice.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=str(uuid.uuid4())), metadata=alice.metadata
        )
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    foreign = failure(
        lambda: bob.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=post.id), metadata=bob.metadata
        )
    )
    assert foreign.code() == grpc.StatusCode.PERMISSION_DENIED

    duplicate = failure(lambda: alice.create_account("77"))
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_details(duplicate)[0] == "ACCOUNT_EXISTS"

    past = z(datetime.now(UTC) - timedelta(minutes=5))
    early = failure(lambda: scheduler.schedule(post.id, scheduled_for=past))
    assert early.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(early)[0] == "SCHEDULED_TIME_IN_PAST"

    draft = failure(lambda: scheduler.cancel(post.id))
    assert draft.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(draft)[0] == "INVALID_POST_STATE"

    alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=post.id, text="v2", etag=post.etag)
        ),
        metadata=alice.metadata,
    )
    stale = failure(
        lambda: alice.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=post.id, text="v3", etag=post.etag)
            ),
            metadata=alice.metadata,
        )
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    assert error_details(stale)[0] == "ETAG_MISMATCH"
