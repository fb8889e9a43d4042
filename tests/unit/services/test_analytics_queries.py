"""GetPostMetrics, GetPostAnalytics, GetUserStats, GetAccountGrowth, GetAudienceActivity
and GetOptimalTimes on the asynchronous memory unit of work: the answers, and the
ownership checks before and after the cache."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.auth import Principal, Role
from post_management.domain.date_range import DateRange
from post_management.domain.errors import NotFound, PermissionDenied
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.post import Post, PostState
from post_management.ports.analytics import SOURCE_POLL
from post_management.services.analytics.analytics import AnalyticsQueries
from post_management.services.analytics.growth import AccountGrowthQueries
from post_management.services.analytics.optimal_times import TimingBasis
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)
BOB = Principal("bob", Role.USER)


class CallsSeen(InProcessCache):
    """Remembers each lookup and store."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, key: str) -> str | None:
        self.calls.append("get")
        return super().get(key)

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        self.calls.append("set")
        super().set(key, value, ttl_seconds)


def measured_post(world: EngineWorld, likes: int) -> Post:
    account = world.account()
    now = world.clock.now()
    post = Post(
        id=uuid.uuid4(),
        user_id=account.user_id,
        account_id=account.id,
        text="measured",
        created_at=now - timedelta(hours=2),
        updated_at=now,
        state=PostState.PUBLISHED,
        scheduled_for=now - timedelta(hours=1),
        published_at=now - timedelta(hours=1),
        x_post_id=str(uuid.uuid4().int % 10**18),
    )
    with world.uow() as uow:
        uow.posts.add(post)
        snapshot = Snapshot(now, Counts(impressions=100, likes=likes))
        uow.analytics.add_snapshot(post.id, snapshot, SOURCE_POLL)
        uow.commit()
    return post


def queries(world: EngineWorld, cache: CallsSeen) -> AnalyticsQueries:
    return AnalyticsQueries(world.async_uow, world.clock, AwaitedInProcessCache(cache))


def test_metrics_and_analytics_are_read_then_cached() -> None:
    world = EngineWorld()
    cache = CallsSeen()
    service = queries(world, cache)
    post = measured_post(world, likes=7)

    async def calls() -> None:
        metrics = await service.post_metrics(ALICE, post.id)
        assert metrics.latest is not None and metrics.latest.counts.likes == 7
        assert not metrics.deleted_on_x
        analytics = await service.post_analytics(ALICE, post.id)
        assert analytics.engagement_rate == pytest.approx(0.07)
        assert [s.counts.likes for s in analytics.series] == [7]
        with world.uow() as uow:  # behind the service's back: the cached answers stand
            later = Snapshot(world.clock.now(), Counts(impressions=100, likes=9))
            uow.analytics.add_snapshot(post.id, later, SOURCE_POLL)
            uow.commit()
        cached = await service.post_metrics(ALICE, post.id)
        assert cached.latest is not None and cached.latest.counts.likes == 7
        assert (await service.post_analytics(ALICE, post.id)).series == analytics.series
        # The cache never bypasses ownership.
        with pytest.raises(PermissionDenied):
            await service.post_metrics(BOB, post.id)
        with pytest.raises(PermissionDenied):
            await service.post_analytics(BOB, post.id)

    asyncio.run(calls())
    assert sorted(cache.calls) == ["get"] * 6 + ["set"] * 2


def test_an_unknown_or_anothers_post_is_refused_before_anything_is_cached() -> None:
    world = EngineWorld()
    cache = CallsSeen()
    service = queries(world, cache)
    post = measured_post(world, likes=1)

    async def calls() -> None:
        with pytest.raises(NotFound):
            await service.post_metrics(ALICE, uuid.uuid4())
        with pytest.raises(NotFound):
            await service.post_analytics(ALICE, uuid.uuid4())
        with pytest.raises(PermissionDenied):
            await service.post_metrics(BOB, post.id)
        with pytest.raises(PermissionDenied):
            await service.post_analytics(BOB, post.id)

    asyncio.run(calls())
    assert cache.get(f"metrics:{post.id}") is None and cache.get(f"analytics:{post.id}") is None


def test_user_stats_compare_the_window_with_the_one_before() -> None:
    world = EngineWorld()
    service = queries(world, CallsSeen())
    post = measured_post(world, likes=7)
    now = world.clock.now()

    async def calls() -> None:
        stats = await service.user_stats(ALICE, "alice", DateRange(None, now))
        assert stats.top_post_ids == [post.id]
        assert stats.posts_by_state == {PostState.PUBLISHED: 1}
        assert (stats.totals.likes, stats.engagement_trend) == (7, 1.0)
        assert stats.start == now - timedelta(days=30)
        with pytest.raises(PermissionDenied):
            await service.user_stats(BOB, "alice", DateRange(None, now))

    asyncio.run(calls())


def test_account_growth_and_audience_activity_of_ones_own_account() -> None:
    world = EngineWorld()
    growth = AccountGrowthQueries(world.async_uow, world.clock)
    post = measured_post(world, likes=7)
    now = world.clock.now()
    day = now.date()
    with world.uow() as uow:
        for days_ago, followers in ((3, 100), (2, 110), (0, 120)):
            at = now - timedelta(days=days_ago, minutes=1)
            snapshot = FollowerSnapshot(day - timedelta(days=days_ago), at, followers)
            assert uow.insights.add_follower_snapshot(post.account_id, snapshot)
        uow.commit()

    async def calls() -> None:
        view = await growth.growth(ALICE, post.account_id, DateRange(None, now))
        assert [d.followers_change for d in view.summary.days] == [0, 10, 10]
        assert (view.summary.net_change, view.summary.growth_rate) == (20, 0.2)
        activity = await growth.audience_activity(ALICE, post.account_id, 0)
        assert activity.activity.total == 7 and activity.timezone == "UTC"
        for refused in (
            growth.growth(BOB, post.account_id, DateRange(None, now)),
            growth.audience_activity(BOB, post.account_id, 0),
        ):
            with pytest.raises(PermissionDenied):
                await refused
        with pytest.raises(NotFound):
            await growth.growth(ALICE, uuid.uuid4(), DateRange(None, now))
        with pytest.raises(NotFound):
            await growth.audience_activity(ALICE, uuid.uuid4(), 0)

    asyncio.run(calls())


def test_optimal_times_rank_by_the_hour_of_week_and_record_the_analysis() -> None:
    world = EngineWorld()
    service = queries(world, CallsSeen())
    post = measured_post(world, likes=7)

    async def calls() -> None:
        view = await service.optimal_times(ALICE, post.account_id, 2, 3)
        assert (view.timezone, view.basis, len(view.slots)) == ("UTC", TimingBasis.HOUR_OF_WEEK, 3)
        assert all(world.clock.now() <= s.start for s in view.slots)
        with pytest.raises(PermissionDenied):
            await service.optimal_times(BOB, post.account_id, 2, 3)
        with pytest.raises(NotFound):
            await service.optimal_times(ALICE, uuid.uuid4(), 2, 3)

    asyncio.run(calls())
    # The analysis is an event of the use case's transaction, once.
    assert world.event_types().count("optimal_timing.analyzed") == 1
