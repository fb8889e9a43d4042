"""AnalyticsService over real gRPC and PostgreSQL, on a hand-built data set whose
expected figures are worked out in the comments."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from sqlalchemy import Engine
from xmp.posts.v1 import analytics_service_pb2 as pb
from xmp.posts.v1 import analytics_service_pb2_grpc, post_pb2

from post_management.adapters.db.engine import make_engine
from post_management.domain.account import Account
from post_management.domain.analytics import Counts
from post_management.domain.auth import Role
from post_management.domain.post import Post, PostState
from tests.conftest import truncate
from tests.integration.analytics_fixtures import Data, last_weekday_hour, next_weekday_hour
from tests.integration.grpc_fixtures import error_details
from tests.support.harness import RunningServer, auth, settings_for

SECRET = "webhook-consumer-secret-for-tests"
TUESDAY, WEDNESDAY, SATURDAY, SUNDAY = 1, 2, 5, 6


@pytest.fixture(scope="module")
def running(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    settings = settings_for(
        machine_database,
        Path(tmp_path_factory.mktemp("analytics")),
        twitter_consumer_key="emulator-consumer-key",
        twitter_consumer_secret=SECRET,
        twitter_bearer_token="emulator-bearer-token",
        analytics_cache_ttl_seconds=300,
    )
    server = RunningServer(settings)
    yield server
    server.stop()


@dataclass
class World:
    server: RunningServer
    engine: Engine
    data: Data
    now: datetime
    account: Account
    other_account: Account
    posts: dict[str, Post]

    def stub(
        self, subject: str, role: Role = Role.USER
    ) -> tuple[object, tuple[tuple[str, str], ...]]:
        channel = self.server.channel()
        return analytics_service_pb2_grpc.AnalyticsServiceStub(channel), auth(
            self.server.token(subject, role)
        )


def counts(impressions: int, likes: int, reposts: int = 0, replies: int = 0, quotes: int = 0,
           bookmarks: int = 0, links: int = 0, profiles: int = 0) -> Counts:  # fmt: skip
    return Counts(impressions, likes, reposts, replies, quotes, bookmarks, links, profiles)


@pytest.fixture
def world(running: RunningServer, machine_database: str) -> Iterator[World]:
    truncate(machine_database)
    engine = make_engine(machine_database)
    data = Data(engine)
    now = datetime.now(UTC)
    account = data.account("alice")
    other = data.account("alice")  # alice's second account: only the previous window
    at = {
        "p1": last_weekday_hour(now, SUNDAY, 3, timedelta(days=2)),
        "p2": last_weekday_hour(now, SUNDAY, 4, timedelta(days=2)),
        "p3": last_weekday_hour(now, SATURDAY, 3, timedelta(days=2)),
        "p4": last_weekday_hour(now, SATURDAY, 4, timedelta(days=2)),
        "p5": last_weekday_hour(now, TUESDAY, 12, timedelta(days=2)),
        "p6": last_weekday_hour(now, WEDNESDAY, 12, timedelta(days=2)),
        "p7": now - timedelta(days=3),
        "p8": now - timedelta(days=3),
    }
    final = {
        # engagements / impressions
        "p1": counts(1000, 30, 5, 5, 0, 5, 3, 2),  # 50 / 1000 = 0.05
        "p2": counts(2000, 20, 10, 5, 5),  # 40 / 2000 = 0.02
        "p3": counts(500, 10),  # 10 / 500 = 0.02
        "p4": counts(400, 2, 2),  # 4 / 400 = 0.01
        "p5": counts(1000, 40, 10, 5, 5, 10, 20, 10),  # 100 / 1000 = 0.10
        "p6": counts(100, 20),  # 20 / 100 = 0.20
        "p7": counts(0, 0),  # no impressions: left out of rates
    }
    posts: dict[str, Post] = {}
    for index, name in enumerate(["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"], start=1):
        published = at[name]
        series = []
        if name == "p5":  # 30 engagements one hour in: velocity 30 per hour
            series.append((published + timedelta(hours=1), counts(500, 20, 5, 5)))
        if name in final:
            series.append((published + timedelta(hours=3), final[name]))
        posts[name] = data.post(
            account,
            published_at=published,
            due_at=published - timedelta(seconds=10 * index),  # lateness 10, 20, ... 80 s
            snapshots=series,
        )
    posts["failed"] = data.post(account, PostState.FAILED, due_at=now - timedelta(days=5))
    posts["dead"] = data.post(account, PostState.DEAD_LETTERED, due_at=now - timedelta(days=4))
    posts["scheduled"] = data.post(account, PostState.SCHEDULED, due_at=now + timedelta(days=1))
    posts["previous"] = data.post(
        other,
        published_at=now - timedelta(days=30),
        snapshots=[(now - timedelta(days=29), counts(1000, 100))],  # 100 engagements
    )
    yield World(running, engine, data, now, account, other, posts)
    engine.dispose()


def test_post_metrics_latest_snapshot(world: World) -> None:
    stub, metadata = world.stub("alice")
    p5 = world.posts["p5"]
    answer = stub.GetPostMetrics(pb.GetPostMetricsRequest(post_id=str(p5.id)), metadata=metadata)
    assert answer.post_id == str(p5.id) and answer.x_post_id == p5.x_post_id
    assert not answer.deleted_on_x
    latest = answer.latest
    assert (latest.impressions, latest.likes, latest.url_link_clicks) == (1000, 40, 20)
    assert latest.collected_at.ToDatetime(UTC) == p5.published_at + timedelta(hours=3)
    unmeasured = stub.GetPostMetrics(
        pb.GetPostMetricsRequest(post_id=str(world.posts["p8"].id)), metadata=metadata
    )
    assert not unmeasured.HasField("latest")


def test_post_analytics_by_hand(world: World) -> None:
    stub, metadata = world.stub("alice")
    p5 = world.posts["p5"]
    answer = stub.GetPostAnalytics(
        pb.GetPostAnalyticsRequest(post_id=str(p5.id)), metadata=metadata
    )
    assert answer.engagement_rate == pytest.approx(0.10)
    assert answer.click_through_rate == pytest.approx(20 / 1000)  # p5's link clicks
    assert [s.impressions for s in answer.series] == [500, 1000]
    assert answer.engagement_velocity == pytest.approx(30.0)
    # Others with impressions: p1 0.05, p2 0.02, p3 0.02, p4 0.01, p6 0.20 (p7 and p8 have
    # none). 4 of 5 are lower; average 0.30 / 5; median 0.02; text post benchmark 0.015.
    assert answer.account_percentile == pytest.approx(80.0)
    assert answer.account_average_engagement_rate == pytest.approx(0.06)
    assert answer.account_median_engagement_rate == pytest.approx(0.02)
    assert answer.benchmark_engagement_rate == pytest.approx(0.015)
    insights = {i.text: dict(i.figures) for i in answer.insights}
    assert insights["Engagement rate 10.00% is 67% above the account's average (6.00%)."] == (
        pytest.approx({"engagement_rate": 0.10, "reference_rate": 0.06, "ratio": 0.10 / 0.06})
    )
    assert insights["Better than 80% of the account's posts."] == {
        "percentile": 80.0,
        "posts_compared": 5.0,
    }
    assert insights["Likes make up 40% of engagements."]["share"] == pytest.approx(0.4)
    assert "Engagement rate 10.00% is 567% above the benchmark (1.50%)." in insights


def test_user_stats_by_hand(world: World) -> None:
    stub, metadata = world.stub("alice")
    start = world.now - timedelta(days=20)
    end = world.now + timedelta(days=2)
    answer = stub.GetUserStats(
        pb.GetUserStatsRequest(
            user_id="alice",
            from_date=start.isoformat().replace("+00:00", "Z"),
            to_date=end.isoformat().replace("+00:00", "Z"),
        ),
        metadata=metadata,
    )
    by_state = {post_pb2.PostState.Name(c.state): c.count for c in answer.posts_by_state}
    assert by_state == {
        "POST_STATE_PUBLISHED": 8,
        "POST_STATE_FAILED": 1,
        "POST_STATE_DEAD_LETTERED": 1,
        "POST_STATE_SCHEDULED": 1,
    }
    # Sums over p1..p7: impressions 1000+2000+500+400+1000+100, likes 30+20+10+2+40+20.
    assert answer.totals.impressions == 5000 and answer.totals.likes == 122
    # Link clicks: p1 3 + p5 20 over 5,000 impressions.
    assert answer.click_through_rate == pytest.approx(23 / 5000)
    # Mean of 0.05, 0.02, 0.02, 0.01, 0.10, 0.20.
    assert answer.average_engagement_rate == pytest.approx(0.40 / 6)
    names = {str(post.id): name for name, post in world.posts.items()}
    # By engagements: p5 100, p1 50, p2 40, p6 20, p3 10.
    assert [names[i] for i in answer.top_post_ids] == ["p5", "p1", "p2", "p6", "p3"]
    # 224 engagements now against 100 in the 22 days before: +124%.
    assert answer.engagement_trend == pytest.approx(1.24)
    assert answer.publish_success_rate == pytest.approx(8 / 10)
    assert answer.median_lateness_seconds == pytest.approx(45.0)  # of 10, 20, ..., 80 s


def test_optimal_times_by_hand_with_an_event(world: World) -> None:
    stub, metadata = world.stub("alice")
    answer = stub.GetOptimalTimes(
        pb.GetOptimalTimesRequest(account_id=str(world.account.id), count=2), metadata=metadata
    )
    level = 0.40 / 6  # the account's mean rate scales the prior curve
    prior_noon_tue_wed = level * 1.10 * 1.25
    assert answer.timezone == "UTC"
    got = [(s.start.ToDatetime(UTC), s.score, s.confidence) for s in answer.slots]
    assert [g[0] for g in got] == [
        next_weekday_hour(world.now, WEDNESDAY, 12),  # p6's cell: (0.20 + 3 prior) / 4
        next_weekday_hour(world.now, TUESDAY, 12),  # p5's cell: (0.10 + 3 prior) / 4
    ]
    assert got[0][1] == pytest.approx((0.20 + 3 * prior_noon_tue_wed) / 4)
    assert got[1][1] == pytest.approx((0.10 + 3 * prior_noon_tue_wed) / 4)
    assert [g[2] for g in got] == pytest.approx([0.25, 0.25])
    [event] = world.data.events("optimal_timing.analyzed", world.account.id)
    assert event["sampleSize"] == 6 and event["timezone"] == "UTC"
    assert [s["score"] for s in event["suggestions"]] == pytest.approx([got[0][1], got[1][1]])


def test_other_users_are_denied_and_services_allowed(world: World) -> None:
    bob, bob_auth = world.stub("bob")
    p5 = str(world.posts["p5"].id)
    calls = [
        lambda: bob.GetPostMetrics(pb.GetPostMetricsRequest(post_id=p5), metadata=bob_auth),
        lambda: bob.GetPostAnalytics(pb.GetPostAnalyticsRequest(post_id=p5), metadata=bob_auth),
        lambda: bob.GetUserStats(pb.GetUserStatsRequest(user_id="alice"), metadata=bob_auth),
        lambda: bob.GetOptimalTimes(
            pb.GetOptimalTimesRequest(account_id=str(world.account.id)), metadata=bob_auth
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    # A cached answer does not skip the ownership check.
    alice, alice_auth = world.stub("alice")
    alice.GetPostMetrics(pb.GetPostMetricsRequest(post_id=p5), metadata=alice_auth)
    with pytest.raises(grpc.RpcError) as caught:
        calls[0]()
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    crm, crm_auth = world.stub("crm", Role.SERVICE)
    answer = crm.GetPostAnalytics(pb.GetPostAnalyticsRequest(post_id=p5), metadata=crm_auth)
    assert answer.engagement_rate == pytest.approx(0.10)
    with pytest.raises(grpc.RpcError) as caught:
        crm.GetPostMetrics(pb.GetPostMetricsRequest(post_id=p5))  # no token
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_bad_input_is_invalid_argument(world: World) -> None:
    stub, metadata = world.stub("alice")
    account = str(world.account.id)
    bad = [
        (lambda: stub.GetPostMetrics(pb.GetPostMetricsRequest(post_id="no"), metadata=metadata), "post_id"),  # noqa: E501
        (lambda: stub.GetPostAnalytics(pb.GetPostAnalyticsRequest(), metadata=metadata), "post_id"),
        (lambda: stub.GetUserStats(pb.GetUserStatsRequest(), metadata=metadata), "user_id"),
        (lambda: stub.GetUserStats(pb.GetUserStatsRequest(user_id="alice", from_date="yesterday"), metadata=metadata), "from_date"),  # noqa: E501
        # The default window, or the period before the range, would start before year 1.
        (lambda: stub.GetUserStats(pb.GetUserStatsRequest(user_id="alice", to_date="0001-01-05"), metadata=metadata), "to_date"),  # noqa: E501
        (lambda: stub.GetUserStats(pb.GetUserStatsRequest(user_id="alice", from_date="0001-01-02", to_date="9999-12-30"), metadata=metadata), "from_date"),  # noqa: E501
        (lambda: stub.GetOptimalTimes(pb.GetOptimalTimesRequest(account_id=account, days=31), metadata=metadata), "days"),  # noqa: E501
        (lambda: stub.GetOptimalTimes(pb.GetOptimalTimesRequest(account_id=account, count=21), metadata=metadata), "count"),  # noqa: E501
    ]  # fmt: skip
    for call, field in bad:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, field
        _, violations = error_details(caught.value)
        assert [v[0] for v in violations] == [field]
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetPostAnalytics(pb.GetPostAnalyticsRequest(post_id=missing), metadata=metadata)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


# --- webhooks -------------------------------------------------------------------------


def sign(body: bytes, secret: str = SECRET) -> str:
    return (
        "sha256="
        + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    )


def deliver(stub: object, body: bytes, signature: str | None) -> pb.ReceiveXWebhookResponse:
    from google.api import httpbody_pb2

    metadata = () if signature is None else (("x-twitter-webhooks-signature", signature),)
    request = pb.ReceiveXWebhookRequest(
        body=httpbody_pb2.HttpBody(content_type="application/json", data=body)
    )
    return stub.ReceiveXWebhook(request, metadata=metadata)  # type: ignore[attr-defined, no-any-return]


def test_crc_answers_with_the_hmac_of_the_token_and_needs_no_token(world: World) -> None:
    stub = analytics_service_pb2_grpc.AnalyticsServiceStub(world.server.channel())
    answer = stub.VerifyXWebhook(pb.VerifyXWebhookRequest(crc_token="challenge-123"))
    assert answer.content_type == "application/json"
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"challenge-123", hashlib.sha256).digest()
    ).decode()
    assert json.loads(answer.data) == {"response_token": f"sha256={expected}"}
    with pytest.raises(grpc.RpcError) as caught:
        stub.VerifyXWebhook(pb.VerifyXWebhookRequest())
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_signed_events_update_metrics_once_and_bad_signatures_are_refused(world: World) -> None:
    stub = analytics_service_pb2_grpc.AnalyticsServiceStub(world.server.channel())
    alice, alice_auth = world.stub("alice")
    p5 = world.posts["p5"]
    request = pb.GetPostMetricsRequest(post_id=str(p5.id))
    assert alice.GetPostMetrics(request, metadata=alice_auth).latest.likes == 40  # now cached
    nonce = datetime.now(UTC).timestamp()
    body = json.dumps(
        {
            "for_user_id": world.account.x_user_id,
            "favorite_events": [
                {"id": f"fav-{nonce}", "favorited_status": {"id_str": p5.x_post_id}},
                {"id": f"fav-other-{nonce}", "favorited_status": {"id_str": "404404"}},
            ],
            "tweet_create_events": [
                {"id_str": f"rt-{nonce}", "retweeted_status": {"id_str": p5.x_post_id}},
                {"id_str": f"re-{nonce}", "in_reply_to_status_id_str": p5.x_post_id},
                {"id_str": f"q-{nonce}", "quoted_status": {"id_str": p5.x_post_id}},
            ],
        }
    ).encode()

    for signature in (None, sign(body, "wrong-secret"), sign(body + b" ")):
        with pytest.raises(grpc.RpcError) as caught:
            deliver(stub, body, signature)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error_details(caught.value)[0] == "WEBHOOK_SIGNATURE_INVALID"
    assert world.data.snapshot_count(p5.id) == 2  # nothing applied

    first = deliver(stub, body, sign(body))
    assert (first.applied, first.duplicates, first.ignored) == (4, 0, 1)
    replay = deliver(stub, body, sign(body))
    assert (replay.applied, replay.duplicates, replay.ignored) == (0, 4, 1)

    # The delivery dropped the cached answer: one more like, repost, reply and quote.
    latest = alice.GetPostMetrics(request, metadata=alice_auth).latest
    assert (latest.likes, latest.reposts, latest.replies, latest.quotes) == (41, 11, 6, 6)
    assert latest.impressions == 1000
    assert world.data.snapshot_count(p5.id) == 3
    [event] = world.data.events("post.metrics_updated", p5.id)
    assert event["metrics"]["likes"] == "41" and event["xPostId"] == p5.x_post_id

    with pytest.raises(grpc.RpcError) as caught:
        deliver(stub, b"not json", sign(b"not json"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_cached_metrics_until_a_snapshot_lands(world: World) -> None:
    alice, alice_auth = world.stub("alice")
    p1 = world.posts["p1"]
    request = pb.GetPostMetricsRequest(post_id=str(p1.id))
    assert alice.GetPostMetrics(request, metadata=alice_auth).latest.likes == 30
    # Written behind the service's back: the cached answer stands (TTL 300 s here).
    world.data.snapshot(p1, world.now, counts(1100, 35))
    assert alice.GetPostMetrics(request, metadata=alice_auth).latest.likes == 30
    # A deletion event lands through the service: the cache is dropped.
    body = json.dumps(
        {"tweet_delete_events": [{"status": {"id": p1.x_post_id, "user_id": "1"}}]}
    ).encode()
    stub = analytics_service_pb2_grpc.AnalyticsServiceStub(world.server.channel())
    assert deliver(stub, body, sign(body)).applied == 1
    fresh = alice.GetPostMetrics(request, metadata=alice_auth)
    assert fresh.latest.likes == 35 and fresh.deleted_on_x
    assert MessageToDict(fresh)["deletedOnX"] is True
