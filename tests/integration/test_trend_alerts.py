"""Trend alerts against the machine's PostgreSQL: a young post far above and one far
below its account's posts at the same age, a follower drop, each once; the alerts in
GetPostAnalytics over real gRPC; and `analytics.trend_detected` on a real
Kafka-protocol broker with its key and headers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, text
from xmp.posts.v1 import analytics_service_pb2 as pb
from xmp.posts.v1 import analytics_service_pb2_grpc, events_pb2

from post_management.adapters.clock import SystemClock
from post_management.adapters.db.engine import make_engine
from post_management.adapters.kafka.relay import OutboxRelay
from post_management.adapters.kafka.serialization import decode, header_map
from post_management.domain import events
from post_management.domain.account import Account
from post_management.domain.analytics import Counts
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.post import Post
from post_management.services.analytics.trend_alerts import TrendDetector
from tests.conftest import truncate
from tests.fixtures.kafka import KafkaBroker
from tests.integration.analytics_fixtures import Data
from tests.integration.test_outbox_relay import fast_settings
from tests.support.harness import RunningServer, auth, settings_for

H = timedelta(hours=1)
PEER_LIKES = [90, 95, 100, 100, 105, 110, 98, 102, 97, 103]


class DictCache:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def get(self, key: str) -> str | None:
        return None

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        pass

    def delete(self, *keys: str) -> None:
        self.deleted.extend(keys)


@pytest.fixture
def engine(machine_database: str) -> Iterator[Engine]:
    truncate(machine_database)
    engine = make_engine(machine_database)
    yield engine
    engine.dispose()


def with_peers(data: Data, now: datetime) -> Account:
    """An account whose 10 earlier posts had about 100 likes one hour in."""
    account = data.account("alice")
    for day, likes in enumerate(PEER_LIKES, start=1):
        published = now - timedelta(days=day)
        data.post(
            account,
            published_at=published,
            snapshots=[
                (published + H, Counts(impressions=5000, likes=likes)),
                (published + 2 * H, Counts(impressions=8000, likes=likes * 2)),
            ],
        )
    return account


def young(data: Data, account: Account, now: datetime, likes: int) -> Post:
    published = now - 90 * timedelta(minutes=1)
    return data.post(
        account,
        published_at=published,
        snapshots=[(published + H, Counts(impressions=5000, likes=likes))],
    )


def alerts(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT dedup_key, kind FROM trend_alerts ORDER BY id"))
        return [(row[0], row[1]) for row in rows]


def test_young_posts_far_from_the_norm_raise_one_alert_each(engine: Engine) -> None:
    data = Data(engine)
    now = datetime.now(UTC)
    account = with_peers(data, now)
    hot = young(data, account, now, likes=1500)
    cold = young(data, account, now, likes=3)
    usual = young(data, account, now, likes=101)
    cache = DictCache()
    detector = TrendDetector(data.uow, SystemClock(), cache)
    assert detector.check_posts() == 2
    assert sorted(alerts(engine)) == sorted(
        [
            (f"post:{hot.id}:above", events.TrendKind.POST_ABOVE_NORM),
            (f"post:{cold.id}:below", events.TrendKind.POST_BELOW_NORM),
        ]
    )
    assert set(cache.deleted) == {f"analytics:{hot.id}", f"analytics:{cold.id}"}
    [above] = data.events(events.ANALYTICS_TREND_DETECTED, hot.id)
    assert above["kind"] == events.TrendKind.POST_ABOVE_NORM
    assert above["postId"] == str(hot.id) and above["accountId"] == str(account.id)
    assert above["observed"] == 1500 and above["expected"] == 100
    assert above["age"] == "3600s" and above["score"] > 3.5
    assert "far above" in above["summary"]
    assert not data.events(events.ANALYTICS_TREND_DETECTED, usual.id)

    # New snapshots on the next ticks: still one alert per post and direction.
    data.snapshot(hot, now, Counts(impressions=9000, likes=2600))
    assert detector.check_posts() == 0
    assert TrendDetector(data.uow, SystemClock(), cache).check_posts() == 0  # a new leader
    assert len(data.events(events.ANALYTICS_TREND_DETECTED)) == 2


def test_a_follower_drop_is_an_alert_once_and_covers_that_days_posts(engine: Engine) -> None:
    data = Data(engine)
    now = datetime.now(UTC)
    account = data.account("alice")
    yesterday, today = now - timedelta(days=1), now
    inside = data.post(account, published_at=now - 5 * H)
    outside = data.post(account, published_at=now - 2 * timedelta(days=1))
    detector = TrendDetector(data.uow, SystemClock(), DictCache())
    with data.uow() as uow:
        before = FollowerSnapshot(yesterday.date(), yesterday, 1000)
        after = FollowerSnapshot(today.date(), today, 950)
        assert uow.insights.add_follower_snapshot(account.id, before)
        assert not detector.check_followers(uow, account.id, before)  # nothing earlier
        assert uow.insights.add_follower_snapshot(account.id, after)
        assert detector.check_followers(uow, account.id, after)
        assert not detector.check_followers(uow, account.id, after)  # once
        uow.commit()
    [drop] = data.events(events.ANALYTICS_TREND_DETECTED, account.id)
    assert drop["kind"] == events.TrendKind.FOLLOWER_DROP and drop["postId"] == ""
    assert drop["observed"] == 950 and drop["expected"] == 1000
    assert drop["score"] == pytest.approx(-0.05)
    assert [
        a.kind for a in data.trend_alerts_for_post(inside.id, account.id, inside.published_at)
    ] == [events.TrendKind.FOLLOWER_DROP]
    assert not data.trend_alerts_for_post(outside.id, account.id, outside.published_at)


def test_alerts_show_among_the_posts_insights(
    machine_database: str, engine: Engine, tmp_path: Path
) -> None:
    data = Data(engine)
    now = datetime.now(UTC)
    account = with_peers(data, now)
    hot = young(data, account, now, likes=1500)
    TrendDetector(data.uow, SystemClock(), DictCache()).check_posts()
    server = RunningServer(settings_for(machine_database, tmp_path))
    try:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(server.channel())
        answer = stub.GetPostAnalytics(
            pb.GetPostAnalyticsRequest(post_id=str(hot.id)), metadata=auth(server.token("alice"))
        )
    finally:
        server.stop()
    [trend] = [i for i in answer.insights if i.text.startswith("Trend:")]
    assert "far above" in trend.text
    assert trend.figures["observed"] == 1500 and trend.figures["expected"] == 100
    assert trend.figures["age_hours"] == 1.0 and trend.figures["score"] > 3.5


def test_the_event_arrives_on_the_broker_with_key_and_headers(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    data = Data(engine)
    now = datetime.now(UTC)
    account = with_peers(data, now)
    hot = young(data, account, now, likes=1500)
    assert TrendDetector(data.uow, SystemClock(), DictCache()).check_posts() == 1
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, fast_settings())
    try:
        while relay.run_once():
            pass
    finally:
        relay.close()
    topic = "xmp.posts." + events.ANALYTICS_TREND_DETECTED
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records = []
        for _ in range(50):
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if records:
                break
    finally:
        consumer.close()
    [record] = records
    headers = header_map(record.headers)
    assert record.key == str(hot.id).encode()
    assert headers["ce_type"] == events.ANALYTICS_TREND_DETECTED
    assert headers["ce_subject"] == str(hot.id)
    assert headers["ce_source"] == "/xmp/post-management"
    message = decode(events.ANALYTICS_TREND_DETECTED, record.value, headers["content-type"])
    assert isinstance(message, events_pb2.TrendDetected)
    assert message.post_id == str(hot.id) and message.account_id == str(account.id)
    assert message.kind == events_pb2.TREND_KIND_POST_ABOVE_NORM
    assert message.age.ToTimedelta() == H
