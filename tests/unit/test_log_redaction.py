"""JSON log lines: stdlib and structlog records alike, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
import structlog
from cryptography.fernet import Fernet

from post_management.domain.auth import Role
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.observability import context, logs

SECRET = "test-secret-that-is-long-enough-0123456789"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logs.configure("DEBUG", out)
    yield out
    logging.getLogger().removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_tokens_keys_and_urls_are_masked_in_every_kind_of_record(stream: io.StringIO) -> None:
    jwt = TokenCodec(SECRET, issuer="i", audience="a").mint("alice", Role.USER, timedelta(60))
    fernet = Fernet(Fernet.generate_key()).encrypt(b"access-token-value").decode()
    stdlib = logging.getLogger("test.redaction")
    with context.correlated("corr-1", post_id="p-1"):
        stdlib.info("verifying %s", jwt)
        stdlib.warning("stored", extra={"password": "hunter2", "blob": fernet})
        structlog.get_logger("test").info(
            "call",
            authorization=f"Bearer {jwt}",
            headers={"Authorization": "OAuth oauth_token=abc", "accept": "json"},
            url="postgresql://app:pa55word@db:5432/posts",
            note=f"credentials blob {fernet} inside",
            api_key="k-123",
        )
        try:
            raise ValueError(f"bad token {jwt}")
        except ValueError:
            stdlib.exception("failed")
    text = stream.getvalue()
    for secret in (jwt, fernet, "hunter2", "pa55word", "k-123", "oauth_token=abc"):
        assert secret not in text
    records = lines(stream)
    assert [r["event"] for r in records] == [
        "verifying [REDACTED]",
        "stored",
        "call",
        "failed",
    ]
    assert all(r["correlation_id"] == "corr-1" and r["post_id"] == "p-1" for r in records)
    assert records[1]["password"] == "[REDACTED]"
    assert records[2]["headers"] == {"Authorization": "[REDACTED]", "accept": "json"}
    assert records[2]["url"] == "postgresql://[REDACTED]@db:5432/posts"
    assert records[2]["note"] == "credentials blob [REDACTED] inside"
    assert "ValueError: bad token [REDACTED]" in str(records[3]["exception"])
    assert {r["level"] for r in records} == {"info", "warning", "error"}
    assert all("time" in r and "logger" in r for r in records)


def test_fields_outside_a_block_are_gone(stream: io.StringIO) -> None:
    with context.correlated("corr-2"):
        pass
    logging.getLogger("test.redaction").info("after")
    assert "correlation_id" not in lines(stream)[0]
    assert context.current() == ""


def test_a_caller_id_with_a_trailing_newline_is_replaced() -> None:
    assert context.accept("abc-123") == "abc-123"
    replaced = context.accept("abc-123\n")
    assert replaced != "abc-123\n" and "\n" not in replaced
