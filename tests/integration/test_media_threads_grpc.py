"""UploadMedia, attachments and threads over real gRPC, with the X emulator as X."""

from __future__ import annotations

import uuid
from functools import partial

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import text
from xmp.posts.v1 import (
    media_pb2,
    post_pb2,
    post_service_pb2,
    publishing_service_pb2,
    publishing_service_pb2_grpc,
)

from tests.fixtures.emulator import Emulator
from tests.integration.grpc_fixtures import Client, error_details, x_account
from tests.support.harness import RunningServer

MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1024
GIF = b"GIF89a" + b"\x00" * 1024
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1024


@pytest.fixture
def server(x_server: RunningServer, emulator: Emulator) -> RunningServer:
    """The tier's server on the emulator: `clean`, `alice` and `bob` use it."""
    return x_server


def _refused(call: object) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    reason, violations = error_details(caught.value)
    return caught.value.code(), reason, violations


def test_upload_then_publish_a_thread_with_attachments(alice: Client, emulator: Emulator) -> None:
    account = x_account(alice, emulator)
    first, second = alice.upload(PNG, "image/png"), alice.upload(PNG + b"2", "IMAGE/PNG")
    assert (first.kind, first.mime_type, first.size_bytes) == (
        media_pb2.MEDIA_KIND_IMAGE,
        "image/png",
        len(PNG),
    )
    assert first.user_id == "alice" and first.create_time.seconds > 0
    post = alice.create_post(
        account.id,
        "thread start",
        attachment_ids=[first.id, second.id],
        thread=["thread middle", "thread end"],
    )
    assert list(post.attachment_ids) == [first.id, second.id]
    assert list(post.thread) == ["thread middle", "thread end"]
    assert list(post.segment_x_post_ids) == []
    fetched = alice.posts.GetPost(
        post_service_pb2.GetPostRequest(post_id=post.id), metadata=alice.metadata
    )
    assert fetched == post

    publishing = publishing_service_pb2_grpc.PublishingServiceStub(alice.channel)
    response = publishing.PublishPost(
        publishing_service_pb2.PublishPostRequest(
            post_id=post.id, user_id="alice", immediate_publish=True
        ),
        metadata=alice.metadata,
    )
    published = response.post
    assert published.state == post_pb2.POST_STATE_PUBLISHED
    ids = list(published.segment_x_post_ids)
    assert len(ids) == 3 and ids[0] == published.x_post_id
    on_x = [
        emulator.control.posts(text=t)[0] for t in ("thread start", "thread middle", "thread end")
    ]
    assert [p["id"] for p in on_x] == ids
    assert [p["in_reply_to_tweet_id"] for p in on_x] == [None, ids[0], ids[1]]
    assert len(on_x[0]["media_ids"]) == 2 and on_x[1]["media_ids"] == []


def test_a_single_post_shows_its_one_segment(alice: Client, emulator: Emulator) -> None:
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "alone")
    publishing = publishing_service_pb2_grpc.PublishingServiceStub(alice.channel)
    published = publishing.PublishPost(
        publishing_service_pb2.PublishPostRequest(
            post_id=post.id, user_id="alice", immediate_publish=True
        ),
        metadata=alice.metadata,
    ).post
    assert list(published.segment_x_post_ids) == [published.x_post_id] != [""]


def test_uploads_above_four_mib_fit_up_to_the_receive_limit(alice: Client) -> None:
    big_gif = alice.upload(GIF + b"\x00" * (10 * MB), "image/gif")
    assert big_gif.kind == media_pb2.MEDIA_KIND_GIF and big_gif.size_bytes > 10 * MB
    with pytest.raises(grpc.RpcError) as caught:
        alice.upload(MP4 + b"\x00" * (17 * MB), "video/mp4")
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_upload_is_idempotent_with_a_request_id(alice: Client) -> None:
    request_id = str(uuid.uuid4())
    first = alice.upload(PNG, "image/png", request_id=request_id)
    assert alice.upload(PNG, "image/png", request_id=request_id) == first
    code, reason, _ = _refused(lambda: alice.upload(GIF, "image/gif", request_id=request_id))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")


@pytest.mark.parametrize(
    ("data", "mime_type", "field"),
    [
        (PNG, "image/bmp", "mime_type"),
        (PNG, "", "mime_type"),
        (b"", "image/png", "data"),
        (PNG, "image/jpeg", "data"),  # the bytes are no JPEG
        (PNG + b"\x00" * (5 * MB), "image/png", "data"),  # over 5 MB
    ],
)
def test_bad_media_is_invalid_argument_with_a_field_violation(
    alice: Client, data: bytes, mime_type: str, field: str
) -> None:
    code, _, violations = _refused(lambda: alice.upload(data, mime_type))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations] == [field]


def test_uploading_for_another_user_is_permission_denied(alice: Client) -> None:
    request = post_service_pb2.UploadMediaRequest(user_id="bob", mime_type="image/png", data=PNG)
    code, _, _ = _refused(lambda: alice.posts.UploadMedia(request, metadata=alice.metadata))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_attachment_and_thread_rules_at_create(alice: Client, emulator: Emulator) -> None:
    account = x_account(alice, emulator)
    video, image = alice.upload(MP4, "video/mp4"), alice.upload(PNG, "image/png")
    images = [alice.upload(PNG + bytes([i]), "image/png").id for i in range(5)]
    cases: list[tuple[dict[str, object], list[str]]] = [
        ({"attachment_ids": [video.id, image.id]}, ["post.attachment_ids"]),
        ({"attachment_ids": [video.id], "media_ids": ["123"]}, ["post.attachment_ids"]),
        ({"attachment_ids": images}, ["post.attachment_ids"]),
        ({"attachment_ids": [image.id, image.id]}, ["post.attachment_ids[1]"]),
        ({"attachment_ids": ["not-a-uuid"]}, ["post.attachment_ids[0]"]),
        ({"attachment_ids": [str(uuid.uuid4())]}, ["post.attachment_ids[0]"]),
        ({"thread": ["fine", " ", "x" * 281]}, ["post.thread[1]", "post.thread[2]"]),
        ({"thread": ["hello"]}, ["post.thread[0]"]),  # repeats the post's text
    ]
    for fields, expected in cases:
        code, _, violations = _refused(partial(alice.create_post, account.id, "hello", **fields))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert [f for f, _ in violations] == expected, fields
    # Media alone, without text, is a valid post.
    assert alice.create_post(account.id, "", attachment_ids=[video.id]).attachment_ids


def test_another_users_media_is_invalid_argument_like_an_unknown_id(
    alice: Client, bob: Client, emulator: Emulator
) -> None:
    account = x_account(alice, emulator)
    bobs = bob.upload(PNG, "image/png")
    code, reason, violations = _refused(
        lambda: alice.create_post(account.id, "mine?", attachment_ids=[bobs.id])
    )
    # The same answer as for an id that does not exist: nothing about bob's media leaks.
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_MEDIA")
    assert violations == [("post.attachment_ids[0]", "is not a media item of this user")]


def test_update_sets_and_clears_attachments_and_thread(alice: Client, emulator: Emulator) -> None:
    account = x_account(alice, emulator)
    image = alice.upload(PNG, "image/png")
    post = alice.create_post(account.id, "to edit")
    updated = alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=post.id, attachment_ids=[image.id], thread=["more"])
        ),
        metadata=alice.metadata,
    )
    assert list(updated.attachment_ids) == [image.id] and list(updated.thread) == ["more"]
    cleared = alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=post.id),
            update_mask=FieldMask(paths=["attachment_ids", "thread"]),
        ),
        metadata=alice.metadata,
    )
    assert list(cleared.attachment_ids) == [] and list(cleared.thread) == []
    code, _, violations = _refused(
        lambda: alice.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=post.id, thread=["to edit"]),
                update_mask=FieldMask(paths=["thread"]),
            ),
            metadata=alice.metadata,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and violations[0][0] == "post.thread[0]"


def test_segments_already_on_x_cannot_be_edited(
    alice: Client, emulator: Emulator, x_server: RunningServer
) -> None:
    from post_management.adapters.db.engine import make_engine

    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "one", thread=["two", "three"])
    engine = make_engine(x_server.database_url)
    with engine.begin() as connection:  # segment 0 went out, then X refused segment 1
        connection.execute(
            text("UPDATE posts SET state = 'FAILED', segment_x_post_ids = '{77}' WHERE id = :id"),
            {"id": post.id},
        )
    engine.dispose()

    def update(**fields: object) -> post_pb2.Post:
        paths = list(fields)
        return alice.posts.UpdatePost(  # type: ignore[no-any-return]
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=post.id, **fields), update_mask=FieldMask(paths=paths)
            ),
            metadata=alice.metadata,
        )

    other = x_account(alice, emulator)
    for fields in (
        {"text": "uno"},
        {"reply_to_x_post_id": "5"},
        {"media_ids": ["9"]},
        {"account_id": other.id},  # the rest would reply from another account
    ):
        code, reason, _ = _refused(partial(update, **fields))
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SEGMENTS_ALREADY_PUBLISHED")
    edited = update(thread=["two, reworded", "three"])
    assert list(edited.thread) == ["two, reworded", "three"]
    assert list(edited.segment_x_post_ids) == ["77"]
