"""A settlement: what becomes of a claimed post, decided by the outcome table
(outcomes.py) and applied by the publish queue in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from post_management.domain.account import AccountState
from post_management.domain.events import DomainEvent
from post_management.domain.post import PostState
from post_management.domain.x_spend import Metered


@dataclass(frozen=True)
class Settlement:
    """What becomes of a claimed post, applied in one transaction."""

    state: PostState
    outcome: str  # recorded in post_attempts
    detail: str = ""
    x_post_id: str = ""
    published_at: datetime | None = None
    # Back to SCHEDULED: due this long after the database's now() (None: unchanged).
    due_in: timedelta | None = None
    # Stays PUBLISHING (unknown): the reconciler looks this long after now().
    reconcile_in: timedelta | None = None
    unknown_cause: str = ""
    # Rate limits and suspensions are not the post's fault: the attempt is refunded.
    refund_attempt: bool = False
    account_state: AccountState | None = None
    account_rate_limited_until: datetime | None = None
    events: tuple[DomainEvent, ...] = ()
    # The UTC month ("YYYY-MM") whose X budget now holds the account's posts back.
    account_budget_month: str | None = None
    # The X calls of this attempt (domain/x_spend.py), recorded with the outcome.
    spent: tuple[Metered, ...] = ()
