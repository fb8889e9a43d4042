"""Read side of analytics: post metrics and analytics, user stats, optimal times."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from post_management.domain import analytics as math
from post_management.domain import events
from post_management.domain.analytics import COUNT_FIELDS, Counts, Insight, Snapshot
from post_management.domain.analytics_timing import ScoredTime
from post_management.domain.auth import Principal
from post_management.domain.date_range import DateRange
from post_management.domain.errors import InvalidArgument
from post_management.domain.post import Post, PostState, post_not_found
from post_management.domain.reasons import Reason
from post_management.domain.timezones import load_zone
from post_management.ports.analytics import (
    AsyncCache,
    DueRefresh,
    MeasuredPost,
    PublishedRef,
    TrendAlert,
)
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.support import Clock
from post_management.ports.unit_of_work import UnitOfWork
from post_management.services.analytics import optimal_times as timing
from post_management.services.analytics.engagement_prediction import EngagementPredictor
from post_management.services.analytics.optimal_times import TimingBasis
from post_management.services.shared.common import load_account

# Comparisons and timing look at this much of an account's history.
HISTORY = timedelta(days=90)
DEFAULT_STATS_WINDOW = timedelta(days=30)
TOP_POSTS = 5
DEFAULT_DAYS, MAX_DAYS = 7, 30
DEFAULT_COUNT, MAX_COUNT = 5, 20
# Posts taken within this much before now still count against the posting rules.
RULES_LOOKBACK = timedelta(days=1)


def metrics_key(post_id: UUID) -> str:
    return f"metrics:{post_id}"


def analytics_key(post_id: UUID) -> str:
    return f"analytics:{post_id}"


def cache_keys(post_id: UUID) -> tuple[str, str]:
    """Everything cached about one post: dropped when a new snapshot lands."""
    return metrics_key(post_id), analytics_key(post_id)


@dataclass(frozen=True)
class MetricsView:
    post_id: UUID
    user_id: str
    x_post_id: str
    latest: Snapshot | None
    deleted_on_x: bool


@dataclass(frozen=True)
class AnalyticsView:
    post_id: UUID
    user_id: str
    engagement_rate: float
    series: list[Snapshot]
    engagement_velocity: float
    account_percentile: float
    account_average: float
    account_median: float
    benchmark: float
    insights: list[Insight]


@dataclass(frozen=True)
class UserStatsView:
    user_id: str
    start: datetime
    end: datetime
    posts_by_state: dict[PostState, int]
    totals: Counts
    average_engagement_rate: float
    top_post_ids: list[UUID]
    engagement_trend: float
    publish_success_rate: float
    median_lateness_seconds: float


@dataclass(frozen=True)
class OptimalTimesView:
    account_id: UUID
    timezone: str
    slots: list[ScoredTime] = field(default_factory=list)
    basis: TimingBasis = TimingBasis.HOUR_OF_WEEK


@dataclass(frozen=True)
class AnalyticsSettings:
    cache_ttl_seconds: float = 60.0
    benchmarks: Mapping[str, float] = field(default_factory=lambda: dict(math.DEFAULT_BENCHMARKS))


def store_snapshot(
    uow: UnitOfWork, post: PublishedRef | DueRefresh, snapshot: Snapshot, source: str
) -> None:
    """Keep a snapshot and tell the other services, in the caller's transaction."""
    uow.analytics.add_snapshot(post.post_id, snapshot, source)
    uow.outbox.add(_metrics_updated(post, snapshot))


def _metrics_updated(post: PublishedRef | DueRefresh, snapshot: Snapshot) -> events.DomainEvent:
    return events.PostMetricsUpdated(
        post_id=post.post_id,
        account_id=post.account_id,
        user_id=post.user_id,
        x_post_id=post.x_post_id,
        collected_at=snapshot.collected_at,
        counts={name: getattr(snapshot.counts, name) for name in COUNT_FIELDS},
        occurred_at=snapshot.collected_at,
    )


async def store_snapshot_awaited(
    uow: AsyncUnitOfWork, post: PublishedRef, snapshot: Snapshot, source: str
) -> None:
    """store_snapshot in an asynchronous unit of work."""
    await uow.analytics.add_snapshot(post.post_id, snapshot, source)
    uow.outbox.add(_metrics_updated(post, snapshot))


def _measured_rates(posts: list[MeasuredPost], exclude: UUID | None = None) -> list[float]:
    """Rates of posts with at least one impression (a rate of nothing means nothing)."""
    return [
        p.latest.counts.engagement_rate
        for p in posts
        if p.post_id != exclude and p.latest is not None and p.latest.counts.impressions > 0
    ]


class AnalyticsQueries:
    """GetPostMetrics, GetPostAnalytics, GetUserStats and GetOptimalTimes, awaited on
    the serving loop over the asynchronous unit of work; GetOptimalTimes' ranking,
    which fits the engagement model, runs in a worker thread."""

    def __init__(
        self,
        requests_uow: AsyncUnitOfWorkFactory,
        clock: Clock,
        cache: AsyncCache,
        settings: AnalyticsSettings | None = None,
        predictor: EngagementPredictor | None = None,
    ) -> None:
        self._requests_uow = requests_uow
        self._predictor = predictor
        self._clock = clock
        self._cache = cache
        self._settings = settings or AnalyticsSettings()

    # --- cache ------------------------------------------------------------------

    async def _cached(self, key: str) -> dict[str, Any] | None:
        raw = await self._cache.get(key)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def _remember(self, key: str, value: dict[str, Any]) -> None:
        if self._settings.cache_ttl_seconds > 0:
            ttl = self._settings.cache_ttl_seconds
            await self._cache.set(key, json.dumps(value), ttl)

    @staticmethod
    async def _post(uow: AsyncUnitOfWork, post_id: UUID) -> Post:
        post = await uow.posts.get(post_id)
        if post is None:
            raise post_not_found(post_id)
        return post

    # --- GetPostMetrics ---------------------------------------------------------

    async def post_metrics(self, principal: Principal, post_id: UUID) -> MetricsView:
        cached = await self._cached(metrics_key(post_id))
        if cached is not None:
            view = _metrics_from_json(cached)
            principal.ensure_can_act_for(view.user_id)  # the cache never bypasses ownership
            return view
        async with self._requests_uow() as uow:
            post = await self._post(uow, post_id)
            principal.ensure_can_act_for(post.user_id)
            view = MetricsView(
                post_id=post.id,
                user_id=post.user_id,
                x_post_id=post.x_post_id,
                latest=await uow.analytics.latest(post.id),
                deleted_on_x=await uow.analytics.deleted_on_x(post.id),
            )
        await self._remember(metrics_key(post_id), _metrics_to_json(view))
        return view

    # --- GetPostAnalytics -------------------------------------------------------

    async def post_analytics(self, principal: Principal, post_id: UUID) -> AnalyticsView:
        cached = await self._cached(analytics_key(post_id))
        if cached is not None:
            view = _analytics_from_json(cached)
            principal.ensure_can_act_for(view.user_id)
            return view
        async with self._requests_uow() as uow:
            post = await self._post(uow, post_id)
            principal.ensure_can_act_for(post.user_id)
            series = await uow.analytics.series(post.id)
            since = self._clock.now() - HISTORY
            account = await uow.analytics.account_posts(post.account_id, since)
            alerts = await uow.insights.trend_alerts_for_post(
                post.id, post.account_id, post.published_at
            )
        view = self._analyse(post, series, account, alerts)
        await self._remember(analytics_key(post_id), _analytics_to_json(view))
        return view

    def _analyse(
        self,
        post: Post,
        series: list[Snapshot],
        account: list[MeasuredPost],
        alerts: list[TrendAlert],
    ) -> AnalyticsView:
        counts = series[-1].counts if series else Counts()
        kind = math.post_kind(bool(post.media_ids), bool(post.reply_to_x_post_id))
        comparison = math.Comparison(
            rate=counts.engagement_rate,
            account_rates=tuple(_measured_rates(account, exclude=post.id)),
            benchmark=math.benchmark_for(self._settings.benchmarks, kind),
        )
        velocity = math.engagement_velocity(series, post.published_at) if post.published_at else 0.0
        return AnalyticsView(
            post_id=post.id,
            user_id=post.user_id,
            engagement_rate=comparison.rate,
            series=series,
            engagement_velocity=velocity,
            account_percentile=comparison.percentile,
            account_average=comparison.account_average,
            account_median=comparison.account_median,
            benchmark=comparison.benchmark,
            insights=math.insights(counts, comparison, velocity)
            + [_trend_insight(alert) for alert in alerts],
        )

    # --- GetUserStats -----------------------------------------------------------

    async def user_stats(
        self, principal: Principal, user_id: str, dates: DateRange
    ) -> UserStatsView:
        """`dates` open at the end: until now; open at the start: 30 days."""
        principal.ensure_can_act_for(user_id)
        end = dates.end or self._clock.now()
        # Dates near year 1 leave datetime's range when the window, or the
        # period of the same length before it, is computed.
        try:
            start = dates.start or end - DEFAULT_STATS_WINDOW
        except OverflowError:
            raise InvalidArgument.for_field(
                "to_date", "is too early for the 30-day default window", reason=Reason.INVALID_DATE
            ) from None
        if start >= end:
            raise InvalidArgument.for_field(
                "from_date",
                "must be before to_date (default: now)",
                reason=Reason.INVALID_DATE_RANGE,
            )
        try:
            previous_start = start - (end - start)
        except OverflowError:
            raise InvalidArgument.for_field(
                "from_date",
                "the range is too long: the period of the same length before it starts "
                "before year 1",
                reason=Reason.INVALID_DATE_RANGE,
            ) from None
        async with self._requests_uow() as uow:
            current = await uow.analytics.user_posts(user_id, start, end)
            previous = await uow.analytics.user_posts(user_id, previous_start, start)
        return _user_stats(user_id, start, end, current, previous)

    # --- GetOptimalTimes --------------------------------------------------------

    async def optimal_times(
        self, principal: Principal, account_id: UUID, days: int, count: int
    ) -> OptimalTimesView:
        days = days or DEFAULT_DAYS
        count = count or DEFAULT_COUNT
        if not 1 <= days <= MAX_DAYS:
            raise InvalidArgument.for_field("days", f"must be between 1 and {MAX_DAYS}")
        if not 1 <= count <= MAX_COUNT:
            raise InvalidArgument.for_field("count", f"must be between 1 and {MAX_COUNT}")
        now = self._clock.now()
        async with self._requests_uow() as uow:
            account = await load_account(uow, principal, account_id)
            zone = load_zone(account.timezone)
            since = now - RULES_LOOKBACK
            taken = [t.at for t in await uow.schedule.taken_times(account_id, since)]
            posts = await uow.analytics.account_posts(account_id, now - timing.HISTORY)
            predictor = self._predictor
            own = None if predictor is None else await predictor.own_history(uow, account_id, now)

            def rates(candidates: Sequence[datetime]) -> list[float] | None:
                if predictor is None or own is None:
                    return None
                return predictor.rates_over(own, account, candidates, now)

            # Fitting the engagement model is CPU work: in a worker thread, off the loop.
            ranked = await asyncio.to_thread(
                timing.rank_measured, posts, rates, account, taken, now, days, count
            )
            uow.outbox.add(
                events.OptimalTimingAnalyzed(
                    account_id=account_id,
                    user_id=account.user_id,
                    timezone=zone.key,
                    days_analyzed=HISTORY.days,
                    sample_size=ranked.sample_size,
                    suggestions=[
                        events.TimingSuggestion(slot.start, slot.score) for slot in ranked.slots
                    ],
                    occurred_at=now,
                ),
            )
            await uow.commit()
        return OptimalTimesView(account_id, zone.key, ranked.slots, ranked.basis)


def _trend_insight(alert: TrendAlert) -> Insight:
    figures = {"observed": alert.observed, "expected": alert.expected, "score": alert.score}
    if alert.age is not None:
        figures["age_hours"] = alert.age.total_seconds() / 3600
    return Insight(alert.summary, figures)


def _user_stats(
    user_id: str,
    start: datetime,
    end: datetime,
    current: list[MeasuredPost],
    previous: list[MeasuredPost],
) -> UserStatsView:
    by_state = Counter(p.state for p in current)
    published = [p for p in current if p.state is PostState.PUBLISHED]
    measured = [p for p in published if p.latest is not None]
    totals = Counts()
    for post in measured:
        assert post.latest is not None
        totals = totals.plus(**{n: getattr(post.latest.counts, n) for n in math.COUNT_FIELDS})

    def engagements(posts: list[MeasuredPost]) -> int:
        return sum(
            p.latest.counts.engagements
            for p in posts
            if p.state is PostState.PUBLISHED and p.latest is not None
        )

    now_total, before_total = engagements(current), engagements(previous)
    if before_total > 0:
        trend = (now_total - before_total) / before_total
    else:
        trend = 0.0 if now_total == 0 else 1.0
    top = sorted(
        measured,
        key=lambda p: (
            -p.latest.counts.engagements if p.latest else 0,
            -(p.latest.counts.engagement_rate if p.latest else 0.0),
            str(p.post_id),
        ),
    )[:TOP_POSTS]
    finished = by_state[PostState.PUBLISHED] + by_state[PostState.FAILED]
    finished += by_state[PostState.DEAD_LETTERED]
    lateness = [
        (p.published_at - p.due_at).total_seconds()
        for p in published
        if p.published_at is not None and p.due_at is not None
    ]
    return UserStatsView(
        user_id=user_id,
        start=start,
        end=end,
        posts_by_state=dict(by_state),
        totals=totals,
        average_engagement_rate=math.mean(_measured_rates(measured)),
        top_post_ids=[p.post_id for p in top],
        engagement_trend=trend,
        publish_success_rate=by_state[PostState.PUBLISHED] / finished if finished else 0.0,
        median_lateness_seconds=math.median(lateness),
    )


# --- cache codec ----------------------------------------------------------------


def _snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    counts = {name: getattr(snapshot.counts, name) for name in math.COUNT_FIELDS}
    return {"at": snapshot.collected_at.isoformat(), "counts": counts}


def _snapshot_from_json(data: dict[str, Any]) -> Snapshot:
    return Snapshot(datetime.fromisoformat(data["at"]), Counts(**data["counts"]))


def _metrics_to_json(view: MetricsView) -> dict[str, Any]:
    return {
        "post_id": str(view.post_id),
        "user_id": view.user_id,
        "x_post_id": view.x_post_id,
        "latest": _snapshot_to_json(view.latest) if view.latest else None,
        "deleted_on_x": view.deleted_on_x,
    }


def _metrics_from_json(data: dict[str, Any]) -> MetricsView:
    latest = data.get("latest")
    return MetricsView(
        post_id=UUID(data["post_id"]),
        user_id=data["user_id"],
        x_post_id=data["x_post_id"],
        latest=_snapshot_from_json(latest) if latest else None,
        deleted_on_x=bool(data["deleted_on_x"]),
    )


def _analytics_to_json(view: AnalyticsView) -> dict[str, Any]:
    return {
        "post_id": str(view.post_id),
        "user_id": view.user_id,
        "engagement_rate": view.engagement_rate,
        "series": [_snapshot_to_json(s) for s in view.series],
        "engagement_velocity": view.engagement_velocity,
        "account_percentile": view.account_percentile,
        "account_average": view.account_average,
        "account_median": view.account_median,
        "benchmark": view.benchmark,
        "insights": [{"text": i.text, "figures": i.figures} for i in view.insights],
    }


def _analytics_from_json(data: dict[str, Any]) -> AnalyticsView:
    return AnalyticsView(
        post_id=UUID(data["post_id"]),
        user_id=data["user_id"],
        engagement_rate=data["engagement_rate"],
        series=[_snapshot_from_json(s) for s in data["series"]],
        engagement_velocity=data["engagement_velocity"],
        account_percentile=data["account_percentile"],
        account_average=data["account_average"],
        account_median=data["account_median"],
        benchmark=data["benchmark"],
        insights=[Insight(i["text"], dict(i["figures"])) for i in data["insights"]],
    )
