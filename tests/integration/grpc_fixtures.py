"""Helpers for the gRPC tests of every tier: a caller's stubs with its token, an account
X knows, rich error details, REST through Envoy. The integration tier's fixtures
(server, x_server) are in tests/integration/conftest.py, the callers on a tier's server
(clean, alice, bob) in tests/fixtures/callers.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Self

import grpc
import requests
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    account_service_pb2_grpc,
    media_pb2,
    post_pb2,
    post_service_pb2,
    post_service_pb2_grpc,
)

from post_management.domain.auth import Role
from tests.fixtures.emulator import Emulator
from tests.support.harness import RunningServer, auth


def rest_as(
    server: RunningServer, envoy_base_url: str, subject: str
) -> Iterator[tuple[str, requests.Session]]:
    """Envoy's base URL and a loopback session carrying `subject`'s token."""
    with requests.Session() as session:
        session.trust_env = False  # loopback only
        session.headers["authorization"] = f"Bearer {server.token(subject)}"
        yield envoy_base_url, session


class Client:
    """Stubs for one caller (a user or a service) with its token attached."""

    def __init__(self, server: RunningServer, subject: str, role: Role = Role.USER) -> None:
        self.subject = subject
        self.channel = server.channel()
        self.metadata = auth(server.token(subject, role))
        self.posts = post_service_pb2_grpc.PostServiceStub(self.channel)
        self.accounts = account_service_pb2_grpc.AccountServiceStub(self.channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.channel.close()

    def create_account(self, x_user_id: str = "1001", **fields: object) -> account_pb2.Account:
        account = account_pb2.Account(
            user_id=self.subject, handle=f"h{x_user_id}", x_user_id=x_user_id, **fields
        )
        return self.accounts.CreateAccount(  # type: ignore[no-any-return]
            account_service_pb2.CreateAccountRequest(account=account), metadata=self.metadata
        )

    def create_post(self, account_id: str, text: str = "hello", **fields: object) -> post_pb2.Post:
        post = post_pb2.Post(user_id=self.subject, account_id=account_id, text=text, **fields)
        return self.posts.CreatePost(  # type: ignore[no-any-return]
            post_service_pb2.CreatePostRequest(post=post), metadata=self.metadata
        )

    def upload(
        self, data: bytes, mime_type: str = "image/png", **fields: object
    ) -> media_pb2.Media:
        request = post_service_pb2.UploadMediaRequest(
            user_id=self.subject, mime_type=mime_type, data=data, **fields
        )
        return self.posts.UploadMedia(request, metadata=self.metadata)  # type: ignore[no-any-return]


def x_account(client: Client, emulator: Emulator) -> account_pb2.Account:
    """An account with credentials the emulator knows, under a fresh X user id."""
    x_user_id = str(uuid.uuid4().int % 10**12)
    emulator.control.register_user(f"tok-{x_user_id}", user_id=x_user_id)
    return client.create_account(
        x_user_id,
        credentials=account_pb2.XCredentials(
            access_token=f"tok-{x_user_id}", access_token_secret="s"
        ),
    )


def error_details(error: grpc.RpcError) -> tuple[str, list[tuple[str, str]]]:
    """(ErrorInfo.reason, [(field, description)]) from a rich status."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no rich status details"
    reason, violations = "", []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return reason, violations
