"""Opaque page tokens (AIP-158) bound to the query that produced them and signed.

A token is `<payload>.<signature>`: the payload (cursor and a fingerprint of the
query) in url-safe base64, and an HMAC-SHA256 of it under the server's page-token
key. A token whose signature does not match, whatever it holds, is refused before
its contents are read, so a caller can never hand the database a cursor of its own
making; the cursor is range-checked as well (docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason
from post_management.ports.repositories import Cursor

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Far longer than any token this service writes; longer ones are not even decoded.
MAX_TOKEN_LENGTH = 512
_SIGNATURE_BYTES = 16


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


class Created(Protocol):
    """A row listed in creation order, newest first or oldest first."""

    @property
    def id(self) -> UUID: ...

    @property
    def created_at(self) -> datetime: ...


def by_creation(row: Created) -> Cursor:
    return Cursor(row.created_at, row.id)


def page_of(
    rows: list[T], limit: int, query: dict[str, str], cursor: Callable[[T], Cursor]
) -> Page[T]:
    """The first `limit` of `rows`, read with one more to learn whether a next page
    follows, and that page's token ("" when none) from the last row's cursor."""
    if len(rows) <= limit:
        return Page(rows, "")
    shown = rows[:limit]
    return Page(shown, encode_token(cursor(shown[-1]), query))


class _Key:
    """The signing key of this process. bootstrap sets it from HMAC_SECRET, so every
    replica signs alike; until then (tests of single services) a random one."""

    value: bytes = secrets.token_bytes(32)


def use_key(key: bytes) -> None:
    """Sign and check page tokens with `key` from now on (at start-up)."""
    if len(key) < 32:
        raise ValueError("a page-token key needs at least 32 bytes")
    _Key.value = key


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.for_field("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(query: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def _signature(payload: str) -> bytes:
    return hmac.new(_Key.value, payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def encode_token(cursor: Cursor, query: dict[str, str]) -> str:
    raw = json.dumps(
        {"t": cursor.created_at.isoformat(), "i": str(cursor.id), "q": _fingerprint(query)}
    )
    payload = _b64(raw.encode())
    return f"{payload}.{_b64(_signature(payload))}"


def _invalid() -> InvalidArgument:
    return InvalidArgument.for_field(
        "page_token", "is not a page token of this service", reason=Reason.INVALID_PAGE_TOKEN
    )


def decode_token(token: str, query: dict[str, str]) -> Cursor | None:
    """The cursor in `token`; INVALID_ARGUMENT if it is malformed, not signed by this
    service, out of range, or from another query."""
    if not token:
        return None
    payload, _, signature = token.partition(".")
    try:
        if len(token) > MAX_TOKEN_LENGTH or not hmac.compare_digest(
            _unb64(signature), _signature(payload)
        ):
            raise _invalid()
        data = json.loads(_unb64(payload))
        cursor = Cursor(datetime.fromisoformat(data["t"]), UUID(data["i"]))
        fingerprint = data["q"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _invalid() from None
    # Every cursor this service writes holds a time with its offset.
    if cursor.created_at.tzinfo is None:
        raise _invalid()
    if fingerprint != _fingerprint(query):
        raise InvalidArgument.for_field(
            "page_token", "belongs to a different query", reason=Reason.PAGE_TOKEN_MISMATCH
        )
    return cursor
