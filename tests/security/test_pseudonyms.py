"""Erased users' pseudonyms are an HMAC under a key derived from HMAC_SECRET: the
tombstone and the audit rows cannot be linked back by hashing guessed user ids.
Tombstones written before (an unkeyed SHA-256) still refuse the user, and a new
erasure of the same user moves its rows to the keyed form."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from xmp.posts.v1 import account_service_pb2

from post_management.adapters.crypto import derived_key
from post_management.adapters.db.engine import make_engine
from post_management.bootstrap import resolve_secrets
from post_management.domain.auth import Role
from tests.integration.grpc_fixtures import Client, error_details
from tests.support.harness import RunningServer

# What erasures wrote before pseudonyms were keyed.
_DOMAIN = b"post-management/erased-user/v1\x00"


def _unkeyed(user_id: str) -> str:
    return "erased:" + hashlib.sha256(_DOMAIN + user_id.encode()).hexdigest()[:48]


def _sql(server: RunningServer, statement: str, **params: Any) -> list[Any]:
    engine = make_engine(server.database_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def _erase(server: RunningServer, user_id: str) -> None:
    admin = Client(server, "ops", Role.ADMIN)
    try:
        admin.accounts.EraseUserData(
            account_service_pb2.EraseUserDataRequest(user_id=user_id), metadata=admin.metadata
        )
    finally:
        admin.channel.close()


def _refused_as_erased(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.create_account("4242")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)[0] == "USER_ERASED"


def test_pseudonyms_are_keyed(clean: RunningServer, alice: Client) -> None:
    alice.create_account()
    _erase(clean, "alice")

    stored = [row[0] for row in _sql(clean, "SELECT user_hash FROM erased_users")]
    assert len(stored) == 1
    # Not the hash anyone can compute from the id, with or without the fixed prefix.
    guesses = {_unkeyed("alice"), hashlib.sha256(b"alice").hexdigest()}
    assert not any(guess.removeprefix("erased:")[:40] in stored[0] for guess in guesses)
    # An HMAC of the id under the key derived from the server's HMAC_SECRET.
    secret = resolve_secrets(clean.settings).hmac_secret
    key = derived_key(secret, "erased-users")
    expected = hmac.new(key, _DOMAIN + b"alice", hashlib.sha256).hexdigest()[:48]
    assert stored == [f"erased:k:{expected}"]
    audit_users = {row[0] for row in _sql(clean, "SELECT DISTINCT user_id FROM audit_log")}
    assert audit_users == set(stored)
    _refused_as_erased(alice)


def test_tombstones_from_before_still_refuse_and_are_rekeyed(
    clean: RunningServer, alice: Client
) -> None:
    # As an erasure before keyed pseudonyms left them: tombstone and audit row.
    old = _unkeyed("alice")
    _sql(clean, "INSERT INTO erased_users (user_hash, erased_at) VALUES (:h, now())", h=old)
    _sql(
        clean,
        "INSERT INTO audit_log (occurred_at, actor, action, resource_type, resource_id, "
        "user_id, request_id) VALUES (now(), :actor, 'post.create', 'post', "
        "gen_random_uuid(), :h, '')",
        actor=f"user:{old}",
        h=old,
    )
    _refused_as_erased(alice)

    _erase(clean, "alice")  # erasing the same user again moves its rows to the keyed form
    stored = [row[0] for row in _sql(clean, "SELECT user_hash FROM erased_users")]
    assert len(stored) == 1 and stored[0].startswith("erased:k:")
    rows = _sql(clean, "SELECT user_id, actor FROM audit_log")
    assert rows and all(old not in f"{user}{actor}" for user, actor in rows)
    assert {user for user, _ in rows} == set(stored)
    _refused_as_erased(alice)
