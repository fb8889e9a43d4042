"""Campaigns: create, read, list, and how their posts performed (docs/analytics.md)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from post_management.domain.analytics import COUNT_FIELDS, Counts, Snapshot
from post_management.domain.auth import Principal
from post_management.domain.campaigns import Campaign, checked_name, checked_period
from post_management.domain.errors import NotFound
from post_management.domain.post import PostState
from post_management.domain.reasons import Reason
from post_management.ports.analytics import MeasuredPost
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.support import Clock
from post_management.services.shared import idempotency
from post_management.services.shared.commands import AsyncCommand, AsyncCommandRunner, RequestKey
from post_management.services.shared.common import ensure_not_erased
from post_management.services.shared.pagination import (
    Page,
    by_creation,
    decode_token,
    page_of,
    page_size,
)

RANKED_POSTS = 3  # best and worst posts shown
MAX_DAILY_DAYS = 400  # a daily series longer than this is cut to its last days


@dataclass(frozen=True)
class NewCampaign:
    user_id: str
    name: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class Summary:
    measured_posts: int
    totals: Counts

    @property
    def engagement_rate(self) -> float:
        return self.totals.engagement_rate

    @property
    def click_through_rate(self) -> float:
        return self.totals.click_through_rate


@dataclass(frozen=True)
class CampaignDay:
    day: date
    published_posts: int
    totals: Counts


@dataclass(frozen=True)
class RankedPost:
    """One of a campaign's best or worst posts, by its latest counts."""

    post_id: UUID
    x_post_id: str
    counts: Counts

    @classmethod
    def of(cls, post: MeasuredPost) -> RankedPost:
        assert post.latest is not None  # rank() keeps measured posts only
        return cls(post.post_id, post.x_post_id, post.latest.counts)


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: UUID
    posts_by_state: dict[PostState, int]
    campaign: Summary
    outside: Summary
    best: list[RankedPost]
    worst: list[RankedPost]
    daily: list[CampaignDay]
    period_start: datetime | None
    period_end: datetime | None


async def load_campaign(uow: AsyncUnitOfWork, principal: Principal, campaign_id: UUID) -> Campaign:
    """The campaign, if it exists and the caller may act for its user."""
    campaign = await uow.campaigns.get(campaign_id)
    if campaign is None:
        raise NotFound(
            f"campaign {campaign_id} does not exist",
            reason=Reason.CAMPAIGN_NOT_FOUND,
            metadata={"campaign_id": str(campaign_id)},
        )
    principal.ensure_can_act_for(campaign.user_id)
    return campaign


def summarise(posts: list[MeasuredPost]) -> Summary:
    totals = Counts()
    measured = 0
    for post in posts:
        if post.latest is None:
            continue
        measured += 1
        totals = totals.plus(**{n: getattr(post.latest.counts, n) for n in COUNT_FIELDS})
    return Summary(measured, totals)


def rank(posts: list[MeasuredPost]) -> tuple[list[MeasuredPost], list[MeasuredPost]]:
    """Best and worst posts by engagement rate (posts with at least one impression)."""
    seen = [p for p in posts if p.latest is not None and p.latest.counts.impressions > 0]

    def rate(post: MeasuredPost) -> float:
        return post.latest.counts.engagement_rate if post.latest else 0.0

    best = sorted(seen, key=lambda p: (-rate(p), str(p.post_id)))[:RANKED_POSTS]
    worst = sorted(seen, key=lambda p: (rate(p), str(p.post_id)))[:RANKED_POSTS]
    return best, worst


def daily_series(
    posts: list[MeasuredPost], series: dict[UUID, list[Snapshot]], first: date, last: date
) -> list[CampaignDay]:
    """For each UTC day from `first` to `last`: the posts published by its end and the
    sum of each one's latest snapshot at or before its end."""
    first = max(first, last - timedelta(days=MAX_DAILY_DAYS - 1))
    days = []
    day = first
    while day <= last:
        end = datetime.combine(day + timedelta(days=1), time(), UTC)
        published = [p for p in posts if p.published_at is not None and p.published_at < end]
        totals = Counts()
        for post in published:
            before = [s for s in series.get(post.post_id, []) if s.collected_at < end]
            if before:
                counts = before[-1].counts
                totals = totals.plus(**{n: getattr(counts, n) for n in COUNT_FIELDS})
        days.append(CampaignDay(day, len(published), totals))
        day += timedelta(days=1)
    return days


class CampaignService:
    """Create, get, list and the report on the asynchronous unit of work, awaited on
    the serving loop."""

    def __init__(self, uow: AsyncUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._commands = AsyncCommandRunner(uow)
        self._clock = clock

    async def create(
        self, principal: Principal, new: NewCampaign, request_id: str = ""
    ) -> Campaign:
        principal.ensure_can_act_for(new.user_id)
        idempotency.check_request_id(request_id)
        checked_name(new.name)
        checked_period(new.starts_at, new.ends_at)
        fields = {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(new).items()
        }
        key = RequestKey.of(f"CreateCampaign:{new.user_id}", request_id, fields)

        async def create(run: AsyncCommand) -> Campaign:
            await ensure_not_erased(run.uow, new.user_id)
            now = self._clock.now()
            campaign = Campaign(
                id=uuid.uuid4(),
                user_id=new.user_id,
                name=new.name,
                starts_at=new.starts_at,
                ends_at=new.ends_at,
                created_at=now,
                updated_at=now,
            )
            await run.add(campaign, "campaign.create")
            return campaign

        async def replay(uow: AsyncUnitOfWork, earlier: UUID) -> Campaign:
            return await load_campaign(uow, principal, earlier)

        return await self._commands.run(
            principal, create, request=key, replay=replay, replay_first=True
        )

    async def get(self, principal: Principal, campaign_id: UUID) -> Campaign:
        async with self._uow() as uow:
            return await load_campaign(uow, principal, campaign_id)

    async def list(
        self, principal: Principal, user_id: str, size: int, token: str
    ) -> Page[Campaign]:
        principal.ensure_can_act_for(user_id)
        limit = page_size(size)
        query = {"user_id": user_id}
        after = decode_token(token, query)
        async with self._uow() as uow:
            found = await uow.campaigns.list(user_id, after, limit + 1)
        return page_of(found, limit, query, by_creation)

    async def analytics(self, principal: Principal, campaign_id: UUID) -> CampaignReport:
        now = self._clock.now()
        async with self._uow() as uow:
            campaign = await load_campaign(uow, principal, campaign_id)
            posts = await uow.insights.campaign_posts(campaign.id)
            published = [p for p in posts if p.state is PostState.PUBLISHED]
            start, end = _period(campaign, published, now)
            outside: list[MeasuredPost] = []
            if start is not None and end is not None and start < end:
                accounts = sorted({p.account_id for p in posts})
                outside = await uow.insights.published_outside(campaign.id, accounts, start, end)
            series = await uow.insights.series_of([p.post_id for p in published])
        best, worst = rank(published)
        daily: list[CampaignDay] = []
        if start is not None and end is not None:
            last = min(end, now) - timedelta(microseconds=1)
            daily = daily_series(published, series, start.date(), max(last, start).date())
        return CampaignReport(
            campaign_id=campaign.id,
            posts_by_state=dict(Counter(p.state for p in posts)),
            campaign=summarise(published),
            outside=summarise(outside),
            best=[RankedPost.of(p) for p in best],
            worst=[RankedPost.of(p) for p in worst],
            daily=daily,
            period_start=start,
            period_end=end,
        )


def _period(
    campaign: Campaign, published: list[MeasuredPost], now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The campaign's own dates, else its posts' first and last publication (the end
    one microsecond after the last, as periods are half-open)."""
    times = sorted(p.published_at for p in published if p.published_at is not None)
    start = campaign.starts_at or (times[0] if times else None)
    end = campaign.ends_at or (times[-1] + timedelta(microseconds=1) if times else None)
    if start is not None and end is None:
        end = max(now, start + timedelta(microseconds=1))
    return start, end
