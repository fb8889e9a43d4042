"""Campaign analytics on the memory unit of work: the report over the campaign's posts,
their latest snapshots and the accounts' posts outside it, without a database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from post_management.domain.account import Account
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.auth import Principal, Role
from post_management.domain.post import Post, PostState
from post_management.ports.analytics import SOURCE_POLL
from post_management.services.analytics.campaigns import CampaignService, NewCampaign
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)


def published(
    world: EngineWorld, account: Account, hours_ago: int, campaign: uuid.UUID | None
) -> Post:
    now = world.clock.now()
    at = now - timedelta(hours=hours_ago)
    post = Post(
        id=uuid.uuid4(),
        user_id=account.user_id,
        account_id=account.id,
        text=f"post {hours_ago}",
        created_at=at - timedelta(hours=1),
        updated_at=at,
        state=PostState.PUBLISHED,
        scheduled_for=at,
        published_at=at,
        x_post_id=str(uuid.uuid4().int % 10**18),
        campaign_id=campaign,
    )
    with world.uow() as uow:
        uow.posts.add(post)
        uow.commit()
    return post


def measure(world: EngineWorld, post: Post, impressions: int, likes: int) -> None:
    with world.uow() as uow:
        snapshot = Snapshot(world.clock.now(), Counts(impressions=impressions, likes=likes))
        uow.analytics.add_snapshot(post.id, snapshot, SOURCE_POLL)
        uow.commit()


def test_a_campaign_report_sums_its_posts_and_the_accounts_posts_outside_it() -> None:
    world = EngineWorld()
    service = CampaignService(world.async_uow, world.clock)
    account = world.account()
    campaign = asyncio.run(service.create(ALICE, NewCampaign("alice", "launch")))
    good = published(world, account, 30, campaign.id)
    weak = published(world, account, 10, campaign.id)
    between = published(world, account, 20, None)
    published(world, account, 100, None)  # before the campaign's period
    measure(world, good, 1000, 100)
    measure(world, weak, 1000, 10)
    measure(world, between, 500, 5)

    report = asyncio.run(service.analytics(ALICE, campaign.id))

    assert report.posts_by_state == {PostState.PUBLISHED: 2}
    # No dates of its own: from its first publication to just after its last.
    assert weak.published_at is not None
    end = weak.published_at + timedelta(microseconds=1)
    assert (report.period_start, report.period_end) == (good.published_at, end)
    assert report.campaign.measured_posts == 2
    assert (report.campaign.totals.impressions, report.campaign.totals.likes) == (2000, 110)
    assert report.outside.measured_posts == 1
    assert (report.outside.totals.impressions, report.outside.totals.likes) == (500, 5)
    assert [p.post_id for p in report.best] == [good.id, weak.id]
    assert [p.post_id for p in report.worst] == [weak.id, good.id]
    assert report.best[0].x_post_id == good.x_post_id
