"""PublishingService over real gRPC, with the X emulator as X."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import text
from xmp.posts.v1 import (
    post_pb2,
    post_service_pb2,
    publishing_service_pb2,
    publishing_service_pb2_grpc,
)

from post_management.adapters.db.engine import make_engine
from post_management.domain.auth import Role
from tests.conftest import truncate
from tests.fixtures.emulator import Emulator
from tests.integration.grpc_fixtures import Client, error_details, x_account
from tests.support.harness import RunningServer


class Publisher(Client):
    def __init__(self, server: RunningServer, subject: str, role: Role = Role.USER) -> None:
        super().__init__(server, subject, role)
        self.publishing = publishing_service_pb2_grpc.PublishingServiceStub(self.channel)

    def publish(self, post_id: str, **fields: object) -> publishing_service_pb2.PublishPostResponse:
        request = publishing_service_pb2.PublishPostRequest(
            post_id=post_id, user_id=self.subject, **fields
        )
        return self.publishing.PublishPost(request, metadata=self.metadata)  # type: ignore[no-any-return]


@pytest.fixture
def alice(x_server: RunningServer, emulator: Emulator) -> Iterator[Publisher]:
    truncate(x_server.database_url)
    with Publisher(x_server, "alice") as client:
        yield client


def _sql(server: RunningServer, statement: str, **params: object) -> None:
    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        connection.execute(text(statement), params)
    engine.dispose()


def test_immediate_publish_returns_the_published_post(alice: Publisher, emulator: Emulator) -> None:
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "right now")
    response = alice.publish(post.id, immediate_publish=True)
    assert not response.queued
    assert response.post.state == post_pb2.POST_STATE_PUBLISHED
    assert [p["id"] for p in emulator.control.posts(text="right now")] == [response.post.x_post_id]


def test_queued_publish_goes_out_on_the_next_dispatch(
    alice: Publisher, emulator: Emulator, x_server: RunningServer
) -> None:
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "queued")
    response = alice.publish(post.id)
    assert response.queued and response.post.state == post_pb2.POST_STATE_SCHEDULED
    assert emulator.control.posts(text="queued") == []
    x_server.container.dispatcher.tick()
    x_server.container.dispatcher.drain()
    assert len(emulator.control.posts(text="queued")) == 1


def test_a_post_scheduled_for_later_needs_override(
    alice: Publisher, emulator: Emulator, x_server: RunningServer
) -> None:
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "later")
    _sql(
        x_server,
        "UPDATE posts SET state = 'SCHEDULED', due_at = now() + interval '1 day' WHERE id = :id",
        id=post.id,
    )
    with pytest.raises(grpc.RpcError) as caught:
        alice.publish(post.id, immediate_publish=True)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)[0] == "SCHEDULED_FOR_LATER"
    response = alice.publish(post.id, immediate_publish=True, override_schedule=True)
    assert response.post.state == post_pb2.POST_STATE_PUBLISHED


def test_request_id_makes_publish_idempotent(alice: Publisher, emulator: Emulator) -> None:
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "exactly once")
    request_id = str(uuid.uuid4())
    first = alice.publish(post.id, immediate_publish=True, request_id=request_id)
    again = alice.publish(post.id, immediate_publish=True, request_id=request_id)
    assert first.post.x_post_id == again.post.x_post_id
    assert len(emulator.control.posts(text="exactly once")) == 1
    with pytest.raises(grpc.RpcError) as caught:  # without the id: a clear refusal
        alice.publish(post.id, immediate_publish=True)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_publish_input_and_ownership_errors(
    alice: Publisher, emulator: Emulator, x_server: RunningServer
) -> None:
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "mine")
    bob = Publisher(x_server, "bob")
    cases = [
        (lambda: bob.publish(post.id, immediate_publish=True), grpc.StatusCode.PERMISSION_DENIED),
        (
            lambda: bob.publishing.PublishPost(
                publishing_service_pb2.PublishPostRequest(post_id=post.id, user_id="alice"),
                metadata=bob.metadata,
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (lambda: alice.publish("nope"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: alice.publish(str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
        (
            lambda: alice.publish(post.id, account_id=str(uuid.uuid4())),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for call, code in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == code
    assert emulator.control.posts() == []
    bob.channel.close()


def test_immediate_publish_racing_the_dispatcher_calls_x_once(
    alice: Publisher, emulator: Emulator, x_server: RunningServer
) -> None:
    for round_ in range(5):
        account = x_account(alice, emulator)
        post = alice.create_post(account.id, f"race {round_}")
        _sql(
            x_server,
            "UPDATE posts SET state = 'SCHEDULED', due_at = now() - interval '1 second' "
            "WHERE id = :id",
            id=post.id,
        )
        barrier = threading.Barrier(2)
        refusals: list[grpc.StatusCode] = []

        def dispatch(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            x_server.container.dispatcher.tick()
            x_server.container.dispatcher.drain()

        def publish_now(
            barrier: threading.Barrier = barrier,
            post_id: str = post.id,
            refusals: list[grpc.StatusCode] = refusals,
        ) -> None:
            barrier.wait()
            try:
                alice.publish(post_id, immediate_publish=True)
            except grpc.RpcError as error:  # the dispatcher got there first
                refusals.append(error.code())

        threads = [threading.Thread(target=dispatch), threading.Thread(target=publish_now)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert set(refusals) <= {grpc.StatusCode.FAILED_PRECONDITION}
        assert len(emulator.control.posts(text=f"race {round_}")) == 1


def test_dead_letters_are_listed_and_requeued(
    alice: Publisher, emulator: Emulator, x_server: RunningServer
) -> None:
    account = x_account(alice, emulator)
    post = alice.create_post(account.id, "gave up")
    _sql(
        x_server,
        "UPDATE posts SET state = 'DEAD_LETTERED', attempt_count = 5, last_error = 'x' "
        "WHERE id = :id",
        id=post.id,
    )
    listed = alice.publishing.ListDeadLetters(
        publishing_service_pb2.ListDeadLettersRequest(), metadata=alice.metadata
    )
    assert [p.id for p in listed.posts] == [post.id]
    requeued = alice.publishing.RequeueDeadLetter(
        publishing_service_pb2.RequeueDeadLetterRequest(post_id=post.id), metadata=alice.metadata
    )
    assert requeued.state == post_pb2.POST_STATE_SCHEDULED and requeued.attempt_count == 0
    # Only DEAD_LETTERED or FAILED posts can be requeued.
    with pytest.raises(grpc.RpcError) as caught:
        alice.publishing.RequeueDeadLetter(
            publishing_service_pb2.RequeueDeadLetterRequest(post_id=post.id),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    x_server.container.dispatcher.tick()
    x_server.container.dispatcher.drain()
    assert len(emulator.control.posts(text="gave up")) == 1


def test_failed_posts_are_listed_by_state_and_reason_and_requeued_after_an_edit(
    alice: Publisher, emulator: Emulator, x_server: RunningServer
) -> None:
    account = x_account(alice, emulator)
    duplicate = alice.create_post(account.id, "said before")
    refused = alice.create_post(account.id, "too spicy")
    dead = alice.create_post(account.id, "never answered")
    for post, state, error in (
        (duplicate, "FAILED", "X refused: You are not allowed to create a Tweet with duplicate"),
        (refused, "FAILED", "X refused: forbidden"),
        (dead, "DEAD_LETTERED", "gave up after 5 attempts: X_UNREACHABLE"),
    ):
        _sql(
            x_server,
            "UPDATE posts SET state = :state, attempt_count = 1, last_error = :error"
            " WHERE id = :id",
            id=post.id,
            state=state,
            error=error,
        )

    def listed(**fields: object) -> list[str]:
        answer = alice.publishing.ListDeadLetters(
            publishing_service_pb2.ListDeadLettersRequest(**fields), metadata=alice.metadata
        )
        return sorted(p.id for p in answer.posts)

    failed, dead_lettered = post_pb2.POST_STATE_FAILED, post_pb2.POST_STATE_DEAD_LETTERED
    assert listed() == [dead.id]  # dead letters only, as before
    assert listed(states=[failed]) == sorted([duplicate.id, refused.id])
    assert listed(states=[failed, dead_lettered]) == sorted([duplicate.id, refused.id, dead.id])
    assert listed(states=[failed], reason="DUPLICATE") == [duplicate.id]
    assert listed(states=[failed, dead_lettered], reason="x_unreachable") == [dead.id]
    assert listed(states=[failed], reason="100%_sure") == []
    for bad in (
        {"states": [post_pb2.POST_STATE_SCHEDULED]},
        {"states": [post_pb2.POST_STATE_UNSPECIFIED]},
        {"states": [failed] * 5},
        {"reason": "x" * 201},
    ):
        with pytest.raises(grpc.RpcError) as caught:
            listed(**bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad

    edited = alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=duplicate.id, text="said anew"),
            update_mask=FieldMask(paths=["text"]),
        ),
        metadata=alice.metadata,
    )
    assert edited.state == failed
    requeued = alice.publishing.RequeueDeadLetter(
        publishing_service_pb2.RequeueDeadLetterRequest(post_id=duplicate.id),
        metadata=alice.metadata,
    )
    assert requeued.state == post_pb2.POST_STATE_SCHEDULED and requeued.attempt_count == 0
    assert requeued.text == "said anew"
    x_server.container.dispatcher.tick()
    x_server.container.dispatcher.drain()
    assert len(emulator.control.posts(text="said anew")) == 1
    assert listed(states=[failed]) == [refused.id]
