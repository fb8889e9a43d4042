"""Page tokens are signed by the server and their cursors range-checked: a token a
caller made or changed is INVALID_ARGUMENT, never a query with its cursor (a forged
audit-log cursor used to overflow a bigint and answer INTERNAL)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from xmp.posts.v1 import account_service_pb2, post_service_pb2

from post_management.ports.repositories import Cursor
from post_management.services.shared import pagination
from tests.integration.grpc_fixtures import Client, error_details


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(cursor_id: uuid.UUID, query: dict[str, str]) -> str:
    """A token in the shape the service wrote before tokens were signed."""
    fingerprint = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
    raw = {"t": datetime.now(UTC).isoformat(), "i": str(cursor_id), "q": fingerprint}
    return _b64(json.dumps(raw).encode())


def _audit(client: Client, token: str) -> Any:
    return client.accounts.ListAuditEvents(
        account_service_pb2.ListAuditEventsRequest(user_id="alice", page_token=token),
        metadata=client.metadata,
    )


def _refused(call: Any) -> tuple[str, list[tuple[str, str]]]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return error_details(caught.value)


def test_a_forged_audit_cursor_is_invalid_argument(alice: Client) -> None:
    alice.create_account()
    query = {"user_id": "alice", "list": "audit"}
    for cursor_id in (uuid.UUID(int=2**100), uuid.UUID(int=5)):
        reason, violations = _refused(lambda c=cursor_id: _audit(alice, _unsigned(c, query)))
        assert reason == "INVALID_PAGE_TOKEN"
        assert [field for field, _ in violations] == ["page_token"]


def test_a_signed_cursor_out_of_range_is_invalid_argument(alice: Client) -> None:
    # Signed by the server's own key (the server runs in this process), yet no audit
    # row can have this number: the range check refuses it before the query.
    query = {"user_id": "alice", "list": "audit"}
    token = pagination.encode_token(Cursor(datetime.now(UTC), uuid.UUID(int=2**100)), query)
    reason, _ = _refused(lambda: _audit(alice, token))
    assert reason == "INVALID_PAGE_TOKEN"


def test_tokens_are_signed_and_changes_are_refused(alice: Client) -> None:
    account = alice.create_account()
    for text in ("one", "two", "three"):
        alice.create_post(account.id, text)

    def page(token: str) -> Any:
        return alice.posts.ListPosts(
            post_service_pb2.ListPostsRequest(page_size=1, page_token=token),
            metadata=alice.metadata,
        )

    first = page("")
    token = first.next_page_token
    assert token and page(token).posts  # a genuine token pages on

    payload, _, signature = token.partition(".")
    assert signature, "tokens carry a signature"
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["i"] = str(uuid.UUID(int=0))  # another cursor, the signature kept
    changed = _b64(json.dumps(data).encode())
    for forged in (
        f"{changed}.{signature}",
        changed,
        payload,
        f"{payload}.{_b64(b'0' * 16)}",
        _unsigned(uuid.uuid4(), {"user_id": "alice", "account_id": "", "state": ""}),
        token + "A" * 600,
    ):
        reason, _ = _refused(lambda f=forged: page(f))
        assert reason == "INVALID_PAGE_TOKEN", forged
