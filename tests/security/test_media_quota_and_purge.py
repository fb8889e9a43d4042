"""Uploaded media are bounded per user (count and bytes: RESOURCE_EXHAUSTED beyond)
and do not stay forever: the retention tick purges media no post attaches after a
TTL, and media whose every post was published after a retention period. Over gRPC
against a running server; the tick is the service's own job, run with a clock
moved ahead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.privacy_repository import SqlPrivacyStore
from post_management.services.privacy.privacy import RetentionJob, RetentionPeriods
from tests.integration.grpc_fixtures import Client, error_details
from tests.support.harness import RunningServer, running_server, settings_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000
MAX_ITEMS = 3
MAX_BYTES = 4 * len(PNG)


@pytest.fixture(scope="module")
def server(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """This module's server, with small quotas (`clean`, `alice` and `bob` use it)."""
    settings = settings_for(
        machine_database,
        tmp_path_factory.mktemp("data"),
        dispatcher_enabled=False,
        media_quota_items=MAX_ITEMS,
        media_quota_bytes=MAX_BYTES,
        media_unattached_ttl_days=7,
        media_published_retention_days=30,
    )
    with running_server(settings) as running:
        yield running


def _exhausted(call: Any) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
    assert error_details(caught.value)[0] == "MEDIA_QUOTA_EXCEEDED"
    return dict(caught.value.trailing_metadata() or ())


def test_uploads_beyond_the_quota_are_resource_exhausted(alice: Client, bob: Client) -> None:
    first = alice.upload(PNG, request_id="first-upload")
    for _ in range(MAX_ITEMS - 1):
        alice.upload(PNG)
    _exhausted(lambda: alice.upload(PNG))
    # A retry of an upload that was stored is answered as before, quota or not.
    assert alice.upload(PNG, request_id="first-upload") == first
    # The quota is per user.
    bob.upload(PNG)
    # Bytes count too: two items, then one that would pass the byte quota.
    big = PNG + b"\x00" * (MAX_BYTES - 2 * len(PNG))
    bob.upload(PNG)
    _exhausted(lambda: bob.upload(big))


def _sql(server: RunningServer, statement: str, **params: Any) -> list[Any]:
    with server.container.engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def _tick(server: RunningServer, days_ahead: float) -> dict[str, int]:
    keys = server.settings.auth.encryption_keys
    assert keys is not None
    store = SqlPrivacyStore(server.container.engine, FernetBox.parse(keys.get_secret_value()))
    settings = server.settings

    class Ahead:
        def now(self) -> datetime:
            return datetime.now(UTC) + timedelta(days=days_ahead)

    job = RetentionJob(
        store,
        Ahead(),
        RetentionPeriods(
            metric_snapshots=timedelta(days=settings.retention.metrics_retention_days),
            dead_letters=timedelta(days=settings.retention.dead_letter_retention_days),
            finished_removals=timedelta(days=settings.retention.removal_retention_days),
            unattached_media=timedelta(days=settings.retention.media_unattached_ttl_days),
            published_media=timedelta(days=settings.retention.media_published_retention_days),
        ),
    )
    return job.tick()


def test_the_retention_tick_purges_unattached_and_published_media(
    server: RunningServer, alice: Client
) -> None:
    account = alice.create_account()
    loose, draft_media, published_media = alice.upload(PNG), alice.upload(PNG), alice.upload(PNG)
    draft = alice.create_post(account.id, "a draft", attachment_ids=[draft_media.id])
    published = alice.create_post(account.id, "out", attachment_ids=[published_media.id])
    # As the publisher leaves a post once X has it.
    _sql(
        server,
        "UPDATE posts SET state = 'PUBLISHED', published_at = now(), x_post_id = '1' "
        "WHERE id = :id",
        id=published.id,
    )
    _exhausted(lambda: alice.upload(PNG))  # the quota is full

    def stored() -> set[str]:
        return {str(row[0]) for row in _sql(server, "SELECT id FROM media")}

    assert _tick(server, days_ahead=1)["unattached_media"] == 0  # not yet
    purged = _tick(server, days_ahead=8)
    assert (purged["unattached_media"], purged["published_media"]) == (1, 0)
    assert stored() == {draft_media.id, published_media.id}

    purged = _tick(server, days_ahead=31)
    assert (purged["unattached_media"], purged["published_media"]) == (0, 1)
    assert stored() == {draft_media.id}  # a post still to publish keeps its media

    # Purged media are gone for the API too, and their quota is free again.
    with pytest.raises(grpc.RpcError) as caught:
        alice.create_post(account.id, "again", attachment_ids=[loose.id])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    alice.upload(PNG)
    alice.upload(PNG)
    assert draft.id and published.id
