"""The X spend ledger: every priced call recorded once, and the reads behind reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from uuid import UUID

from post_management.domain.x_spend import Metered, PriceTable, ReadPace, read_pace


@dataclass(frozen=True)
class SpendScope:
    """Exactly one of the three is set."""

    account_id: UUID | None = None
    user_id: str | None = None
    campaign_id: UUID | None = None


@dataclass(frozen=True)
class SpendRow:
    """Spend summed by day, kind, purpose and outcome."""

    day: date
    kind: str
    purpose: str
    outcome: str
    calls: int
    units: int
    charged_units: int
    cost_micros: int


@dataclass(frozen=True)
class BudgetState:
    budget_micros: int | None
    spent_micros: int  # this UTC month
    # What the account's SCHEDULED posts due before the month ends would cost.
    reserved_micros: int

    def read_pace(self) -> ReadPace:
        """How the metrics and follower reads of this account go on (domain.x_spend)."""
        return read_pace(self.budget_micros, self.spent_micros, self.reserved_micros)


class SpendLedger(Protocol):
    def record(self, entries: Sequence[Metered]) -> int:
        """Records each call once, in the caller's transaction; the cost in micros."""
        ...

    def rows(self, scope: SpendScope, start: datetime, end: datetime) -> list[SpendRow]: ...

    def published_posts(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        """Posts in the scope published in [start, end)."""
        ...

    def budget_states(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        """This month's budget state of each account that has a budget."""
        ...


class SpendMeter(Protocol):
    """The ledger for the publishing engine, outside its settlements: each call in its
    own transaction."""

    @property
    def prices(self) -> PriceTable: ...

    def record(self, entries: Sequence[Metered]) -> None: ...

    def budget(self, account_id: UUID) -> BudgetState | None:
        """This month's state of the account's budget; None without a budget."""
        ...

    def budgets(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        """`budget` of several accounts at once; accounts without a budget are left out."""
        ...
