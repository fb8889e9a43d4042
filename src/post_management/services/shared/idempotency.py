"""AIP-155 request ids: a repeated create returns the first result."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID

from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason
from post_management.ports.repositories import IdempotencyRecord

MAX_REQUEST_ID_LENGTH = 128


def request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def check_request_id(request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument.for_field(
            "request_id", f"must be at most {MAX_REQUEST_ID_LENGTH} characters"
        )


def replay_of(record: IdempotencyRecord | None, digest: str) -> UUID | None:
    """What the stored `record` of a request id answers a request with `digest`: the
    resource it made, None when the id is new, INVALID_ARGUMENT (REQUEST_ID_REUSED)
    when the id came with another request."""
    if record is None:
        return None
    if record.request_hash != digest:
        raise InvalidArgument.for_field(
            "request_id",
            "was already used for a different request",
            reason=Reason.REQUEST_ID_REUSED,
        )
    return record.resource_id
