"""The X spend ledger over the memory store (ports/x_spend.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from uuid import UUID

from post_management.adapters.memory.store import MemoryStore, SpendEntry
from post_management.domain.post import PostState
from post_management.domain.x_spend import (
    CallKind,
    Metered,
    Outcome,
    PriceTable,
    month_start,
    publish_cost,
)
from post_management.ports.x_spend import BudgetState, SpendRow, SpendScope

_READS = frozenset({CallKind.POST_READ, CallKind.USER_READ})


def record_spend(store: MemoryStore, prices: PriceTable, entries: Sequence[Metered]) -> int:
    """Each call once; a read of a resource already billed this UTC day and a refused
    call are free (as adapters/db/spend_ledger.record_spend)."""
    total = 0
    tables = store.tables
    for entry in entries:
        price = prices.unit_price(entry.kind, entry.occurred_at)
        outcome, charged = entry.outcome, entry.units
        if outcome is Outcome.REFUSED:
            charged = 0
        elif entry.kind in _READS and entry.resources:
            day = entry.occurred_at.astimezone(UTC).date()
            fresh = {(day, entry.kind.value, r) for r in entry.resources} - tables.read_charges
            tables.read_charges |= fresh
            charged = len(fresh)
            if charged == 0:
                outcome = Outcome.DEDUPLICATED
        post = tables.posts.get(entry.post_id) if entry.post_id is not None else None
        cost = charged * price
        tables.spend.append(
            SpendEntry(
                occurred_at=entry.occurred_at,
                user_id=entry.user_id,
                account_id=entry.account_id,
                post_id=entry.post_id,
                campaign_id=post.campaign_id if post is not None else None,
                kind=entry.kind.value,
                purpose=entry.purpose.value,
                outcome=outcome.value,
                units=entry.units,
                charged_units=charged,
                cost_micros=cost,
            )
        )
        total += cost
    return total


def _scope_of(scope: SpendScope) -> tuple[str, object]:
    for name in ("account_id", "user_id", "campaign_id"):
        value = getattr(scope, name)
        if value is not None:
            return name, value
    raise ValueError("a spend scope names an account, a user or a campaign")


class MemorySpendLedger:
    def __init__(self, store: MemoryStore, prices: PriceTable) -> None:
        self._store = store
        self._prices = prices

    def record(self, entries: Sequence[Metered]) -> int:
        return record_spend(self._store, self._prices, entries)

    def rows(self, scope: SpendScope, start: datetime, end: datetime) -> list[SpendRow]:
        name, value = _scope_of(scope)
        groups: dict[tuple[date, str, str, str], list[SpendEntry]] = defaultdict(list)
        for entry in self._store.tables.spend:
            if getattr(entry, name) == value and start <= entry.occurred_at < end:
                day = entry.occurred_at.astimezone(UTC).date()
                groups[(day, entry.kind, entry.purpose, entry.outcome)].append(entry)
        return [
            SpendRow(
                *key,
                calls=len(found),
                units=sum(e.units for e in found),
                charged_units=sum(e.charged_units for e in found),
                cost_micros=sum(e.cost_micros for e in found),
            )
            for key, found in sorted(groups.items())
        ]

    def published_posts(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        name, value = _scope_of(scope)
        return sum(
            1
            for post in self._store.tables.posts.values()
            if getattr(post, name) == value
            and post.state is PostState.PUBLISHED
            and post.published_at is not None
            and start <= post.published_at < end
        )

    def budget_states(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        return budget_states(self._store, self._prices, account_ids)


def budget_states(
    store: MemoryStore, prices: PriceTable, account_ids: Sequence[UUID]
) -> dict[UUID, BudgetState]:
    now = store.now()
    start = month_start(now)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    tables = store.tables
    found = {}
    for account_id in account_ids:
        account = tables.accounts.get(account_id)
        if account is None or account.x_monthly_budget_micros is None:
            continue
        spent = sum(
            e.cost_micros
            for e in tables.spend
            if e.account_id == account_id and e.occurred_at >= start
        )
        reserved = sum(
            publish_cost([p.text, *p.thread], len(p.attachment_ids), prices, now)
            for p in tables.posts.values()
            if p.account_id == account_id
            and p.state is PostState.SCHEDULED
            and p.scheduled_for is not None
            and p.scheduled_for < end
        )
        found[account_id] = BudgetState(account.x_monthly_budget_micros, spent, reserved)
    return found


class MemorySpendMeter:
    """The ledger for the publishing engine, each call on its own (SpendMeter)."""

    def __init__(self, store: MemoryStore, prices: PriceTable | None = None) -> None:
        self._store = store
        self._prices = prices or PriceTable()

    @property
    def prices(self) -> PriceTable:
        return self._prices

    def record(self, entries: Sequence[Metered]) -> None:
        with self._store.lock:
            record_spend(self._store, self._prices, entries)

    def budget(self, account_id: UUID) -> BudgetState | None:
        with self._store.lock:
            return budget_states(self._store, self._prices, [account_id]).get(account_id)

    def budgets(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        with self._store.lock:
            return budget_states(self._store, self._prices, account_ids)
