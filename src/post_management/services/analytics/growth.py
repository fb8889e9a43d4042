"""Account growth (daily follower snapshots) and audience activity by hour of week.

The collector takes one snapshot of X's public counts per account and UTC day, with
the account's own credentials, on the metrics tick (docs/analytics.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from uuid import UUID

from post_management.domain.auth import Principal
from post_management.domain.date_range import DateRange
from post_management.domain.errors import InvalidArgument
from post_management.domain.growth import (
    Activity,
    EngagementPoint,
    FollowerSnapshot,
    GrowthSummary,
    audience_activity,
    followers_gained_after,
    growth_summary,
)
from post_management.domain.reasons import Reason
from post_management.domain.timezones import load_zone
from post_management.domain.x_spend import CallKind, Metered, Purpose, ReadPace, refused_read
from post_management.ports.async_unit_of_work import AsyncUnitOfWorkFactory
from post_management.ports.support import Clock
from post_management.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from post_management.ports.x_api import RateLimited, XApi, XCredentials, XUser
from post_management.services.shared.common import load_account

log = logging.getLogger(__name__)

DEFAULT_GROWTH_WINDOW = timedelta(days=30)
MAX_GROWTH_WINDOW = timedelta(days=366)
DEFAULT_ACTIVITY_DAYS, MAX_ACTIVITY_DAYS = 30, 90
ACCOUNTS_PER_TICK = 100  # users/me reads per collector tick


@dataclass(frozen=True)
class PostGrowth:
    post_id: UUID
    published_at: datetime
    followers_gained: int


@dataclass(frozen=True)
class AccountGrowthView:
    account_id: UUID
    summary: GrowthSummary
    posts: list[PostGrowth]


@dataclass(frozen=True)
class AudienceActivityView:
    account_id: UUID
    timezone: str
    activity: Activity


class AccountGrowthQueries:
    """GetAccountGrowth and GetAudienceActivity, awaited on the serving loop over the
    asynchronous unit of work."""

    def __init__(self, uow: AsyncUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def growth(
        self, principal: Principal, account_id: UUID, dates: DateRange
    ) -> AccountGrowthView:
        end = dates.end or self._clock.now()
        start = dates.start or end - DEFAULT_GROWTH_WINDOW
        if end - start > MAX_GROWTH_WINDOW:
            raise InvalidArgument.for_field(
                "from_date",
                "the range may cover at most 366 days",
                reason=Reason.INVALID_DATE_RANGE,
            )
        async with self._uow() as uow:
            await load_account(uow, principal, account_id)
            snapshots = await uow.insights.follower_snapshots(account_id, start, end)
            # A post's window reaches a day past the period's end.
            later = await uow.insights.follower_snapshots(account_id, end, end + timedelta(days=2))
            posts = [
                p
                for p in await uow.analytics.account_posts(account_id, start)
                if p.published_at is not None and p.published_at < end
            ]
        around = snapshots + later
        gained = []
        for post in posts:
            assert post.published_at is not None
            followers = followers_gained_after(post.published_at, around)
            if followers is not None:
                gained.append(PostGrowth(post.post_id, post.published_at, followers))
        return AccountGrowthView(account_id, growth_summary(snapshots), gained)

    async def audience_activity(
        self, principal: Principal, account_id: UUID, days: int
    ) -> AudienceActivityView:
        days = days or DEFAULT_ACTIVITY_DAYS
        if not 1 <= days <= MAX_ACTIVITY_DAYS:
            raise InvalidArgument.for_field("days", f"must be between 1 and {MAX_ACTIVITY_DAYS}")
        since = self._clock.now() - timedelta(days=days)
        async with self._uow() as uow:
            account = await load_account(uow, principal, account_id)
            published = await uow.analytics.account_posts(account_id, since)
            posts = [p for p in published if p.published_at]
            series = await uow.insights.series_of([p.post_id for p in posts])
        zone = load_zone(account.timezone)
        points = []
        for post in posts:
            assert post.published_at is not None
            measured = [
                EngagementPoint(s.collected_at, s.counts.engagements)
                for s in series.get(post.post_id, [])
            ]
            points.append([EngagementPoint(post.published_at, 0), *measured])
        return AudienceActivityView(account_id, zone.key, audience_activity(points, zone))


class FollowerTrends(Protocol):
    def check_followers(
        self, uow: UnitOfWork, account_id: UUID, snapshot: FollowerSnapshot
    ) -> bool: ...


class GrowthCollector:
    """Reads each account's public counts once per UTC day (users/me, the account's
    own credentials); run by the metrics tick, under its leader lock."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        x_api: XApi,
        clock: Clock,
        *,
        accounts_per_tick: int = ACCOUNTS_PER_TICK,
        trends: FollowerTrends | None = None,
    ) -> None:
        self._uow = uow
        self._x = x_api
        self._clock = clock
        self._accounts_per_tick = accounts_per_tick
        self._blocked_until: datetime | None = None
        self._trends = trends

    def collect(self) -> int:
        """Snapshots taken this tick."""
        now = self._clock.now()
        if self._blocked_until is not None and now < self._blocked_until:
            return 0
        day_start = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
        with self._uow() as uow:
            due = uow.insights.growth_due(day_start, self._accounts_per_tick)
            budgets = uow.spend.budget_states([item.account_id for item in due])
        # Like post reads, follower reads stop where the publisher's share begins.
        due = [
            item
            for item in due
            if (state := budgets.get(item.account_id)) is None
            or state.read_pace() is not ReadPace.STOPPED
        ]
        taken = 0
        for item in due:
            own = item.credentials
            creds = XCredentials(own.access_token, own.access_token_secret)
            outcome = self._x.me(creds)
            if not isinstance(outcome, XUser):
                self._meter(
                    refused_read(
                        self._clock.now(),
                        CallKind.USER_READ,
                        Purpose.GROWTH,
                        item.user_id,
                        item.account_id,
                    )
                )
            if isinstance(outcome, RateLimited):
                # users/me has one window per app here: wait for X's reset.
                self._blocked_until = outcome.reset_at
                log.info("follower reads wait for X's reset at %s", outcome.reset_at.isoformat())
                break
            if not isinstance(outcome, XUser) or outcome.metrics is None:
                log.warning("follower read of account %s failed", item.account_id)
                continue
            metrics = outcome.metrics
            at = self._clock.now()
            snapshot = FollowerSnapshot(
                at.astimezone(UTC).date(),
                at,
                metrics.followers,
                metrics.following,
                metrics.posts,
                metrics.listed,
            )
            read = Metered(
                at,
                CallKind.USER_READ,
                Purpose.GROWTH,
                item.user_id,
                item.account_id,
                resources=(outcome.id,),
            )
            with self._uow() as uow:
                if uow.insights.add_follower_snapshot(item.account_id, snapshot):
                    taken += 1
                    if self._trends is not None:
                        self._trends.check_followers(uow, item.account_id, snapshot)
                uow.spend.record([read])
                uow.commit()
        return taken

    def _meter(self, entry: Metered) -> None:
        with self._uow() as uow:
            uow.spend.record([entry])
            uow.commit()
