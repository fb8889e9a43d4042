"""Campaigns: named groups of one user's posts, reported together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason

MAX_NAME_LENGTH = 100


@dataclass
class Campaign:
    id: UUID
    user_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def checked_name(name: str, field: str = "campaign.name") -> str:
    """1-100 printable characters, without surrounding blanks."""
    if not name:
        raise InvalidArgument.for_field(field, "is required", reason=Reason.MISSING_FIELD)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument.for_field(field, f"must be at most {MAX_NAME_LENGTH} characters")
    if not name.isprintable() or name != name.strip():
        raise InvalidArgument.for_field(field, "must be printable, without surrounding blanks")
    return name


def checked_period(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and starts_at >= ends_at:
        raise InvalidArgument.for_field(
            "campaign.end_time", "must be after start_time", reason=Reason.INVALID_DATE_RANGE
        )
