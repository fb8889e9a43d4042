"""What publishing costs, against the X emulator: a scripted day with hand-computed
totals, and a monthly budget that holds a post and lets it go when raised.

The day, at X's published prices (micro-dollars):

| Call | Cost |
|---|---|
| p1 "Morning hello" | post_create 15,000 |
| p2 "Deal at shop-a.com today" (a bare domain is a link) | post_create_with_url 200,000 |
| p3 thread "Part one", "Part two https://example.com/b", "Part three" | 15,000 + 200,000 + 15,000 |
| p4 "Look at this" with one image | media_upload 0, post_create 15,000 |
| p5 "Lost answer": X stores it, the answer is lost | post_create 15,000 (unknown: billed) |
| the reconciler reads the timeline: 7 posts (p1-p5, p3's 3 segments) | post_read 35,000 |
| the collector reads p1-p5 the same UTC day: all read and billed already | post_read 0 |

Publishing 475,000 over 5 published posts (95,000 each), the reconciler 35,000, total
510,000.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from post_management.adapters.cache import InProcessCache
from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.analytics_repository import AdvisoryLeaderLock
from post_management.adapters.db.async_reads import AsyncPool
from post_management.adapters.db.async_unit_of_work import AsyncSqlUnitOfWorkFactory
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.x.client import TweepyXApi
from post_management.domain.auth import Principal, Role
from post_management.domain.events import X_SPEND_BUDGET_REACHED
from post_management.domain.post import PostState
from post_management.domain.privacy import Pseudonyms
from post_management.services.analytics.metrics_collection import MetricsCollector
from post_management.services.analytics.x_spend import SpendQuery, SpendReport, XSpendQueries
from tests.integration.publishing_fixtures import ENCRYPTION_KEY, Engine_

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048


def spend_rows(engine: Engine_) -> list[tuple[object, ...]]:
    with engine.engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT post_id, kind, purpose, outcome, units, charged_units, cost_micros "
                    "FROM x_spend ORDER BY id"
                )
            ).all()
        )


async def _report(database: str, engine_: Engine_, query: SpendQuery) -> SpendReport:
    """GetXSpend's use case over the asynchronous unit of work, on a pool of its own."""
    pool = AsyncPool(database, min_size=1, max_size=1, name="commands")
    await pool.open()
    try:
        box, pseudonyms = FernetBox([ENCRYPTION_KEY]), Pseudonyms(b"k" * 32)
        uow = AsyncSqlUnitOfWorkFactory(pool, box, pseudonyms)
        return await XSpendQueries(uow, engine_.clock).report(Principal("alice", Role.USER), query)
    finally:
        await pool.close()


def test_a_scripted_day_costs_what_x_charges(
    engine_: Engine_, x_api: TweepyXApi, machine_database: str
) -> None:
    account = engine_.account()
    posts = {
        "p1": engine_.post(account, "Morning hello"),
        "p2": engine_.post(account, "Deal at shop-a.com today"),
        "p3": engine_.post(
            account, "Part one", thread=("Part two https://example.com/b", "Part three")
        ),
        "p4": engine_.post(account, "Look at this", attachments=(engine_.media(PNG, "image/png"),)),
    }
    engine_.run_until_idle()
    posts["p5"] = engine_.post(account, "Lost answer")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    engine_.run_until_idle()
    engine_.clock.advance(engine_.settings.timing.lag_bound)
    engine_.run_until_idle()
    for name, post in posts.items():
        assert engine_.load(post.id).state is PostState.PUBLISHED, name
    # The collector reads the five posts later the same UTC day: billed already.
    collector = MetricsCollector(
        SqlUnitOfWorkFactory(engine_.engine, FernetBox([ENCRYPTION_KEY]), Pseudonyms(b"k" * 32)),
        x_api,
        engine_.clock,
        InProcessCache(),
        AdvisoryLeaderLock(engine_.engine),
    )
    assert collector.tick() == 5

    rows = spend_rows(engine_)
    by_post = {name: [r[1:] for r in rows if r[0] == post.id] for name, post in posts.items()}
    assert by_post["p1"] == [("post_create", "publish", "charged", 1, 1, 15_000)]
    assert by_post["p2"] == [("post_create_with_url", "publish", "charged", 1, 1, 200_000)]
    assert by_post["p3"] == [
        ("post_create", "publish", "charged", 1, 1, 15_000),
        ("post_create_with_url", "publish", "charged", 1, 1, 200_000),
        ("post_create", "publish", "charged", 1, 1, 15_000),
    ]
    assert by_post["p4"] == [
        ("media_upload", "publish", "charged", 1, 1, 0),
        ("post_create", "publish", "charged", 1, 1, 15_000),
    ]
    assert by_post["p5"][0] == ("post_create", "publish", "unknown", 1, 1, 15_000)
    assert by_post["p5"][1:] == [("post_read", "reconcile", "charged", 7, 7, 35_000)]
    metrics = [r[1:] for r in rows if r[2] == "metrics"]
    assert metrics == [("post_read", "metrics", "deduplicated", 5, 0, 0)]
    assert sum(int(r[6]) for r in rows) == 510_000  # type: ignore[call-overload]
    # The report over the same calls (this month up to now).
    spend = asyncio.run(_report(machine_database, engine_, SpendQuery(account_id=account.id)))
    assert (spend.total_micros, spend.published_posts) == (510_000, 5)
    assert spend.cost_per_published_post_micros == 95_000
    assert (spend.reconciler_micros, spend.metrics_collector_micros) == (35_000, 0)


@pytest.fixture
def budgeted(engine_: Engine_) -> Iterator[tuple[Engine_, object]]:
    account = engine_.account()
    with engine_.engine.begin() as connection:
        # $0.05 a month: one post without a link fits ($0.015), one with a link not.
        connection.execute(
            text("UPDATE accounts SET x_monthly_budget_micros = 50000 WHERE id = :id"),
            {"id": account.id},
        )
    yield engine_, account


def test_a_budget_holds_a_post_until_it_is_raised(budgeted: tuple[Engine_, object]) -> None:
    engine_, account = budgeted
    cheap = engine_.post(account, "Plain words")  # type: ignore[arg-type]
    engine_.run_until_idle()
    assert engine_.load(cheap.id).state is PostState.PUBLISHED
    costly = engine_.post(account, "Big sale at shop-b.com")  # type: ignore[arg-type]
    later = engine_.post(account, "Also plain")  # type: ignore[arg-type]
    engine_.run_until_idle()
    held = engine_.load(costly.id)
    # $0.015 spent + $0.20 needed > $0.05: it waits, SCHEDULED, saying why.
    assert held.state is PostState.SCHEDULED and held.attempt_count == 0
    assert "X budget" in held.last_error and "0.200 USD" in held.last_error
    # The account's queue waits behind it (no other post of it is claimed either).
    assert engine_.load(later.id).state is PostState.SCHEDULED
    assert engine_.emulator.control.posts(text="Big sale at shop-b.com") == []
    reached = [e for e in engine_.events() if e == X_SPEND_BUDGET_REACHED]
    assert reached == [X_SPEND_BUDGET_REACHED]
    engine_.run_until_idle()  # ticks while held: no second event, no claim
    assert [e for e in engine_.events() if e == X_SPEND_BUDGET_REACHED] == reached
    with engine_.engine.connect() as connection:
        month = connection.execute(
            text("SELECT x_budget_reached_month FROM accounts WHERE id = :id"),
            {"id": account.id},  # type: ignore[attr-defined]
        ).scalar_one()
    assert month == engine_.clock.now().strftime("%Y-%m")

    with engine_.uow() as uow:  # raised to $1 through the account, as UpdateAccount does
        stored = uow.accounts.get(account.id)  # type: ignore[attr-defined]
        assert stored is not None
        stored.x_monthly_budget_micros = 1_000_000
        assert uow.accounts.save(stored, stored.version)
        uow.commit()
    engine_.run_until_idle()
    assert engine_.load(costly.id).state is PostState.PUBLISHED
    assert engine_.load(later.id).state is PostState.PUBLISHED
    assert len(engine_.emulator.control.posts(text="Big sale at shop-b.com")) == 1
