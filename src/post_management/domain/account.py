"""X accounts a user publishes from."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from post_management.domain.post import etag_for


class AccountState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    SUSPENDED = "SUSPENDED"


@dataclass(frozen=True)
class Credentials:
    """OAuth 1.0a user-context tokens. Never logged: repr hides them."""

    access_token: str = field(repr=False)
    access_token_secret: str = field(repr=False)


@dataclass
class Account:
    id: UUID
    user_id: str
    handle: str
    x_user_id: str
    created_at: datetime
    updated_at: datetime
    timezone: str = "UTC"
    state: AccountState = AccountState.ACTIVE
    # JSON form of the posting rules (see domain.posting_rules for their meaning).
    posting_rules: dict[str, Any] = field(default_factory=dict)
    credentials: Credentials | None = field(default=None, repr=False)
    version: int = 1

    @property
    def etag(self) -> str:
        return etag_for(self.version)
