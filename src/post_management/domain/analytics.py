"""Analytics math: engagement, comparisons, insights and the refresh schedule.

Pure functions over plain numbers; docs/analytics.md states every definition
with an example, and the tests recompute them by hand.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Counts that make up engagements (docs/analytics.md). Impressions and video
# views are exposure, not engagement.
ENGAGEMENT_FIELDS: tuple[str, ...] = (
    "likes",
    "reposts",
    "replies",
    "quotes",
    "bookmarks",
    "url_link_clicks",
    "user_profile_clicks",
)

# How long after publishing the engagement velocity is measured over.
VELOCITY_WINDOW = timedelta(hours=2)

# Posts need this many measured neighbours before a percentile means anything.
MIN_POSTS_FOR_PERCENTILE = 3

# Above/below the reference by this share, a post counts as out- or underperforming.
NOTABLE_RATIO = 0.2


@dataclass(frozen=True)
class PublicCounts:
    """The counts X shows anyone for a post (its public_metrics), whoever reads it."""

    impressions: int
    likes: int
    reposts: int
    replies: int
    quotes: int
    bookmarks: int


@dataclass(frozen=True)
class Counts:
    """What X reported for a post at one moment. Private counts X did not
    return (bearer reads, posts over 30 days) are 0 here."""

    impressions: int = 0
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    bookmarks: int = 0
    url_link_clicks: int = 0
    user_profile_clicks: int = 0
    video_views: int = 0

    @property
    def engagements(self) -> int:
        return sum(getattr(self, name) for name in ENGAGEMENT_FIELDS)

    @property
    def engagement_rate(self) -> float:
        return engagement_rate(self.engagements, self.impressions)

    @property
    def click_through_rate(self) -> float:
        """Link clicks per impression (docs/analytics.md); 0 before the first impression."""
        return engagement_rate(self.url_link_clicks, self.impressions)

    def plus(self, **deltas: int) -> Counts:
        values = {name: getattr(self, name) + deltas.get(name, 0) for name in COUNT_FIELDS}
        return Counts(**values)


COUNT_FIELDS: tuple[str, ...] = (
    "impressions",
    "likes",
    "reposts",
    "replies",
    "quotes",
    "bookmarks",
    "url_link_clicks",
    "user_profile_clicks",
    "video_views",
)


@dataclass(frozen=True)
class Snapshot:
    collected_at: datetime
    counts: Counts
    # False when X withheld the private counts (bearer reads, posts over 30 days):
    # they read as 0 here and are stored as unknown.
    private_known: bool = True


def engagement_rate(engagements: int, impressions: int) -> float:
    """Engagements per impression; 0 before the first impression."""
    return engagements / impressions if impressions > 0 else 0.0


def percentile_rank(value: float, others: Sequence[float]) -> float:
    """Share (0..100) of `others` strictly below `value`; 0 without others."""
    if not others:
        return 0.0
    return 100.0 * sum(1 for other in others if other < value) / len(others)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def engagement_velocity(
    series: Sequence[Snapshot], published_at: datetime, window: timedelta = VELOCITY_WINDOW
) -> float:
    """Engagements per hour in the first hours: the last snapshot taken within
    `window` of publishing, divided by its age in hours. 0 without one."""
    inside = [s for s in series if published_at < s.collected_at <= published_at + window]
    if not inside:
        return 0.0
    last = max(inside, key=lambda s: s.collected_at)
    hours = (last.collected_at - published_at).total_seconds() / 3600
    return last.counts.engagements / hours


# --- benchmarks ---------------------------------------------------------------


# Engagement rate of a typical post on X by kind. A conservative placeholder
# (public industry reports put X's rates between about 0.5% and 3%); deployments
# set their own with ANALYTICS_BENCHMARKS.
DEFAULT_BENCHMARKS: Mapping[str, float] = {"text": 0.015, "media": 0.025, "reply": 0.010}


def post_kind(has_media: bool, is_reply: bool) -> str:
    if is_reply:
        return "reply"
    return "media" if has_media else "text"


def benchmark_for(table: Mapping[str, float], kind: str) -> float:
    """The table's rate for `kind`, else its "text" rate, else the default's."""
    if kind in table:
        return table[kind]
    return table.get("text", DEFAULT_BENCHMARKS["text"])


# --- insights -----------------------------------------------------------------


@dataclass(frozen=True)
class Insight:
    text: str
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """A post against its account and the benchmark."""

    rate: float
    account_rates: tuple[float, ...]  # the account's other measured posts
    benchmark: float

    @property
    def percentile(self) -> float:
        return percentile_rank(self.rate, self.account_rates)

    @property
    def account_average(self) -> float:
        return mean(self.account_rates)

    @property
    def account_median(self) -> float:
        return median(self.account_rates)


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def _versus(rate: float, reference: float, what: str) -> Insight | None:
    if reference <= 0:
        return None
    ratio = rate / reference
    figures = {"engagement_rate": rate, "reference_rate": reference, "ratio": ratio}
    if ratio >= 1 + NOTABLE_RATIO:
        change = f"{(ratio - 1) * 100:.0f}% above"
    elif ratio <= 1 - NOTABLE_RATIO:
        change = f"{(1 - ratio) * 100:.0f}% below"
    else:
        change = "in line with"
    return Insight(f"Engagement rate {_pct(rate)} is {change} {what} ({_pct(reference)}).", figures)


def insights(counts: Counts, comparison: Comparison, velocity: float) -> list[Insight]:
    """Plain-language findings, each with the numbers it rests on (docs/analytics.md)."""
    found: list[Insight] = []
    if counts.impressions == 0:
        return [Insight("No impressions yet: nothing to compare.", {"impressions": 0.0})]
    rate = comparison.rate
    others = len(comparison.account_rates)
    if others:
        average = _versus(rate, comparison.account_average, "the account's average")
        if average is not None:
            found.append(average)
    benchmark = _versus(rate, comparison.benchmark, "the benchmark")
    if benchmark is not None:
        found.append(benchmark)
    if others >= MIN_POSTS_FOR_PERCENTILE:
        percentile = comparison.percentile
        figures = {"percentile": percentile, "posts_compared": float(others)}
        if percentile >= 75:
            found.append(Insight(f"Better than {percentile:.0f}% of the account's posts.", figures))
        elif percentile <= 25:
            found.append(
                Insight(
                    f"Among the account's weakest posts ({percentile:.0f}th percentile).", figures
                )
            )
    engagements = counts.engagements
    if engagements:
        driver = max(ENGAGEMENT_FIELDS, key=lambda name: (getattr(counts, name), name))
        amount = getattr(counts, driver)
        share = amount / engagements
        found.append(
            Insight(
                f"{driver.replace('_', ' ').capitalize()} make up {share * 100:.0f}% "
                "of engagements.",
                {driver: float(amount), "engagements": float(engagements), "share": share},
            )
        )
    if velocity > 0:
        found.append(
            Insight(
                f"{velocity:.1f} engagements per hour in the first hours.",
                {"engagement_velocity": velocity},
            )
        )
    return found


# --- refresh schedule -------------------------------------------------------------

# (age below which, refresh every): young posts move fast, old ones barely.
REFRESH_SCHEDULE: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(hours=2), timedelta(minutes=5)),
    (timedelta(days=2), timedelta(hours=1)),
    (timedelta(days=30), timedelta(days=1)),
)
OLD_POST_INTERVAL = timedelta(days=7)


def refresh_interval(age: timedelta) -> timedelta:
    for younger_than, every in REFRESH_SCHEDULE:
        if age < younger_than:
            return every
    return OLD_POST_INTERVAL


def next_refresh(published_at: datetime, collected_at: datetime) -> datetime:
    """When a post measured at `collected_at` is due again."""
    return collected_at + refresh_interval(collected_at - published_at)
