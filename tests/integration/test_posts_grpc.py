"""PostService over real gRPC on the machine's PostgreSQL (test_embedded_postgres_smoke.py
runs the main paths on the embedded one)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from xmp.posts.v1 import post_pb2, post_service_pb2

from tests.integration.grpc_fixtures import Client, error_details


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()


def test_create_get_list_update_delete(alice: Client) -> None:
    account = alice.create_account()
    created = alice.create_post(account.id, "first post", media_ids=["123"])
    assert created.state == post_pb2.POST_STATE_DRAFT
    assert created.priority == post_pb2.PRIORITY_NORMAL
    assert created.user_id == "alice" and created.etag

    fetched = alice.posts.GetPost(
        post_service_pb2.GetPostRequest(post_id=created.id), metadata=alice.metadata
    )
    assert fetched == created

    listed = alice.posts.ListPosts(post_service_pb2.ListPostsRequest(), metadata=alice.metadata)
    assert [p.id for p in listed.posts] == [created.id]

    updated = alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=created.id, text="edited", etag=created.etag),
            update_mask=FieldMask(paths=["text"]),
        ),
        metadata=alice.metadata,
    )
    assert updated.text == "edited"
    assert list(updated.media_ids) == ["123"]  # not in the mask: kept
    assert updated.etag != created.etag

    alice.posts.DeletePost(
        post_service_pb2.DeletePostRequest(post_id=created.id), metadata=alice.metadata
    )
    code = _code(
        lambda: alice.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=created.id), metadata=alice.metadata
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_create_is_idempotent_with_request_id(alice: Client) -> None:
    account = alice.create_account()
    request = post_service_pb2.CreatePostRequest(
        post=post_pb2.Post(user_id="alice", account_id=account.id, text="once"),
        request_id=str(uuid.uuid4()),
    )
    first = alice.posts.CreatePost(request, metadata=alice.metadata)
    second = alice.posts.CreatePost(request, metadata=alice.metadata)
    assert first.id == second.id
    listed = alice.posts.ListPosts(post_service_pb2.ListPostsRequest(), metadata=alice.metadata)
    assert len(listed.posts) == 1

    request.post.text = "something else"
    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.CreatePost(request, metadata=alice.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(caught.value)[0] == "REQUEST_ID_REUSED"


def test_pagination_walks_every_post_once(alice: Client) -> None:
    account = alice.create_account()
    ids = {alice.create_post(account.id, f"post {i}").id for i in range(7)}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = alice.posts.ListPosts(
            post_service_pb2.ListPostsRequest(page_size=3, page_token=token),
            metadata=alice.metadata,
        )
        seen += [p.id for p in page.posts]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert sorted(seen) == sorted(ids) and len(seen) == 7


def test_page_token_from_another_query_is_rejected(alice: Client) -> None:
    account = alice.create_account()
    for i in range(3):
        alice.create_post(account.id, f"p{i}")
    page = alice.posts.ListPosts(
        post_service_pb2.ListPostsRequest(page_size=1), metadata=alice.metadata
    )
    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.ListPosts(
            post_service_pb2.ListPostsRequest(
                page_size=1, page_token=page.next_page_token, state=post_pb2.POST_STATE_DRAFT
            ),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(caught.value) == (
        "PAGE_TOKEN_MISMATCH",
        [("page_token", "belongs to a different query")],
    )
    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.ListPosts(
            post_service_pb2.ListPostsRequest(page_token="garbage!"), metadata=alice.metadata
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_filters_by_account_and_state(alice: Client) -> None:
    first = alice.create_account("1")
    second = alice.create_account("2")
    alice.create_post(first.id, "a")
    on_second = alice.create_post(second.id, "b")
    listed = alice.posts.ListPosts(
        post_service_pb2.ListPostsRequest(account_id=second.id), metadata=alice.metadata
    )
    assert [p.id for p in listed.posts] == [on_second.id]
    listed = alice.posts.ListPosts(
        post_service_pb2.ListPostsRequest(state=post_pb2.POST_STATE_PUBLISHED),
        metadata=alice.metadata,
    )
    assert list(listed.posts) == []


def test_stale_etag_is_aborted(alice: Client) -> None:
    account = alice.create_account()
    created = alice.create_post(account.id)
    alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=created.id, text="v2", etag=created.etag)
        ),
        metadata=alice.metadata,
    )
    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=created.id, text="v3", etag=created.etag)
            ),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert error_details(caught.value)[0] == "ETAG_MISMATCH"


def test_state_is_not_writable(alice: Client) -> None:
    account = alice.create_account()
    created = alice.create_post(account.id)
    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=created.id, state=post_pb2.POST_STATE_PUBLISHED),
                update_mask=FieldMask(paths=["state"]),
            ),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(caught.value)
    assert reason == "FIELD_NOT_WRITABLE"
    assert violations[0][0] == "update_mask"
    # Without a mask a state set by the client is ignored, never applied.
    updated = alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=created.id, text="x", state=post_pb2.POST_STATE_PUBLISHED)
        ),
        metadata=alice.metadata,
    )
    assert updated.state == post_pb2.POST_STATE_DRAFT


@pytest.mark.parametrize(
    ("post", "field", "reason"),
    [
        ({"account_id": "not-a-uuid", "text": "x"}, "post.account_id", "MALFORMED_ID"),
        ({"account_id": "", "text": "x"}, "post.account_id", "MISSING_FIELD"),
        ({"text": "a" * 281}, "post.text", "INVALID_ARGUMENT"),
        ({"text": "   "}, "post.text", "INVALID_ARGUMENT"),
        ({"text": "bell\x07"}, "post.text", "INVALID_ARGUMENT"),
        ({"text": "x", "priority": 42}, "post.priority", "UNKNOWN_ENUM"),
        (
            {"text": "x", "media_ids": ["1", "2", "3", "4", "5"]},
            "post.media_ids",
            "INVALID_ARGUMENT",
        ),
        ({"text": "x", "account_id": str(uuid.uuid4())}, "post.account_id", "UNKNOWN_ACCOUNT"),
    ],
)
def test_bad_create_input_is_invalid_argument(
    alice: Client, post: dict[str, object], field: str, reason: str
) -> None:
    account = alice.create_account()
    fields = {"user_id": "alice", "account_id": account.id, **post}
    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.CreatePost(
            post_service_pb2.CreatePostRequest(post=post_pb2.Post(**fields)),  # type: ignore[arg-type]
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got_reason, violations = error_details(caught.value)
    assert got_reason == reason
    assert field in [v[0] for v in violations]
    listed = alice.posts.ListPosts(post_service_pb2.ListPostsRequest(), metadata=alice.metadata)
    assert list(listed.posts) == []  # nothing half-written


def test_weighted_length_counts_wide_characters_double(alice: Client) -> None:
    account = alice.create_account()
    alice.create_post(account.id, "日" * 140)  # exactly 280 weighted
    with pytest.raises(grpc.RpcError) as caught:
        alice.create_post(account.id, "日" * 141)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_malformed_ids_and_missing_posts(alice: Client) -> None:
    for post_id, expected in (
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("123", grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
    ):
        code = _code(
            lambda post_id=post_id: alice.posts.GetPost(
                post_service_pb2.GetPostRequest(post_id=post_id), metadata=alice.metadata
            )
        )
        assert code == expected, post_id


def test_another_users_post_is_permission_denied(alice: Client, bob: Client) -> None:
    account = alice.create_account()
    created = alice.create_post(account.id)
    calls = [
        lambda: bob.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=created.id), metadata=bob.metadata
        ),
        lambda: bob.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(post=post_pb2.Post(id=created.id, text="mine")),
            metadata=bob.metadata,
        ),
        lambda: bob.posts.DeletePost(
            post_service_pb2.DeletePostRequest(post_id=created.id), metadata=bob.metadata
        ),
        lambda: bob.posts.ListPosts(
            post_service_pb2.ListPostsRequest(user_id="alice"), metadata=bob.metadata
        ),
        lambda: bob.posts.CreatePost(
            post_service_pb2.CreatePostRequest(
                post=post_pb2.Post(user_id="alice", account_id=account.id, text="x")
            ),
            metadata=bob.metadata,
        ),
    ]
    for call in calls:
        assert _code(call) == grpc.StatusCode.PERMISSION_DENIED
    # Bob's own list does not show Alice's post.
    listed = bob.posts.ListPosts(post_service_pb2.ListPostsRequest(), metadata=bob.metadata)
    assert list(listed.posts) == []
    # Nothing changed.
    fetched = alice.posts.GetPost(
        post_service_pb2.GetPostRequest(post_id=created.id), metadata=alice.metadata
    )
    assert fetched == created
