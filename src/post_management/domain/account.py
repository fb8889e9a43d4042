"""X accounts a user publishes from."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from post_management.domain.errors import NotFound
from post_management.domain.post import etag_for
from post_management.domain.reasons import Reason


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
    # Credentials are stored but no configured key decrypts them (an old key removed
    # too early): the account still reads, and a save keeps what is stored.
    credentials_unreadable: bool = False
    # Monthly X spend budget in micro-dollars (domain/x_spend.py); None: no budget.
    x_monthly_budget_micros: int | None = None
    # "YYYY-MM" (UTC) when a publish would have exceeded the budget; written by the
    # publishing engine, cleared when the budget changes.
    x_budget_reached_month: str | None = None

    def budget_holds(self, now: datetime) -> bool:
        """Whether this month's budget holds the account's posts back."""
        return self.x_budget_reached_month == now.strftime("%Y-%m")

    @property
    def etag(self) -> str:
        return etag_for(self.version)

    def resume(self, now: datetime) -> bool:
        """A paused or suspended account's queue runs again. False: it was running."""
        if self.state is AccountState.ACTIVE:
            return False
        self.state = AccountState.ACTIVE
        self.updated_at = now
        return True


def account_not_found(account_id: UUID) -> NotFound:
    """The one NOT_FOUND a missing account is answered with (reason and account_id
    metadata)."""
    return NotFound(
        f"account {account_id} does not exist",
        reason=Reason.ACCOUNT_NOT_FOUND,
        metadata={"account_id": str(account_id)},
    )
