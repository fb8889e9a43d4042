"""UploadMedia's use case on the memory unit of work: its order of checks, its replay,
its quota and its audit row, without a database."""

from __future__ import annotations

import asyncio

import pytest

from post_management.adapters.memory.repositories import MemoryErasureTombstones
from post_management.domain.auth import Principal, Role
from post_management.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
)
from post_management.domain.media import MediaKind, MediaQuota
from post_management.domain.reasons import Reason
from post_management.services.posts.media import MediaService, NewMedia
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 10
GIF = b"GIF89a" + b"\x00" * 20


@pytest.fixture
def world() -> EngineWorld:
    return EngineWorld()


def test_an_upload_is_stored_once_per_request_id_with_its_audit_row(world: EngineWorld) -> None:
    media = MediaService(world.async_uow, world.clock)
    new = NewMedia("alice", " Image/PNG ", PNG)
    stored = asyncio.run(media.upload(ALICE, new, request_id="up-1"))
    assert (stored.user_id, stored.mime_type) == ("alice", "image/png")
    assert stored.kind is MediaKind.IMAGE
    assert (stored.size_bytes, stored.created_at) == (len(PNG), world.clock.now())
    assert asyncio.run(media.upload(ALICE, new, request_id="up-1")) == stored
    assert list(world.store.tables.media) == [stored.id]
    assert world.store.tables.media[stored.id][1] == PNG
    audit = [e for _, e in world.store.tables.audit]
    assert [(e.action, e.resource_id, e.request_id) for e in audit] == [
        ("media.upload", stored.id, "up-1")
    ]
    # The same request id with other bytes is another request.
    with pytest.raises(InvalidArgument) as reused:
        asyncio.run(media.upload(ALICE, NewMedia("alice", "image/png", PNG + b"!"), "up-1"))
    assert reused.value.reason == Reason.REQUEST_ID_REUSED


def test_the_quota_refuses_with_its_figures_but_a_known_request_id_is_answered(
    world: EngineWorld,
) -> None:
    media = MediaService(world.async_uow, world.clock, MediaQuota(max_items=1, max_bytes=0))
    first = asyncio.run(media.upload(ALICE, NewMedia("alice", "image/png", PNG), "up-1"))
    with pytest.raises(ResourceExhausted) as full:
        asyncio.run(media.upload(ALICE, NewMedia("alice", "image/gif", GIF), "up-2"))
    assert full.value.reason == Reason.MEDIA_QUOTA_EXCEEDED
    assert full.value.metadata == {
        "stored_items": "1",
        "stored_bytes": str(len(PNG)),
        "max_items": "1",
        "max_bytes": "0",
    }
    # A retry of the stored upload is answered before the quota is counted.
    again = asyncio.run(media.upload(ALICE, NewMedia("alice", "image/png", PNG), "up-1"))
    assert again == first
    assert list(world.store.tables.media) == [first.id]


def test_the_caller_and_the_file_are_checked_before_anything_is_stored(
    world: EngineWorld,
) -> None:
    media = MediaService(world.async_uow, world.clock)
    with pytest.raises(PermissionDenied):
        asyncio.run(media.upload(ALICE, NewMedia("bob", "image/png", b"not a png")))
    with pytest.raises(InvalidArgument) as invalid:
        asyncio.run(media.upload(ALICE, NewMedia("alice", "image/png", b"not a png")))
    assert [v.field for v in invalid.value.violations] == ["data"]
    assert world.store.tables.media == {} and world.store.tables.audit == []


def test_nothing_is_stored_for_an_erased_user(world: EngineWorld) -> None:
    media = MediaService(world.async_uow, world.clock)
    with world.uow() as work:
        assert isinstance(work.erasures, MemoryErasureTombstones)
        work.erasures.erase("alice")
        work.commit()
    with pytest.raises(FailedPrecondition) as refused:
        asyncio.run(media.upload(ALICE, NewMedia("alice", "image/png", PNG), "up-1"))
    assert refused.value.reason == Reason.USER_ERASED
    assert world.store.tables.media == {}
