"""X's prices as data, the price of a post, and the budget rule, worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from post_management.domain.x_spend import (
    CallKind,
    PricePoint,
    PriceTable,
    create_kind,
    month_start,
    over_budget,
    parse_prices,
    publish_cost,
)

DEC = datetime(2026, 12, 6, 12, tzinfo=UTC)


def test_published_prices_are_the_defaults() -> None:
    prices = PriceTable()
    assert prices.unit_price(CallKind.POST_CREATE, DEC) == 15_000  # $0.015
    assert prices.unit_price(CallKind.POST_CREATE_WITH_URL, DEC) == 200_000  # $0.20
    assert prices.unit_price(CallKind.POST_READ, DEC) == 5_000
    assert prices.unit_price(CallKind.USER_READ, DEC) == 10_000
    assert prices.unit_price(CallKind.POST_DELETE, DEC) == 5_000
    assert prices.unit_price(CallKind.MEDIA_UPLOAD, DEC) == 0  # X publishes none
    # Before pay-per-use began there was no price.
    assert prices.unit_price(CallKind.POST_CREATE, datetime(2025, 1, 1, tzinfo=UTC)) == 0


def test_a_price_applies_from_its_date_in_utc() -> None:
    prices = parse_prices(
        {"post_read": [{"from": "2026-02-01", "usd": 0.005}, {"from": "2026-12-07", "usd": 0.004}]}
    )
    assert prices.unit_price(CallKind.POST_READ, DEC) == 5_000
    # 23:30 in New York on the 6th is the 7th in UTC: the new price.
    late = datetime(2026, 12, 7, 4, 30, tzinfo=UTC)
    assert prices.unit_price(CallKind.POST_READ, late) == 4_000
    assert prices.unit_price(CallKind.POST_CREATE, DEC) == 15_000  # untouched kinds keep theirs


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"post_reads": [{"from": "2026-01-01", "usd": 1}]}, "unknown call kind"),
        ({"post_read": []}, "non-empty list"),
        ({"post_read": [{"from": "2026-01-01"}]}, "{from, usd}"),
        ({"post_read": [{"from": "2026-01-01", "usd": -1}]}, "between 0 and 100"),
        ({"post_read": [{"from": "someday", "usd": 1}]}, "Invalid isoformat"),
    ],
)
def test_bad_price_overrides_name_what_is_wrong(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_prices(raw)


def test_every_kind_needs_a_price() -> None:
    with pytest.raises(ValueError, match="no price"):
        PriceTable({CallKind.POST_READ: (PricePoint(date(2026, 1, 1), 1),)})


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Deal at shop-a.com today", CallKind.POST_CREATE_WITH_URL),
        ("Read https://example.org/x", CallKind.POST_CREATE_WITH_URL),
        ("Launch day! #news @friend", CallKind.POST_CREATE),
        ("e.g. 3.14 is pi; mail me@example", CallKind.POST_CREATE),
        ("Open notes.txt later", CallKind.POST_CREATE),
    ],
)
def test_posts_with_a_link_cost_more(text: str, kind: CallKind) -> None:
    assert create_kind(text) is kind


def test_publish_cost_and_the_budget_rule() -> None:
    prices = PriceTable()
    # A thread: one segment with a link ($0.20), two without ($0.015 each), two images.
    cost = publish_cost(["see shop.io", "more", "and more"], 2, prices, DEC)
    assert cost == 230_000
    assert not over_budget(770_000, cost, 1_000_000)  # exactly at the budget: allowed
    assert over_budget(770_001, cost, 1_000_000)
    assert not over_budget(10**9, cost, None)  # no budget, no limit
    assert month_start(DEC) == datetime(2026, 12, 1, tzinfo=UTC)
