"""No secret reaches a log line or an error message: every log record of a broad
scenario (accounts with credentials, a publish through X, bad tokens, failures) is
captured at DEBUG, both as the record itself and as the JSON the service writes."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from xmp.posts.v1 import account_pb2, account_service_pb2, post_pb2, post_service_pb2

from post_management.bootstrap import resolve_secrets
from post_management.domain.auth import Role
from post_management.observability.logs import json_formatter
from tests.conftest import truncate
from tests.fixtures.emulator import Emulator
from tests.integration.test_publishing_grpc import Publisher
from tests.support.harness import JWT_SECRET, RunningServer, auth, settings_for
from x_emulator.server import EmulatorThread

ACCESS_TOKEN = f"at-{uuid.uuid4().hex}"
ACCESS_SECRET = f"ats-{uuid.uuid4().hex}"


class Capture(logging.Handler):
    """Keeps each record's own text and its rendering by the service's formatter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.raw: list[str] = []
        self.rendered = io.StringIO()
        self._json = json_formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a library's bad format string must not hide its args
            text = f"{record.msg!r} {record.args!r}"
        self.raw.append(f"{text} {record.exc_text or ''} {record.__dict__!r}")
        self.rendered.write(self._json.format(record) + "\n")


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture
def server(
    machine_database: str,
    emulator_server: EmulatorThread,
    emulator: Emulator,
    tmp_path_factory: pytest.TempPathFactory,
    captured: Capture,
) -> Iterator[RunningServer]:
    truncate(machine_database)
    settings = settings_for(
        machine_database,
        Path(tmp_path_factory.mktemp("data")),
        x_api_base_url=emulator_server.base_url,
        x_timeout_seconds=2,
        log_level="DEBUG",
    )
    running = RunningServer(settings)
    yield running
    running.stop()


def _error_text(error: grpc.RpcError) -> str:
    call: Any = error  # a grpc.Call as well
    parts = [str(call.details())]
    parts += [f"{key}={value!r}" for key, value in call.trailing_metadata() or ()]
    return " ".join(parts)


def test_no_secret_in_logs_or_errors(
    server: RunningServer, emulator: Emulator, captured: Capture
) -> None:
    emulator.control.register_user(ACCESS_TOKEN, user_id="90001")
    alice = Publisher(server, "alice")
    errors: list[str] = []
    account = alice.create_account(
        "90001",
        credentials=account_pb2.XCredentials(
            access_token=ACCESS_TOKEN, access_token_secret=ACCESS_SECRET
        ),
    )
    post = alice.create_post(account.id, "a post that goes out")
    published = alice.publish(post.id, immediate_publish=True)
    assert published.post.state == post_pb2.POST_STATE_PUBLISHED

    # X refuses the next one: the failure is logged and stored.
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=400)
    refused = alice.create_post(account.id, "a post X refuses")
    alice.publish(refused.id, immediate_publish=True)

    # Bad input carrying the secrets, and bad tokens of every kind.
    with pytest.raises(grpc.RpcError) as caught:
        alice.accounts.CreateAccount(
            account_service_pb2.CreateAccountRequest(
                account=account_pb2.Account(
                    user_id="alice",
                    handle="bad handle!",
                    x_user_id="x",
                    credentials=account_pb2.XCredentials(
                        access_token=ACCESS_TOKEN, access_token_secret=ACCESS_SECRET
                    ),
                )
            ),
            metadata=alice.metadata,
        )
    errors.append(_error_text(caught.value))
    expired = server.token("alice", Role.USER, ttl=-3600)
    forged = jwt.encode({"sub": "alice", "role": "admin"}, "not-the-secret-" * 3)
    garbage = "eyJhbGciOiJIUzI1NiJ9.not-json.sig"
    bad_tokens = [expired, forged, garbage]
    for token in bad_tokens:
        with pytest.raises(grpc.RpcError) as caught:
            alice.posts.ListPosts(post_service_pb2.ListPostsRequest(), metadata=auth(token))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        errors.append(_error_text(caught.value))
    alice.channel.close()

    keys = server.settings.auth.encryption_keys
    assert keys is not None
    secrets = {
        "user token": alice.metadata[0][1].removeprefix("Bearer "),
        "access token": ACCESS_TOKEN,
        "access token secret": ACCESS_SECRET,
        "jwt secret": JWT_SECRET,
        "hmac secret": resolve_secrets(server.settings).hmac_secret,
        **{f"fernet key {n}": k for n, k in enumerate(keys.get_secret_value().split(","))},
        **{f"bad token {n}": t for n, t in enumerate(bad_tokens)},
    }
    rendered = captured.rendered.getvalue()
    raw = "\n".join(captured.raw)
    assert len(captured.raw) > 10, "the scenario logged nothing: the capture is broken"
    for name, secret in secrets.items():
        assert secret not in rendered, f"{name} in the service's log output"
        assert secret not in raw, f"{name} in a log record"
        for message in errors:
            assert secret not in message, f"{name} in an error message"
