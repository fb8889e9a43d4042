"""Audit trail, export, erasure (with removal on X) and retention over real gRPC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import text
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    campaign_pb2,
    campaign_service_pb2,
    campaign_service_pb2_grpc,
    post_pb2,
    post_service_pb2,
)

from post_management.adapters.clock import SystemClock
from post_management.adapters.crypto import FernetBox, derived_key
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.privacy_repository import SqlPrivacyStore
from post_management.bootstrap import resolve_secrets
from post_management.domain.auth import Role
from post_management.domain.privacy import Pseudonyms
from post_management.services.privacy.privacy import RemovalJob, RetentionJob, RetentionPeriods
from tests.conftest import truncate
from tests.fixtures.emulator import Emulator
from tests.integration.grpc_fixtures import Client, error_details, x_account
from tests.integration.test_publishing_grpc import Publisher
from tests.support.harness import RunningServer

SECRET = "tok-secret-value-never-shown"


@pytest.fixture
def server(x_server: RunningServer, emulator: Emulator) -> RunningServer:
    truncate(x_server.database_url)
    return x_server


def _sql(server: RunningServer, statement: str, **params: object) -> list[tuple[object, ...]]:
    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        result = connection.execute(text(statement), params)
        rows = [tuple(row) for row in result] if result.returns_rows else []
    engine.dispose()
    return rows


def _store(server: RunningServer) -> SqlPrivacyStore:
    keys = server.settings.auth.encryption_keys
    assert keys is not None
    return SqlPrivacyStore(server.container.engine, FernetBox.parse(keys.get_secret_value()))


def test_audit_trail_is_paginated_newest_first_and_private(
    server: RunningServer, emulator: Emulator
) -> None:
    alice, bob = Client(server, "alice"), Client(server, "bob")
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "first words")
    alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(post=post_pb2.Post(id=post.id, text="second words")),
        metadata=alice.metadata,
    )
    seen: list[account_service_pb2.AuditEvent] = []
    token = ""
    while True:
        page = alice.accounts.ListAuditEvents(
            account_service_pb2.ListAuditEventsRequest(
                user_id="alice", page_size=1, page_token=token
            ),
            metadata=alice.metadata,
        )
        seen += page.audit_events
        token = page.next_page_token
        if not token:
            break
    assert [e.action for e in seen] == ["post.update", "post.create", "account.create"]
    assert seen[0].actor == "user:alice" and seen[0].before["text"] == "first words"
    assert seen[0].after["text"] == "second words"
    assert all(SECRET not in e.SerializeToString().decode("utf-8", "replace") for e in seen)

    with pytest.raises(grpc.RpcError) as caught:
        bob.accounts.ListAuditEvents(
            account_service_pb2.ListAuditEventsRequest(user_id="alice"), metadata=bob.metadata
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_export_holds_everything_but_secrets(server: RunningServer, emulator: Emulator) -> None:
    alice = Client(server, "alice")
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "exported")
    campaign = campaign_service_pb2_grpc.CampaignServiceStub(alice.channel).CreateCampaign(
        campaign_service_pb2.CreateCampaignRequest(
            campaign=campaign_pb2.Campaign(user_id="alice", name="Summer")
        ),
        metadata=alice.metadata,
    )
    _sql(
        server,
        "INSERT INTO post_metrics (post_id, collected_at, source, impressions, likes, reposts, "
        "replies, quotes, bookmarks) VALUES (:id, now(), 'poll', 10, 2, 1, 0, 0, 0)",
        id=post.id,
    )
    export = alice.accounts.ExportUserData(
        account_service_pb2.ExportUserDataRequest(user_id="alice"), metadata=alice.metadata
    )
    assert [a.id for a in export.accounts] == [account.id]
    assert export.accounts[0].has_credentials
    assert [p.text for p in export.posts] == ["exported"]
    assert [(m.post_id, m.impressions) for m in export.metrics] == [(post.id, 10)]
    assert [c.id for c in export.campaigns] == [campaign.id]
    assert {e.action for e in export.audit_events} == {
        "account.create",
        "post.create",
        "campaign.create",
    }
    assert SECRET.encode() not in export.SerializeToString()


def test_erase_deletes_pseudonymises_tombstones_and_removes_from_x(
    server: RunningServer, emulator: Emulator
) -> None:
    alice = Publisher(server, "alice")
    admin = Client(server, "ops", Role.ADMIN)
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "to be forgotten")
    campaign_service_pb2_grpc.CampaignServiceStub(alice.channel).CreateCampaign(
        campaign_service_pb2.CreateCampaignRequest(
            campaign=campaign_pb2.Campaign(user_id="alice", name="Gone")
        ),
        metadata=alice.metadata,
    )
    published = alice.publish(post.id, immediate_publish=True).post
    assert emulator.control.posts(text="to be forgotten")

    with pytest.raises(grpc.RpcError) as caught:  # users cannot erase, not even themselves
        alice.accounts.EraseUserData(
            account_service_pb2.EraseUserDataRequest(user_id="alice"), metadata=alice.metadata
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    report = admin.accounts.EraseUserData(
        account_service_pb2.EraseUserDataRequest(user_id="alice", delete_from_x=True),
        metadata=admin.metadata,
    )
    assert (report.posts_deleted, report.accounts_deleted, report.x_removals_queued) == (1, 1, 1)
    assert report.audit_events_pseudonymised >= 3

    assert _sql(server, "SELECT count(*) FROM posts WHERE user_id = 'alice'") == [(0,)]
    assert _sql(server, "SELECT count(*) FROM campaigns WHERE user_id = 'alice'") == [(0,)]
    assert _sql(server, "SELECT count(*) FROM audit_log WHERE user_id = 'alice'") == [(0,)]
    secret = resolve_secrets(server.settings).hmac_secret
    hashed = Pseudonyms(derived_key(secret, "erased-users")).of("alice")
    rows = _sql(server, "SELECT actor, before, after FROM audit_log WHERE user_id = :h", h=hashed)
    assert rows and all("alice" not in str(row) for row in rows)

    # The tombstone refuses to bring the user back.
    with pytest.raises(grpc.RpcError) as caught:
        alice.create_account("777")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)[0] == "USER_ERASED"

    # The removal job deletes the post on X and drops the tokens.
    clock = SystemClock()
    store = _store(server)
    assert RemovalJob(store, server.container.x_api, clock).tick() == 1
    assert emulator.control.posts(text="to be forgotten") == []
    # The publish, recorded under alice, was pseudonymised with her; the DELETE is
    # metered on the pseudonym (the account is gone); no spend row names alice any more.
    assert _sql(
        server,
        "SELECT kind, purpose, outcome, account_id IS NULL, cost_micros FROM x_spend "
        "WHERE user_id = :h ORDER BY id",
        h=hashed,
    ) == [
        ("post_create", "publish", "charged", False, 15_000),
        ("post_delete", "erasure", "charged", True, 5_000),
    ]
    assert _sql(server, "SELECT count(*) FROM x_spend WHERE user_id = 'alice'") == [(0,)]
    assert published.x_post_id
    assert _sql(
        server, "SELECT count(*) FROM x_removals WHERE credentials_encrypted IS NOT NULL"
    ) == [(0,)]


def test_an_erased_post_is_not_answered_from_the_post_cache(
    server: RunningServer, emulator: Emulator
) -> None:
    alice = Client(server, "alice")
    admin = Client(server, "ops", Role.ADMIN)
    post = alice.create_post(x_account(alice, emulator).id, "cached then erased")
    read = post_service_pb2.GetPostRequest(post_id=post.id)
    for _ in range(2):  # the second comes from the post cache
        assert alice.posts.GetPost(read, metadata=alice.metadata).text == "cached then erased"

    admin.accounts.EraseUserData(
        account_service_pb2.EraseUserDataRequest(user_id="alice"), metadata=admin.metadata
    )

    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.GetPost(read, metadata=alice.metadata)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_erase_waits_until_no_post_is_being_published(
    server: RunningServer, emulator: Emulator
) -> None:
    alice = Client(server, "alice")
    admin = Client(server, "ops", Role.ADMIN)
    post = alice.create_post(x_account(alice, emulator).id, "in flight")
    _sql(server, "UPDATE posts SET state = 'PUBLISHING' WHERE id = :id", id=post.id)
    erase = account_service_pb2.EraseUserDataRequest(user_id="alice", delete_from_x=True)
    with pytest.raises(grpc.RpcError) as caught:
        admin.accounts.EraseUserData(erase, metadata=admin.metadata)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)[0] == "POSTS_BEING_PUBLISHED"
    assert _sql(server, "SELECT count(*) FROM posts WHERE user_id = 'alice'") == [(1,)]
    assert _sql(server, "SELECT count(*) FROM erased_users") == [(0,)]

    _sql(server, "UPDATE posts SET state = 'PUBLISHED' WHERE id = :id", id=post.id)
    assert admin.accounts.EraseUserData(erase, metadata=admin.metadata).posts_deleted == 1


def test_erase_matches_user_ids_exactly_not_as_like_patterns(server: RunningServer) -> None:
    service = Client(server, "crm", Role.SERVICE)
    users = ["abc", "%", "a_c"]
    for index, user_id in enumerate(users):
        service.accounts.CreateAccount(
            account_service_pb2.CreateAccountRequest(
                account=account_pb2.Account(user_id=user_id, handle="h", x_user_id=str(index)),
                request_id=str(uuid.uuid4()),
            ),
            metadata=service.metadata,
        )
    for user_id in ["%", "a_c"]:
        service.accounts.EraseUserData(
            account_service_pb2.EraseUserDataRequest(user_id=user_id), metadata=service.metadata
        )
    scopes = _sql(server, "SELECT scope FROM idempotency_keys")
    assert scopes == [("CreateAccount:abc",)]
    # The service's own name stays on the rows it wrote about the erased users.
    actors = _sql(server, "SELECT DISTINCT actor FROM audit_log WHERE action = 'account.create'")
    assert actors == [("service:crm",)]


def test_retention_purges_old_snapshots_dead_letters_and_removals(
    server: RunningServer, emulator: Emulator
) -> None:
    alice = Client(server, "alice")
    account = x_account(alice, emulator)
    old, fresh = alice.create_post(account.id, "old"), alice.create_post(account.id, "fresh")
    _sql(
        server,
        "UPDATE posts SET state = 'DEAD_LETTERED', updated_at = now() - interval '100 days' "
        "WHERE id = :id",
        id=old.id,
    )
    _sql(
        server,
        "INSERT INTO post_metrics (post_id, collected_at, source, impressions, likes, reposts, "
        "replies, quotes, bookmarks) VALUES (:id, now() - interval '500 days', 'poll', 1, 0, 0, "
        "0, 0, 0), (:id, now(), 'poll', 2, 0, 0, 0, 0, 0)",
        id=fresh.id,
    )
    _sql(
        server,
        "INSERT INTO x_removals (user_hash, x_post_id, requested_at, done_at) VALUES "
        "('h', '1', now(), now() - interval '40 days'), ('h', '2', now(), NULL)",
    )
    store = _store(server)
    job = RetentionJob(
        store,
        SystemClock(),
        RetentionPeriods(timedelta(days=400), timedelta(days=90), timedelta(days=30)),
    )
    nothing_of_media = {"unattached_media": 0, "published_media": 0}
    assert job.tick() == {
        "metric_snapshots": 1,
        "dead_letters": 1,
        "x_removals": 1,
        **nothing_of_media,
    }
    assert _sql(server, "SELECT count(*) FROM posts") == [(1,)]
    assert _sql(server, "SELECT impressions FROM post_metrics") == [(2,)]
    assert job.tick() == {
        "metric_snapshots": 0,
        "dead_letters": 0,
        "x_removals": 0,
        **nothing_of_media,
    }
    assert datetime.now(UTC)  # the clock is real: nothing fresh was touched
