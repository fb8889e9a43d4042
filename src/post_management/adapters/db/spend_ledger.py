"""The X spend ledger over SQLAlchemy Core (docs/x-spend.md)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from post_management.adapters.db.clock import NOW_SQL
from post_management.adapters.db.spend_schema import x_read_charges
from post_management.domain.x_spend import (
    CallKind,
    Metered,
    Outcome,
    PriceTable,
    publish_cost,
)
from post_management.observability.metrics import X_SPEND
from post_management.ports.x_spend import BudgetState, SpendRow, SpendScope

_READS = frozenset({CallKind.POST_READ, CallKind.USER_READ})

_ROWS = """
    SELECT (s.occurred_at AT TIME ZONE 'UTC')::date AS day, s.kind, s.purpose, s.outcome,
           count(*) AS calls, sum(s.units) AS units, sum(s.charged_units) AS charged_units,
           sum(s.cost_micros) AS cost_micros
    FROM x_spend s
    WHERE {scope} AND s.occurred_at >= :start AND s.occurred_at < :end
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""

_PUBLISHED = """
    SELECT count(*) FROM posts p
    WHERE {scope} AND p.state = 'PUBLISHED' AND p.published_at >= :start AND p.published_at < :end
"""

_SCOPES = {
    "account_id": ("s.account_id = :value", "p.account_id = :value"),
    "user_id": ("s.user_id = :value", "p.user_id = :value"),
    "campaign_id": ("s.campaign_id = :value", "p.campaign_id = :value"),
}


def _on_db_clock(statement: str) -> TextClause:
    """Months are the database clock's, the engine's one clock (adapters/db/clock.py)."""
    return text(statement.replace("now()", NOW_SQL))


def _scope(scope: SpendScope) -> tuple[str, object]:
    for name in ("account_id", "user_id", "campaign_id"):
        value = getattr(scope, name)
        if value is not None:
            return name, value
    raise ValueError("a spend scope names an account, a user or a campaign")


# One statement per scope, built once (shared with the asynchronous unit of work).
ROWS = {name: text(_ROWS.format(scope=clauses[0])) for name, clauses in _SCOPES.items()}
PUBLISHED = {name: text(_PUBLISHED.format(scope=clauses[1])) for name, clauses in _SCOPES.items()}

# The month is the database's (UTC), like every other time decision.
BUDGETS = _on_db_clock(
    "SELECT a.id, a.x_monthly_budget_micros AS budget, coalesce(("
    "  SELECT sum(s.cost_micros) FROM x_spend s WHERE s.account_id = a.id"
    "  AND s.occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC')"
    "  AT TIME ZONE 'UTC'), 0) AS spent "
    "FROM accounts a WHERE a.id = ANY(:ids) AND a.x_monthly_budget_micros IS NOT NULL"
)
SCHEDULED_THIS_MONTH = _on_db_clock(
    "SELECT account_id, text, thread, cardinality(attachment_ids) AS media "
    "FROM posts WHERE account_id = ANY(:ids) AND state = 'SCHEDULED' "
    "AND due_at < (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')"
    " AT TIME ZONE 'UTC'"
)


def scope_params(
    scope: SpendScope, start: datetime, end: datetime
) -> tuple[str, dict[str, object]]:
    """The scope's name (the key of its ROWS and PUBLISHED statements) and their values."""
    name, value = _scope(scope)
    return name, {"value": value, "start": start, "end": end}


def spend_row(row: Mapping[Any, Any]) -> SpendRow:
    return SpendRow(
        row["day"],
        row["kind"],
        row["purpose"],
        row["outcome"],
        int(row["calls"]),
        int(row["units"]),
        int(row["charged_units"]),
        int(row["cost_micros"]),
    )


def budget_states_of(
    budgets: Iterable[Mapping[Any, Any]],
    scheduled: Iterable[Mapping[Any, Any]],
    prices: PriceTable,
) -> dict[UUID, BudgetState]:
    """BUDGETS' rows, with SCHEDULED_THIS_MONTH's posts' cost reserved."""
    planned: dict[UUID, int] = defaultdict(int)
    now = datetime.now(UTC)
    for row in scheduled:
        segments = [row["text"], *row["thread"]]
        planned[row["account_id"]] += publish_cost(segments, row["media"], prices, now)
    return {
        row["id"]: BudgetState(int(row["budget"]), int(row["spent"]), planned[row["id"]])
        for row in budgets
    }


# Every call of a batch in one statement, in order, from one JSON document; each row's
# campaign is its post's.
_INSERT_SPEND = text(
    """
    INSERT INTO x_spend (occurred_at, user_id, account_id, post_id, campaign_id, kind, purpose,
                         outcome, units, charged_units, unit_price_micros, cost_micros)
    SELECT CAST(e->>'occurred_at' AS timestamptz), e->>'user_id',
           CAST(e->>'account_id' AS uuid), CAST(e->>'post_id' AS uuid),
           (SELECT p.campaign_id FROM posts p WHERE p.id = CAST(e->>'post_id' AS uuid)),
           e->>'kind', e->>'purpose', e->>'outcome', CAST(e->>'units' AS int),
           CAST(e->>'charged_units' AS int), CAST(e->>'price' AS bigint),
           CAST(e->>'cost' AS bigint)
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS v(e, n)
    ORDER BY v.n
    """
)


def record_spend(connection: Connection, prices: PriceTable, entries: Sequence[Metered]) -> int:
    """Records each call in the connection's transaction; returns their cost in micros.

    A read of a post or user already billed this UTC day is free (X bills a resource
    once a day); a refused call is free."""
    total = 0
    rows = []
    for entry in entries:
        price = prices.unit_price(entry.kind, entry.occurred_at)
        outcome, charged = entry.outcome, entry.units
        if outcome is Outcome.REFUSED:
            charged = 0
        elif entry.kind in _READS and entry.resources:
            charged = _new_reads(connection, entry)
            if charged == 0:
                outcome = Outcome.DEDUPLICATED
        cost = charged * price
        rows.append(
            {
                "occurred_at": entry.occurred_at.isoformat(),
                "user_id": entry.user_id,
                "account_id": None if entry.account_id is None else str(entry.account_id),
                "post_id": None if entry.post_id is None else str(entry.post_id),
                "kind": entry.kind.value,
                "purpose": entry.purpose.value,
                "outcome": outcome.value,
                "units": entry.units,
                "charged_units": charged,
                "price": price,
                "cost": cost,
            }
        )
        if cost:
            X_SPEND.labels(kind=entry.kind.value).inc(cost / 1_000_000)
        total += cost
    if rows:
        connection.execute(_INSERT_SPEND, {"rows": json.dumps(rows)})
    return total


def _new_reads(connection: Connection, entry: Metered) -> int:
    day = entry.occurred_at.astimezone(UTC).date()
    rows = [{"day": day, "kind": entry.kind.value, "resource_id": r} for r in entry.resources]
    statement = (
        pg_insert(x_read_charges)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(x_read_charges.c.resource_id)
    )
    return len(connection.execute(statement).all())


class SqlSpendLedger:
    def __init__(self, connection: Connection, prices: PriceTable) -> None:
        self._conn = connection
        self._prices = prices

    def record(self, entries: Sequence[Metered]) -> int:
        return record_spend(self._conn, self._prices, entries)

    def rows(self, scope: SpendScope, start: datetime, end: datetime) -> list[SpendRow]:
        name, values = scope_params(scope, start, end)
        return [spend_row(row._mapping) for row in self._conn.execute(ROWS[name], values)]

    def published_posts(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        name, values = scope_params(scope, start, end)
        return int(self._conn.execute(PUBLISHED[name], values).scalar_one())

    def budget_states(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        if not account_ids:
            return {}
        budgets = [r._mapping for r in self._conn.execute(BUDGETS, {"ids": list(account_ids)})]
        if not budgets:
            return {}
        ids = [row["id"] for row in budgets]
        scheduled = [r._mapping for r in self._conn.execute(SCHEDULED_THIS_MONTH, {"ids": ids})]
        return budget_states_of(budgets, scheduled, self._prices)


class SqlSpendMeter:
    """The ledger on its own connections (SpendMeter)."""

    def __init__(self, engine: Engine, prices: PriceTable) -> None:
        self._engine = engine
        self._prices = prices

    @property
    def prices(self) -> PriceTable:
        return self._prices

    def record(self, entries: Sequence[Metered]) -> None:
        if entries:
            with self._engine.begin() as connection:
                record_spend(connection, self._prices, entries)

    def budget(self, account_id: UUID) -> BudgetState | None:
        with self._engine.connect() as connection:
            return (
                SqlSpendLedger(connection, self._prices).budget_states([account_id]).get(account_id)
            )

    def budgets(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        with self._engine.connect() as connection:
            return SqlSpendLedger(connection, self._prices).budget_states(account_ids)
