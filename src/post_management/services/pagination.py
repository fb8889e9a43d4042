"""Opaque page tokens (AIP-158) bound to the query that produced them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from post_management.domain.errors import InvalidArgument
from post_management.ports.repositories import Cursor

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.for_field("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(query: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def encode_token(cursor: Cursor, query: dict[str, str]) -> str:
    raw = json.dumps(
        {"t": cursor.created_at.isoformat(), "i": str(cursor.id), "q": _fingerprint(query)}
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, query: dict[str, str]) -> Cursor | None:
    """The cursor in `token`; INVALID_ARGUMENT if it is malformed or from another query."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = Cursor(datetime.fromisoformat(data["t"]), UUID(data["i"]))
        fingerprint = data["q"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument.for_field(
            "page_token", "is not a page token of this service", reason="INVALID_PAGE_TOKEN"
        ) from None
    if fingerprint != _fingerprint(query):
        raise InvalidArgument.for_field(
            "page_token", "belongs to a different query", reason="PAGE_TOKEN_MISMATCH"
        )
    return cursor
