"""What X's pay-per-use API costs: the calls the service makes, their unit prices over
time, and the monthly budget rule (docs/x-spend.md).

Money is kept in micro-dollars (1 USD = 1,000,000) so sums are exact.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

from post_management.domain.x_urls import url_spans

MICROS_PER_USD = 1_000_000


class CallKind(enum.StrEnum):
    """A priced X call, named as X's price list names it."""

    POST_CREATE = "post_create"  # Content: Create
    POST_CREATE_WITH_URL = "post_create_with_url"  # Content: Create (with URL)
    POST_READ = "post_read"  # Posts: Read, per post returned
    USER_READ = "user_read"  # User: Read, per user returned
    MEDIA_UPLOAD = "media_upload"  # per upload command sent
    POST_DELETE = "post_delete"  # Content: Manage


class Purpose(enum.StrEnum):
    """Why the service made the call: what the report breaks spend down by."""

    PUBLISH = "publish"
    RECONCILE = "reconcile"
    METRICS = "metrics"
    GROWTH = "growth"
    ERASURE = "erasure"


class Outcome(enum.StrEnum):
    CHARGED = "charged"
    # X refused the call (an error answer): X bills only successful requests.
    REFUSED = "refused"
    # The same post or user was already read (and billed) this UTC day.
    DEDUPLICATED = "deduplicated"
    # No answer came (a timeout): X may have done it, and billed it; counted as billed.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PricePoint:
    effective_from: date
    micros: int


# X's published pay-per-use prices (docs.x.com/x-api/getting-started/pricing, read
# 2026-12-06; the page carries no dates, so they apply from the pay-per-use launch,
# February 2026). X publishes no price for media uploads: 0 until one is set.
DEFAULT_PRICES: Mapping[CallKind, tuple[PricePoint, ...]] = {
    CallKind.POST_CREATE: (PricePoint(date(2026, 2, 1), 15_000),),
    CallKind.POST_CREATE_WITH_URL: (PricePoint(date(2026, 2, 1), 200_000),),
    CallKind.POST_READ: (PricePoint(date(2026, 2, 1), 5_000),),
    CallKind.USER_READ: (PricePoint(date(2026, 2, 1), 10_000),),
    CallKind.MEDIA_UPLOAD: (PricePoint(date(2026, 2, 1), 0),),
    CallKind.POST_DELETE: (PricePoint(date(2026, 2, 1), 5_000),),
}


class PriceTable:
    """Unit prices by kind, each a list of (effective from, price); the price of a
    call is the latest one in effect on the call's UTC date."""

    def __init__(self, prices: Mapping[CallKind, Sequence[PricePoint]] = DEFAULT_PRICES) -> None:
        self._prices = {
            kind: sorted(points, key=lambda p: p.effective_from) for kind, points in prices.items()
        }
        missing = set(CallKind) - set(self._prices)
        if missing:
            raise ValueError(f"no price for {sorted(missing)}")

    def unit_price(self, kind: CallKind, at: datetime) -> int:
        day = at.astimezone(UTC).date()
        current = 0
        for point in self._prices[kind]:
            if point.effective_from <= day:
                current = point.micros
        return current

    def points(self) -> Mapping[CallKind, Sequence[PricePoint]]:
        return dict(self._prices)


def parse_prices(raw: Mapping[str, object]) -> PriceTable:
    """Overrides from settings: {"post_create": [{"from": "2026-02-01", "usd": 0.015}]};
    kinds not named keep their defaults. ValueError names what is wrong."""
    prices: dict[CallKind, Sequence[PricePoint]] = dict(DEFAULT_PRICES)
    for name, entries in raw.items():
        try:
            kind = CallKind(name)
        except ValueError:
            raise ValueError(f"unknown call kind {name!r}") from None
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{name}: a non-empty list of {{from, usd}} entries")
        points = []
        for entry in entries:
            if not isinstance(entry, dict) or set(entry) != {"from", "usd"}:
                raise ValueError(f"{name}: each entry is {{from, usd}}")
            usd = entry["usd"]
            if not isinstance(usd, int | float) or usd < 0 or usd > 100:
                raise ValueError(f"{name}: usd must be between 0 and 100")
            points.append(
                PricePoint(date.fromisoformat(str(entry["from"])), round(usd * MICROS_PER_USD))
            )
        prices[kind] = tuple(points)
    return PriceTable(prices)


def create_kind(text: str) -> CallKind:
    """The price class of creating a post with this text: "with URL" when X would find
    a link in it (its own URL rules, domain/x_urls.py: bare domains count too)."""
    return CallKind.POST_CREATE_WITH_URL if url_spans(text) else CallKind.POST_CREATE


@dataclass(frozen=True)
class Metered:
    """One X call as the ledger records it."""

    occurred_at: datetime
    kind: CallKind
    purpose: Purpose
    user_id: str
    account_id: UUID | None
    post_id: UUID | None = None
    units: int = 1
    outcome: Outcome = Outcome.CHARGED
    # Resources read (X ids), for the day's deduplication of reads.
    resources: tuple[str, ...] = ()


def refused_read(
    at: datetime,
    kind: CallKind,
    purpose: Purpose,
    user_id: str,
    account_id: UUID | None,
    post_id: UUID | None = None,
) -> Metered:
    """A read X answered with an error: recorded, but nothing it returned is billed."""
    return Metered(at, kind, purpose, user_id, account_id, post_id, 0, Outcome.REFUSED)


def month_start(at: datetime) -> datetime:
    utc = at.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def publish_cost(texts: Sequence[str], media: int, prices: PriceTable, at: datetime) -> int:
    """What publishing these segments (and uploading `media` files) would cost."""
    cost = sum(prices.unit_price(create_kind(text), at) for text in texts)
    return cost + media * prices.unit_price(CallKind.MEDIA_UPLOAD, at)


def over_budget(spent: int, planned: int, budget: int | None) -> bool:
    """A publish waits when it would take the month's spend above the budget."""
    return budget is not None and spent + planned > budget


class ReadPace(enum.Enum):
    """How the metrics collector reads an account's posts as its budget runs out."""

    NORMAL = 1
    SLOW = 4  # refreshes this many times further apart
    STOPPED = 0  # what is left belongs to the account's scheduled posts


# From this share of the budget committed (spent + reserved for scheduled posts) on,
# the collector reads less often.
SLOW_READS_FROM = 0.8


def read_pace(budget: int | None, spent: int, reserved: int) -> ReadPace:
    """Never the publisher's share: reads stop once this month's spend plus what the
    account's scheduled posts will cost reaches the budget, and slow down before."""
    if budget is None:
        return ReadPace.NORMAL
    committed = spent + reserved
    if committed >= budget:
        return ReadPace.STOPPED
    if committed >= SLOW_READS_FROM * budget:
        return ReadPace.SLOW
    return ReadPace.NORMAL
