"""Optimal posting times: score each hour of the week, then pick free times.

A cell (local weekday, local hour) is scored with the mean engagement rate of
the account's posts published in it, shrunk toward a prior:

    prior(d, h) = level * DAY_CURVE[d] * HOUR_CURVE[h]
    score(d, h) = (n * observed + PRIOR_WEIGHT * prior) / (n + PRIOR_WEIGHT)
    confidence  = n / (n + PRIOR_WEIGHT)

`level` is the account's mean engagement rate over its measured posts (a new
account: DEFAULT_LEVEL), so the curve supplies the shape and the account its
own scale. One lucky post therefore moves a cell by a quarter of its surprise,
not all the way. docs/analytics.md has a worked example.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from post_management.domain._clock import require_aware
from post_management.domain.analytics import mean
from post_management.domain.posting_calendar import PostingCalendar
from post_management.domain.posting_rules import PostingRules
from post_management.domain.slots import slot_times

# Relative engagement on X by local hour (0..23) and weekday (Monday first): a
# generic industry shape (mornings and lunch on workdays do best, nights and
# weekends worst). Ratios, not rates: `level` gives the scale.
HOUR_CURVE: tuple[float, ...] = (
    0.40, 0.30, 0.25, 0.25, 0.30, 0.45, 0.65, 0.85,  # 00-07
    1.00, 1.15, 1.20, 1.20, 1.25, 1.15, 1.05, 1.00,  # 08-15
    1.00, 1.05, 1.00, 0.95, 0.90, 0.80, 0.65, 0.50,  # 16-23
)  # fmt: skip
DAY_CURVE: tuple[float, ...] = (1.00, 1.10, 1.10, 1.05, 0.95, 0.75, 0.70)

# How many posts of evidence the prior is worth in every cell.
PRIOR_WEIGHT = 3.0
# The level of an account without measured posts (the text benchmark).
DEFAULT_LEVEL = 0.015

Cell = tuple[int, int]  # (weekday 0=Monday, hour)


@dataclass(frozen=True)
class PastPost:
    published_at: datetime
    engagement_rate: float


@dataclass(frozen=True)
class CellScore:
    score: float
    confidence: float
    posts: int


@dataclass(frozen=True)
class ScoredTime:
    start: datetime
    score: float
    confidence: float


def cell_of(instant: datetime, zone: ZoneInfo) -> Cell:
    local = require_aware(instant, "instant").astimezone(zone)
    return local.weekday(), local.hour


def prior(level: float, cell: Cell) -> float:
    day, hour = cell
    return level * DAY_CURVE[day] * HOUR_CURVE[hour]


def week_scores(history: Sequence[PastPost], zone: ZoneInfo) -> dict[Cell, CellScore]:
    """All 168 cells of the week."""
    rates: dict[Cell, list[float]] = defaultdict(list)
    for post in history:
        rates[cell_of(post.published_at, zone)].append(post.engagement_rate)
    level = mean([post.engagement_rate for post in history]) if history else DEFAULT_LEVEL
    scores: dict[Cell, CellScore] = {}
    for day in range(7):
        for hour in range(24):
            cell = (day, hour)
            observed = rates.get(cell, [])
            n = len(observed)
            total = sum(observed) + PRIOR_WEIGHT * prior(level, cell)
            scores[cell] = CellScore(total / (n + PRIOR_WEIGHT), n / (n + PRIOR_WEIGHT), n)
    return scores


def hour_starts(zone: ZoneInfo, start: datetime, until: datetime) -> Iterator[datetime]:
    """Every local full hour in [start, until)."""
    local = require_aware(start, "start").astimezone(zone)
    first = local.replace(minute=0, second=0, microsecond=0)
    if first < local:
        first += timedelta(hours=1)
    # Step in UTC: aware arithmetic in the zone itself would add wall-clock hours
    # and repeat or skip instants on DST days (23 or 25 local hours).
    instant = first.astimezone(UTC)
    while instant < until:
        if instant.astimezone(zone).minute == 0:
            yield instant
        instant += timedelta(hours=1)


def candidate_times(
    rules: PostingRules, zone: ZoneInfo, now: datetime, days: int
) -> list[datetime]:
    """The account's slots in [now, now + days) when it has any, else every local
    full hour."""
    until = now + timedelta(days=days)
    if rules.slots:
        return list(slot_times(rules, zone, now, until - timedelta(microseconds=1)))
    return list(hour_starts(zone, now, until))


def pick_free(
    scored: Iterable[ScoredTime],
    rules: PostingRules,
    zone: ZoneInfo,
    taken: Iterable[datetime],
    count: int,
) -> list[ScoredTime]:
    """The `count` best-scored times, best first; each must break no posting rule
    given the taken times and the times already chosen; ties go to the earlier time."""
    ranked = sorted(scored, key=lambda t: (-t.score, t.start))
    calendar = PostingCalendar(rules, zone, taken)
    chosen: list[ScoredTime] = []
    for candidate in ranked:
        if len(chosen) >= count:
            break
        if not calendar.is_free(candidate.start):
            continue
        calendar.add(candidate.start)
        chosen.append(candidate)
    return chosen


def best_times(
    scores: dict[Cell, CellScore],
    rules: PostingRules,
    zone: ZoneInfo,
    taken: Iterable[datetime],
    now: datetime,
    days: int,
    count: int,
) -> list[ScoredTime]:
    """The `count` best free times in [now, now + days) by hour-of-week score."""
    scored = []
    for candidate in candidate_times(rules, zone, now, days):
        cell = scores[cell_of(candidate, zone)]
        scored.append(ScoredTime(candidate, cell.score, cell.confidence))
    return pick_free(scored, rules, zone, taken, count)
