"""Ranking an account's free times: by its engagement model where it has one that beat
its median, else by the smoothed hour-of-week scores (domain/analytics_timing.py).
Used by GetOptimalTimes and by SchedulePost with SLOT_POLICY_BEST."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from post_management.domain.account import Account
from post_management.domain.analytics_timing import (
    PastPost,
    ScoredTime,
    best_times,
    candidate_times,
    cell_of,
    pick_free,
    week_scores,
)
from post_management.domain.posting_rules import posting_rules_from_json
from post_management.domain.timezones import load_zone
from post_management.ports.analytics import MeasuredPost
from post_management.ports.async_unit_of_work import AsyncUnitOfWork
from post_management.services.analytics.engagement_prediction import EngagementPredictor

# Timing looks at this much of an account's history.
HISTORY = timedelta(days=90)
BEST_SLOT_DAYS = 7  # SLOT_POLICY_BEST looks this far ahead


class TimingBasis(StrEnum):
    ENGAGEMENT_MODEL = "ENGAGEMENT_MODEL"
    HOUR_OF_WEEK = "HOUR_OF_WEEK"


@dataclass(frozen=True)
class RankedTimes:
    slots: list[ScoredTime]
    basis: TimingBasis
    sample_size: int  # measured posts of the hour-of-week scores


# The model's engagement rate at each candidate time; None: no model to rank by.
Rates = Callable[[Sequence[datetime]], list[float] | None]


def rank_measured(
    posts: Sequence[MeasuredPost],
    rates: Rates,
    account: Account,
    taken: Sequence[datetime],
    now: datetime,
    days: int,
    count: int,
) -> RankedTimes:
    """The `count` best free times in [now, now + days), best first, from the account's
    posts of the last HISTORY (read by the caller) and the model's `rates`."""
    zone = load_zone(account.timezone)
    rules = posting_rules_from_json(account.posting_rules)
    history = [
        PastPost(p.published_at, p.latest.counts.engagement_rate)
        for p in posts
        if p.published_at and p.latest and p.latest.counts.impressions > 0
    ]
    scores = week_scores(history, zone)
    candidates = candidate_times(rules, zone, now, days)
    rated = rates(candidates)
    if rated is None:
        hour_of_week = best_times(scores, rules, zone, taken, now, days, count)
        return RankedTimes(hour_of_week, TimingBasis.HOUR_OF_WEEK, len(history))
    # The model's rate; the confidence stays the cell's share of own history.
    scored = [
        ScoredTime(at, rate, scores[cell_of(at, zone)].confidence)
        for at, rate in zip(candidates, rated, strict=True)
    ]
    free = pick_free(scored, rules, zone, taken, count)
    return RankedTimes(free, TimingBasis.ENGAGEMENT_MODEL, len(history))


class BestFreeTime:
    """SchedulePost's SLOT_POLICY_BEST: the best free time of the next week. The
    account's history is read in SchedulePost's asynchronous unit of work, awaited;
    the ranking (the engagement model's fitting, when it is not cached) is CPU work,
    done in a worker thread as GetOptimalTimes does it."""

    def __init__(self, predictor: EngagementPredictor | None, days: int = BEST_SLOT_DAYS) -> None:
        self._predictor = predictor
        self._days = days

    async def best_free_time(
        self,
        uow: AsyncUnitOfWork,
        account: Account,
        taken: Sequence[datetime],
        now: datetime,
        window: timedelta,
    ) -> datetime | None:
        """None when no time of the period is free (the caller falls back)."""
        days = max(1, min(self._days, window.days))
        predictor = self._predictor
        posts = await uow.analytics.account_posts(account.id, now - HISTORY)
        own = None if predictor is None else await predictor.own_history(uow, account.id, now)

        def rates(candidates: Sequence[datetime]) -> list[float] | None:
            if predictor is None or own is None:
                return None
            return predictor.rates_over(own, account, candidates, now)

        ranked = await asyncio.to_thread(rank_measured, posts, rates, account, taken, now, days, 1)
        return ranked.slots[0].start if ranked.slots else None
