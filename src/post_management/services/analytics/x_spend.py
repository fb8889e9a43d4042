"""What X costs: the spend report per account, user or campaign (docs/x-spend.md)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from uuid import UUID

from post_management.domain.auth import Principal
from post_management.domain.date_range import DateRange
from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason
from post_management.domain.x_spend import Outcome, Purpose, month_start
from post_management.ports.async_unit_of_work import AsyncUnitOfWorkFactory
from post_management.ports.support import Clock
from post_management.ports.x_spend import SpendRow, SpendScope
from post_management.services.analytics.campaigns import load_campaign
from post_management.services.shared.common import load_account

MAX_REPORT_WINDOW = timedelta(days=366)


@dataclass
class KindTotal:
    calls: int = 0
    units: int = 0
    charged_units: int = 0
    cost_micros: int = 0
    refused_calls: int = 0


@dataclass
class SpendReport:
    start: datetime
    end: datetime
    total_micros: int = 0
    by_kind: dict[str, KindTotal] = field(default_factory=dict)
    by_purpose: dict[str, tuple[int, int]] = field(default_factory=dict)  # calls, cost
    daily: dict[tuple[date, str], tuple[int, int, int]] = field(default_factory=dict)
    published_posts: int = 0
    cost_per_published_post_micros: int = 0
    metrics_collector_micros: int = 0
    reconciler_micros: int = 0
    monthly_budget_micros: int = 0
    month_to_date_micros: int = 0


def summarise(rows: list[SpendRow], start: datetime, end: datetime, published: int) -> SpendReport:
    report = SpendReport(start, end)
    by_kind: dict[str, KindTotal] = defaultdict(KindTotal)
    by_purpose: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    daily: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        total = by_kind[row.kind]
        total.calls += row.calls
        total.units += row.units
        total.charged_units += row.charged_units
        total.cost_micros += row.cost_micros
        if row.outcome == Outcome.REFUSED.value:
            total.refused_calls += row.calls
        by_purpose[row.purpose][0] += row.calls
        by_purpose[row.purpose][1] += row.cost_micros
        day = daily[(row.day, row.kind)]
        day[0] += row.calls
        day[1] += row.units
        day[2] += row.cost_micros
        report.total_micros += row.cost_micros
    report.by_kind = dict(sorted(by_kind.items()))
    report.by_purpose = {k: (v[0], v[1]) for k, v in sorted(by_purpose.items())}
    report.daily = {k: (v[0], v[1], v[2]) for k, v in sorted(daily.items())}
    report.published_posts = published
    publishing = report.by_purpose.get(Purpose.PUBLISH.value, (0, 0))[1]
    report.cost_per_published_post_micros = round(publishing / published) if published else 0
    report.metrics_collector_micros = sum(
        report.by_purpose.get(p.value, (0, 0))[1] for p in (Purpose.METRICS, Purpose.GROWTH)
    )
    report.reconciler_micros = report.by_purpose.get(Purpose.RECONCILE.value, (0, 0))[1]
    return report


@dataclass(frozen=True)
class SpendQuery:
    """GetXSpend: exactly one of an account, a user or a campaign, over `dates` (open at
    the end: until now; open at the start: from the start of that month)."""

    account_id: UUID | None = None
    user_id: str | None = None
    campaign_id: UUID | None = None
    dates: DateRange = field(default_factory=DateRange)


class XSpendQueries:
    """GetXSpend, awaited on the serving loop over the asynchronous unit of work."""

    def __init__(self, uow: AsyncUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def report(self, principal: Principal, query: SpendQuery) -> SpendReport:
        scope = SpendScope(
            account_id=query.account_id, user_id=query.user_id, campaign_id=query.campaign_id
        )
        named = [v for v in (scope.account_id, scope.user_id, scope.campaign_id) if v is not None]
        if len(named) != 1:
            raise InvalidArgument.for_field(
                "account_id", "name exactly one of account_id, user_id and campaign_id"
            )
        dates = query.dates
        end = dates.end or self._clock.now()
        start = dates.start or month_start(end - timedelta(microseconds=1))
        if end - start > MAX_REPORT_WINDOW:
            raise InvalidArgument.for_field(
                "from_date",
                "the range may cover at most 366 days",
                reason=Reason.INVALID_DATE_RANGE,
            )
        async with self._uow() as uow:
            budget: tuple[int, int] | None = None
            if scope.account_id is not None:
                account = await load_account(uow, principal, scope.account_id)
                state = (await uow.spend.budget_states([account.id])).get(account.id)
                if state is not None and state.budget_micros is not None:
                    budget = (state.budget_micros, state.spent_micros)
            elif scope.campaign_id is not None:
                await load_campaign(uow, principal, scope.campaign_id)
            else:
                assert scope.user_id is not None
                principal.ensure_can_act_for(scope.user_id)
            rows = await uow.spend.rows(scope, start, end)
            published = await uow.spend.published_posts(scope, start, end)
        report = summarise(rows, start, end, published)
        if budget is not None:
            report.monthly_budget_micros, report.month_to_date_micros = budget
        return report
