"""Campaigns, account growth and audience activity over real gRPC and PostgreSQL, and
their REST paths through a real Envoy, on a fixed data set worked out by hand.

D0 is midnight UTC ten days ago; the campaign "Launch" runs D0 .. D0+5 days.

| post | account | campaign | state | published | latest counts (imp, likes, link clicks) |
|---|---|---|---|---|---|
| c1 | A | Launch | PUBLISHED | D0+1 10:00 | D0+1 12:00: 1000, 40, 10; D0+2 13:00: 2000, 60, 30 |
| c2 | A | Launch | PUBLISHED | D0+2 09:00 | D0+2 11:00: 500, 6, 0 |
| c3 | A | Launch | SCHEDULED | - | - |
| c4 | A | Launch | FAILED | - | - |
| o1 | A | - | PUBLISHED | D0+3 12:00 | D0+3 14:00: 1000, 10, 5 |
| o2 | A | - | PUBLISHED | D0+7 12:00 | D0+7 13:00: 900, 90, 0 (after the campaign) |
| b1 | B | - | PUBLISHED | D0+3 12:00 | (another account: never compared) |

Engagements are likes + link clicks here: c1 90 (rate 0.045), c2 6 (0.012), o1 15 (0.015).
Followers of A, read at 08:00 on D0..D0+4: 1,000, 1,010, 1,040, 1,030, 1,100.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import requests
from sqlalchemy import Engine, text
from xmp.posts.v1 import (
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    campaign_pb2,
    campaign_service_pb2,
    campaign_service_pb2_grpc,
    post_pb2,
    post_service_pb2,
    post_service_pb2_grpc,
)

from post_management.adapters.db.engine import make_engine
from post_management.domain.account import Account
from post_management.domain.analytics import Counts
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.post import Post, PostState
from tests.conftest import truncate
from tests.fixtures.envoy import EnvoyFactory
from tests.integration.analytics_fixtures import Data
from tests.integration.grpc_fixtures import error_details, rest_as
from tests.support.harness import RunningServer, auth

FOLLOWERS = [1000, 1010, 1040, 1030, 1100]


@dataclass
class World:
    server: RunningServer
    engine: Engine
    d0: datetime
    account: Account
    other: Account
    campaign_id: str
    posts: dict[str, Post]

    def metadata(self, subject: str = "alice") -> tuple[tuple[str, str], ...]:
        return auth(self.server.token(subject))

    def campaigns(self) -> campaign_service_pb2_grpc.CampaignServiceStub:
        return campaign_service_pb2_grpc.CampaignServiceStub(self.server.channel())

    def analytics(self) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
        return analytics_service_pb2_grpc.AnalyticsServiceStub(self.server.channel())


def imp(impressions: int, likes: int, clicks: int) -> Counts:
    return Counts(impressions=impressions, likes=likes, url_link_clicks=clicks)


@pytest.fixture(scope="module")
def world(server: RunningServer, machine_database: str) -> Iterator[World]:
    truncate(machine_database)
    engine = make_engine(machine_database)
    data = Data(engine)
    d0 = (datetime.now(UTC) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)

    def at(days: int, hour: int) -> datetime:
        return d0 + timedelta(days=days, hours=hour)

    account = data.account("alice")
    other = data.account("alice")
    campaign = campaign_service_pb2_grpc.CampaignServiceStub(server.channel()).CreateCampaign(
        campaign_service_pb2.CreateCampaignRequest(
            campaign=campaign_pb2.Campaign(
                user_id="alice",
                name="Launch",
                start_time=_stamp(d0),
                end_time=_stamp(at(5, 0)),
            )
        ),
        metadata=auth(server.token("alice")),
    )
    posts = {
        "c1": data.post(
            account,
            published_at=at(1, 10),
            snapshots=[(at(1, 12), imp(1000, 40, 10)), (at(2, 13), imp(2000, 60, 30))],
        ),
        "c2": data.post(account, published_at=at(2, 9), snapshots=[(at(2, 11), imp(500, 6, 0))]),
        "c3": data.post(account, PostState.SCHEDULED, due_at=datetime.now(UTC) + timedelta(days=1)),
        "c4": data.post(account, PostState.FAILED, due_at=at(2, 0)),
        "o1": data.post(account, published_at=at(3, 12), snapshots=[(at(3, 14), imp(1000, 10, 5))]),
        "o2": data.post(account, published_at=at(7, 12), snapshots=[(at(7, 13), imp(900, 90, 0))]),
        "b1": data.post(other, published_at=at(3, 12), snapshots=[(at(3, 13), imp(10, 10, 10))]),
    }
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE posts SET campaign_id = :c WHERE id = ANY(:ids)"),
            {"c": campaign.id, "ids": [posts[n].id for n in ("c1", "c2", "c3", "c4")]},
        )
    with data.uow() as uow:
        for day, followers in enumerate(FOLLOWERS):
            when = at(day, 8)
            snapshot = FollowerSnapshot(when.date(), when, followers, 50, 200 + day, 3)
            assert uow.insights.add_follower_snapshot(account.id, snapshot)
        # A second read on the same day keeps the first.
        later = FollowerSnapshot(at(0, 20).date(), at(0, 20), 5, 5, 5, 5)
        assert not uow.insights.add_follower_snapshot(account.id, later)
        uow.commit()
    yield World(server, engine, d0, account, other, campaign.id, posts)
    engine.dispose()


def _stamp(value: datetime) -> object:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def test_campaign_analytics_by_hand(world: World) -> None:
    report = world.campaigns().GetCampaignAnalytics(
        campaign_service_pb2.GetCampaignAnalyticsRequest(campaign_id=world.campaign_id),
        metadata=world.metadata(),
    )
    states = {post_pb2.PostState.Name(s.state): s.count for s in report.posts_by_state}
    assert states == {"POST_STATE_PUBLISHED": 2, "POST_STATE_SCHEDULED": 1, "POST_STATE_FAILED": 1}
    inside = report.campaign
    # c1 2000 + c2 500 impressions; engagements 90 + 6; link clicks 30.
    assert inside.measured_posts == 2
    assert (inside.totals.impressions, inside.totals.url_link_clicks) == (2500, 30)
    assert inside.engagement_rate == pytest.approx(96 / 2500)
    assert inside.click_through_rate == pytest.approx(30 / 2500)
    # Outside: o1 only (o2 is after the period, b1 on another account).
    outside = report.outside
    assert outside.measured_posts == 1 and outside.totals.impressions == 1000
    assert outside.engagement_rate == pytest.approx(15 / 1000)
    assert outside.click_through_rate == pytest.approx(5 / 1000)
    c1, c2 = str(world.posts["c1"].id), str(world.posts["c2"].id)
    assert [p.post_id for p in report.best_posts] == [c1, c2]
    assert [p.post_id for p in report.worst_posts] == [c2, c1]
    assert report.best_posts[0].click_through_rate == pytest.approx(30 / 2000)
    assert report.best_posts[0].x_post_id == world.posts["c1"].x_post_id
    days = [(d.date, d.published_posts, d.impressions, d.engagements, d.url_link_clicks)
            for d in report.daily]  # fmt: skip
    dates = [(world.d0 + timedelta(days=n)).date().isoformat() for n in range(5)]
    assert days == [
        (dates[0], 0, 0, 0, 0),
        (dates[1], 1, 1000, 50, 10),
        (dates[2], 2, 2500, 96, 30),
        (dates[3], 2, 2500, 96, 30),
        (dates[4], 2, 2500, 96, 30),
    ]
    assert report.period_start.ToDatetime(UTC) == world.d0
    assert report.period_end.ToDatetime(UTC) == world.d0 + timedelta(days=5)


def test_account_growth_by_hand(world: World) -> None:
    growth = world.analytics().GetAccountGrowth(
        analytics_service_pb2.GetAccountGrowthRequest(
            account_id=str(world.account.id),
            from_date=world.d0.date().isoformat(),
            to_date=(world.d0 + timedelta(days=4)).date().isoformat(),
        ),
        metadata=world.metadata(),
    )
    assert [d.followers for d in growth.daily] == FOLLOWERS
    assert [d.followers_change for d in growth.daily] == [0, 10, 30, -10, 70]
    assert [d.posts for d in growth.daily] == [200, 201, 202, 203, 204]
    assert growth.net_change == 100 and growth.growth_rate == pytest.approx(0.1)
    # c1 (D0+1 10:00): 1,010 before, first read from D0+2 10:00 on is D0+3's 1,030: +20.
    # c2 (D0+2 09:00): 1,040 before, D0+4's 1,100 after: +60. o1 (D0+3 12:00) has no
    # read a day later: left out.
    gained = {p.post_id: p.followers_gained for p in growth.posts}
    assert gained == {str(world.posts["c1"].id): 20, str(world.posts["c2"].id): 60}
    assert "attribution by time only" in growth.attribution_note


def test_audience_activity_by_hand(world: World) -> None:
    activity = world.analytics().GetAudienceActivity(
        analytics_service_pb2.GetAudienceActivityRequest(account_id=str(world.account.id)),
        metadata=world.metadata(),
    )
    assert activity.timezone == "UTC" and len(activity.hours) == 168

    def hour(days: int, clock: int) -> int:
        instant = world.d0 + timedelta(days=days, hours=clock)
        return instant.weekday() * 24 + instant.hour

    # c1: 50 engagements from 10:00 to 12:00 on D0+1 (its next read, 25 h later, is too
    # far apart to place); c2: 6 from 09:00 to 11:00 on D0+2; o1: 15 from 12:00 to 14:00
    # on D0+3; o2: 90 from 12:00 to 13:00 on D0+7. Account B's b1 is not counted.
    expected: dict[int, float] = {}
    for key, amount in [
        (hour(1, 10), 25),
        (hour(1, 11), 25),
        (hour(2, 9), 3),
        (hour(2, 10), 3),
        (hour(3, 12), 7.5),
        (hour(3, 13), 7.5),
        (hour(7, 12), 90),
    ]:
        expected[key] = expected.get(key, 0) + amount
    seen = {h.hour_of_week: h.share for h in activity.hours if h.share > 0}
    assert seen == pytest.approx({h: e / 161 for h, e in expected.items()})
    assert activity.total_engagements == 161 and activity.observations == 4


def test_campaign_create_get_list_and_bad_input(world: World) -> None:
    stub, metadata = world.campaigns(), world.metadata()
    created = stub.CreateCampaign(
        campaign_service_pb2.CreateCampaignRequest(
            campaign=campaign_pb2.Campaign(user_id="alice", name="Spring"),
            request_id="8a4b4c1e-6f0a-4f3a-9c55-2b1d3e4f5a60",
        ),
        metadata=metadata,
    )
    again = stub.CreateCampaign(
        campaign_service_pb2.CreateCampaignRequest(
            campaign=campaign_pb2.Campaign(user_id="alice", name="Spring"),
            request_id="8a4b4c1e-6f0a-4f3a-9c55-2b1d3e4f5a60",
        ),
        metadata=metadata,
    )
    assert again.id == created.id and created.name == "Spring"
    fetched = stub.GetCampaign(
        campaign_service_pb2.GetCampaignRequest(campaign_id=created.id), metadata=metadata
    )
    assert fetched == created
    first = stub.ListCampaigns(
        campaign_service_pb2.ListCampaignsRequest(user_id="alice", page_size=1),
        metadata=metadata,
    )
    assert [c.id for c in first.campaigns] == [created.id] and first.next_page_token
    second = stub.ListCampaigns(
        campaign_service_pb2.ListCampaignsRequest(
            user_id="alice", page_size=1, page_token=first.next_page_token
        ),
        metadata=metadata,
    )
    assert [c.id for c in second.campaigns] == [world.campaign_id]
    assert not second.next_page_token
    later, earlier = world.d0 + timedelta(days=2), world.d0
    bad = [
        campaign_pb2.Campaign(user_id="alice", name=""),
        campaign_pb2.Campaign(user_id="alice", name="x" * 101),
        campaign_pb2.Campaign(user_id="alice", name=" padded "),
        campaign_pb2.Campaign(
            user_id="alice", name="Backwards", start_time=_stamp(later), end_time=_stamp(earlier)
        ),
    ]
    broken = campaign_pb2.Campaign(user_id="alice", name="Broken time")
    broken.start_time.seconds, broken.start_time.nanos = 1, -1  # nanos out of range
    bad.append(broken)
    for campaign in bad:
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateCampaign(
                campaign_service_pb2.CreateCampaignRequest(campaign=campaign), metadata=metadata
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, campaign
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetCampaign(
            campaign_service_pb2.GetCampaignRequest(campaign_id=str(world.account.id)),
            metadata=metadata,
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(missing.value)[0] == "CAMPAIGN_NOT_FOUND"


def test_posts_join_and_leave_campaigns_of_their_own_user(world: World) -> None:
    posts = post_service_pb2_grpc.PostServiceStub(world.server.channel())
    metadata = world.metadata()
    created = posts.CreatePost(
        post_service_pb2.CreatePostRequest(
            post=post_pb2.Post(
                user_id="alice",
                account_id=str(world.account.id),
                text="part of the launch",
                campaign_id=world.campaign_id,
            )
        ),
        metadata=metadata,
    )
    assert created.campaign_id == world.campaign_id
    assert (
        posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=created.id), metadata=metadata
        ).campaign_id
        == world.campaign_id
    )
    left = posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=created.id, campaign_id=""),
            update_mask={"paths": ["campaign_id"]},
        ),
        metadata=metadata,
    )
    assert left.campaign_id == "" and left.text == "part of the launch"
    rejoined = posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=created.id, campaign_id=world.campaign_id),
            update_mask={"paths": ["campaign_id"]},
        ),
        metadata=metadata,
    )
    assert rejoined.campaign_id == world.campaign_id
    # Bob's post cannot join alice's campaign: it does not exist for him.
    bob_account = Data(world.engine).account("bob")
    with pytest.raises(grpc.RpcError) as foreign:
        posts.CreatePost(
            post_service_pb2.CreatePostRequest(
                post=post_pb2.Post(
                    user_id="bob",
                    account_id=str(bob_account.id),
                    text="borrowed",
                    campaign_id=world.campaign_id,
                )
            ),
            metadata=world.metadata("bob"),
        )
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(foreign.value)[0] == "CAMPAIGN_NOT_FOUND"
    with pytest.raises(grpc.RpcError) as malformed:
        posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=created.id, campaign_id="not-a-uuid"),
                update_mask={"paths": ["campaign_id"]},
            ),
            metadata=metadata,
        )
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_growth_and_activity_bad_input(world: World) -> None:
    stub, metadata = world.analytics(), world.metadata()
    requests_and_fields = [
        (analytics_service_pb2.GetAccountGrowthRequest(account_id="nope"), "account_id"),
        (
            analytics_service_pb2.GetAccountGrowthRequest(
                account_id=str(world.account.id), from_date="2020-01-01", to_date="2022-01-01"
            ),
            "from_date",
        ),
    ]
    for request, field in requests_and_fields:
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetAccountGrowth(request, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as days:
        stub.GetAudienceActivity(
            analytics_service_pb2.GetAudienceActivityRequest(
                account_id=str(world.account.id), days=91
            ),
            metadata=metadata,
        )
    assert days.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def rest(world: World, envoy_factory: EnvoyFactory) -> Iterator[tuple[str, requests.Session]]:
    base = envoy_factory(grpc_port=world.server.server.port).base_url
    yield from rest_as(world.server, base, "alice")


def test_rest_paths_through_envoy(world: World, rest: tuple[str, requests.Session]) -> None:
    base, session = rest
    account = str(world.account.id)
    analytics = session.get(f"{base}/v1/campaigns/{world.campaign_id}/analytics", timeout=10)
    assert analytics.status_code == 200, analytics.text
    body = analytics.json()
    assert body["campaign"]["totals"]["impressions"] == "2500"  # int64 as a string
    assert body["campaign"]["clickThroughRate"] == pytest.approx(30 / 2500)
    growth = session.get(
        f"{base}/v1/accounts/{account}/growth",
        params={
            "fromDate": world.d0.date().isoformat(),
            "toDate": (world.d0 + timedelta(days=4)).date().isoformat(),
        },
        timeout=10,
    )
    assert growth.status_code == 200, growth.text
    assert growth.json()["netChange"] == "100"
    activity = session.get(f"{base}/v1/accounts/{account}/audienceActivity?days=30", timeout=10)
    assert activity.status_code == 200 and len(activity.json()["hours"]) == 168
    created = session.post(f"{base}/v1/campaigns", json={"userId": "alice", "name": "REST"})
    assert created.status_code == 200, created.text
    campaign_id = created.json()["id"]
    fetched = session.get(f"{base}/v1/campaigns/{campaign_id}", timeout=10)
    assert fetched.status_code == 200 and fetched.json()["name"] == "REST"
    listed = session.get(f"{base}/v1/campaigns", params={"userId": "alice"}, timeout=10)
    assert campaign_id in {c["id"] for c in listed.json()["campaigns"]}
    bad = session.post(f"{base}/v1/campaigns", json={"userId": "alice", "name": ""}, timeout=10)
    assert bad.status_code == 400
    other = session.get(f"{base}/v1/campaigns", params={"userId": "bob"}, timeout=10)
    assert other.status_code == 403
