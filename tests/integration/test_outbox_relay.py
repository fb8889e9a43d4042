"""The outbox relay against the machine's PostgreSQL and a real Kafka-protocol
broker (Tansu): payloads and headers, a broker outage, failover between two
relay processes, and purging."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, text
from xmp.posts.v1 import events_pb2, post_pb2

from post_management.adapters.db.outbox import write_events
from post_management.adapters.db.outbox_housekeeping import purge_unrelayed
from post_management.adapters.kafka.registry import EVENT_MESSAGES
from post_management.adapters.kafka.relay import OutboxRelay, RelaySettings
from post_management.adapters.kafka.serialization import (
    ValueFormat,
    decode,
    header_map,
    outbox_payload,
)
from post_management.bootstrap.jobs import outbox_relay, outbox_ticks
from post_management.bootstrap.settings import load_settings
from post_management.domain import events
from post_management.domain.events import DomainEvent
from post_management.domain.post import PostState, Priority
from post_management.observability import metrics
from tests.fixtures.kafka import KafkaBroker

PREFIX = "xmp.posts."
REPO_ROOT = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def fast_settings(**overrides: Any) -> RelaySettings:
    base = RelaySettings(
        batch_size=200,
        send_timeout=timedelta(seconds=2),
        poll_interval=timedelta(milliseconds=50),
        lock_retry_interval=timedelta(milliseconds=100),
        backoff_initial=timedelta(milliseconds=100),
        backoff_max=timedelta(seconds=1),
    )
    return dataclasses.replace(base, **overrides)


def sample_events(now: datetime) -> list[DomainEvent]:
    post, account = uuid.uuid4(), uuid.uuid4()
    ids: dict[str, Any] = {"post_id": post, "account_id": account, "user_id": "user-1"}
    later = now + timedelta(hours=3)
    return [
        events.PostScheduled(
            **ids,
            scheduled_for=later,
            timezone="Europe/Berlin",
            priority=Priority.HIGH,
            previous_scheduled_for=now + timedelta(hours=1),
            occurred_at=now,
        ),
        events.PostPublished(
            **ids, x_post_id="190001", published_at=now, attempt=2, occurred_at=now
        ),
        events.PostFailed(
            **ids,
            error_code="X_UNAVAILABLE",
            reason="X answered 503",
            attempt=1,
            state=PostState.SCHEDULED,
            next_attempt_at=later,
            occurred_at=now,
        ),
        events.PostCancelled(**ids, reason="user", scheduled_for=later, occurred_at=now),
        events.PostMetricsUpdated(
            **ids,
            x_post_id="190001",
            collected_at=now,
            counts={"impressions": 12_000_000_000, "likes": 7, "video_views": 3},
            occurred_at=now,
        ),
        events.PostQueueAdded(**ids, due_at=later, priority=Priority.URGENT, occurred_at=now),
        events.PostQueueProcessed(
            **ids,
            state=PostState.PUBLISHED,
            attempt=1,
            delay=timedelta(seconds=1, milliseconds=250),
            occurred_at=now,
        ),
        events.OptimalTimingAnalyzed(
            account_id=account,
            user_id="user-1",
            timezone="America/New_York",
            days_analyzed=30,
            sample_size=41,
            suggestions=[
                events.TimingSuggestion(later, 0.93),
                events.TimingSuggestion(later + timedelta(days=1), 0.5),
            ],
            occurred_at=now,
        ),
        events.RateLimitReached(
            account_id=account,
            user_id="user-1",
            scope=events.RateLimitScope.USER,
            endpoint="POST /2/tweets",
            limit=100,
            reset_at=later,
            occurred_at=now,
        ),
        events.AccountSuspended(
            account_id=account,
            user_id="user-1",
            x_user_id="4242",
            reason="user-suspended",
            affected_posts=3,
            occurred_at=now,
        ),
        events.XSpendBudgetReached(
            account_id=account,
            user_id="user-1",
            month="2026-03",
            budget_micros=1_000_000,
            spent_micros=990_000,
            needed_micros=15_000,
            post_id=post,
            occurred_at=now,
        ),
        events.TrendDetected(
            account_id=account,
            user_id="user-1",
            post_id=post,
            kind=events.TrendKind.POST_ABOVE_NORM,
            metric="engagements",
            observed=240.0,
            expected=31.5,
            score=6.25,
            age=timedelta(hours=1, minutes=30),
            summary="far above the account's posts at 1.5 h",
            occurred_at=now,
        ),
        events.TrendDetected(
            account_id=account,
            user_id="user-1",
            kind=events.TrendKind.FOLLOWER_DROP,
            metric="followers",
            observed=950.0,
            expected=1000.0,
            score=-0.05,
            summary="followers fell 5.0%",
            occurred_at=now,
        ),
    ]


def insert(engine: Engine, batch: list[DomainEvent]) -> None:
    with engine.begin() as connection:
        write_events(connection, batch)


def insert_raw(engine: Engine, event_type: str, aggregate_id: str, payload: str) -> str:
    """A row as any writer could leave it (the relay must cope with what it finds)."""
    event_id = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id,"
                " payload, occurred_at) VALUES (:id, :type, 'post', :agg,"
                " CAST(:payload AS jsonb), now())"
            ),
            {"id": event_id, "type": event_type, "agg": aggregate_id, "payload": payload},
        )
    return event_id


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def consume(
    bootstrap: str,
    topics: list[str],
    expected: int,
    timeout: float = 15.0,
    expected_ids: set[str] | None = None,
) -> list[Any]:
    """Records of `topics` from the start, until `expected` are read and every
    id of `expected_ids` is among them (duplicates may come too); bounded."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=5000
    )
    try:
        deadline = time.monotonic() + timeout
        partitions: list[TopicPartition] = []
        for topic in topics:
            found = consumer.partitions_for_topic(topic)
            while not found and time.monotonic() < deadline:
                time.sleep(0.1)
                consumer.topics()  # refreshes metadata
                found = consumer.partitions_for_topic(topic)
            assert found, f"topic {topic} never appeared"
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        missing = set(expected_ids or ())
        while (len(records) < expected or missing) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
                missing.difference_update(header_map(r.headers)["ce_id"] for r in batch)
        assert len(records) >= expected, f"read {len(records)} of {expected} records"
        assert not missing, f"{len(missing)} expected events never arrived"
        return records
    finally:
        consumer.close()


def unsent(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar()
            or 0
        )


# -- every event type, both value formats ------------------------------------


@pytest.mark.parametrize("value_format", [ValueFormat.JSON, ValueFormat.PROTOBUF])
def test_every_event_type_arrives_with_key_headers_and_payload(
    engine: Engine, kafka_broker: KafkaBroker, value_format: ValueFormat
) -> None:
    now = datetime(2026, 3, 29, 0, 30, 15, 123000, tzinfo=UTC)
    batch = sample_events(now)
    assert {e.event_type for e in batch} == set(events.EVENT_TYPES) == set(EVENT_MESSAGES)
    insert(engine, batch)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE outbox SET headers = CAST(:h AS jsonb) WHERE event_type = :t"),
            {"h": f'{{"traceparent": "{TRACEPARENT}"}}', "t": events.POST_PUBLISHED},
        )
    relay = OutboxRelay(
        engine, kafka_broker.bootstrap_servers, fast_settings(value_format=value_format)
    )
    try:
        assert relay.backlog() == len(batch)
        assert relay.run_once() == len(batch)
        assert relay.backlog() == 0
        assert relay.run_once() == 0
    finally:
        relay.close()

    records = consume(
        kafka_broker.bootstrap_servers, [PREFIX + e.event_type for e in batch], len(batch)
    )
    assert len(records) == len(batch)
    by_id = {header_map(r.headers)["ce_id"]: r for r in records}
    # The post's events are numbered 1, 2, 3... in the order they were written.
    post_events = [e for e in batch if e.aggregate_type == events.AGGREGATE_POST]
    sequence = {e.event_id: str(n) for n, e in enumerate(post_events, start=1)}
    for event in batch:
        record = by_id[str(event.event_id)]
        headers = header_map(record.headers)
        assert record.topic == PREFIX + event.event_type
        assert record.key == event.aggregate_id.encode()
        assert headers["ce_type"] == event.event_type
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_source"] == "/xmp/post-management"
        assert headers["ce_subject"] == event.aggregate_id
        assert headers["ce_time"] == "2026-03-29T00:30:15.123000Z"
        if value_format is ValueFormat.JSON:
            assert headers["content-type"] == "application/json"
        else:
            name = EVENT_MESSAGES[event.event_type].DESCRIPTOR.full_name
            assert headers["content-type"] == f"application/protobuf; proto={name}"
        assert headers.get("traceparent") == (
            TRACEPARENT if event.event_type == events.POST_PUBLISHED else None
        )
        message = decode(event.event_type, record.value, headers["content-type"])
        assert type(message) is EVENT_MESSAGES[event.event_type]
        rendered = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
        numbered = {"sequence": sequence[event.event_id]} if event.event_id in sequence else {}
        assert rendered == outbox_payload(event) | numbered
        assert rendered["eventId"] == str(event.event_id)

    # Spot checks straight on the generated classes.
    scheduled = by_id[str(batch[0].event_id)]
    message = decode(
        events.POST_SCHEDULED, scheduled.value, header_map(scheduled.headers)["content-type"]
    )
    assert isinstance(message, events_pb2.PostScheduled)
    assert message.priority == post_pb2.PRIORITY_HIGH
    assert message.scheduled_for.ToDatetime(tzinfo=UTC) == now + timedelta(hours=3)
    metrics = by_id[str(batch[4].event_id)]
    decoded = decode(
        events.POST_METRICS_UPDATED, metrics.value, header_map(metrics.headers)["content-type"]
    )
    assert isinstance(decoded, events_pb2.PostMetricsUpdated)
    assert decoded.metrics.impressions == 12_000_000_000
    # Trend alerts: keyed by the post (or the account for a follower drop), and no
    # number taken from the post's sequence.
    post_trend, drop = batch[-2], batch[-1]
    assert by_id[str(post_trend.event_id)].key == outbox_payload(post_trend)["postId"].encode()
    assert by_id[str(drop.event_id)].key == outbox_payload(drop)["accountId"].encode()
    trend_record = by_id[str(post_trend.event_id)]
    trend = decode(
        events.ANALYTICS_TREND_DETECTED,
        trend_record.value,
        header_map(trend_record.headers)["content-type"],
    )
    assert isinstance(trend, events_pb2.TrendDetected)
    assert trend.kind == events_pb2.TREND_KIND_POST_ABOVE_NORM
    assert trend.age.ToTimedelta() == timedelta(hours=1, minutes=30)


def test_invalid_payload_goes_to_the_dead_letter_topic(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    good = sample_events(datetime.now(UTC))[0]
    # No event the writer is given has such a payload: the row is written by hand.
    bad_id = insert_raw(engine, good.event_type, good.aggregate_id, '{"noSuchField": 1}')
    insert(engine, [good])
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, fast_settings())
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    [dead] = consume(kafka_broker.bootstrap_servers, [PREFIX + "dead_letter"], 1)
    assert header_map(dead.headers)["ce_id"] == bad_id
    [ok] = consume(kafka_broker.bootstrap_servers, [PREFIX + good.event_type], 1)
    assert header_map(ok.headers)["ce_id"] == str(good.event_id)


# -- broker outage -------------------------------------------------------------


def metrics_events(keys: list[uuid.UUID], count: int) -> list[DomainEvent]:
    """`count` events spread over `keys`; impressions = per-key sequence number."""
    now = datetime.now(UTC)
    seq = dict.fromkeys(keys, 0)
    out = []
    for i in range(count):
        post = keys[i % len(keys)]
        out.append(
            events.PostMetricsUpdated(
                post_id=post,
                account_id=post,
                user_id="u",
                x_post_id="1",
                collected_at=now,
                counts={"impressions": seq[post]},
                occurred_at=now,
            )
        )
        seq[post] += 1
    return out


def assert_complete_and_ordered(records: list[Any], expected: list[DomainEvent]) -> None:
    """Every expected event arrived; per key, first copies are in sequence order."""
    seen: dict[str, list[int]] = {}
    first: set[str] = set()
    for record in records:
        event_id = header_map(record.headers)["ce_id"]
        if event_id in first:
            continue  # a duplicate: consumers drop it by event id
        first.add(event_id)
        message = decode(
            events.POST_METRICS_UPDATED, record.value, header_map(record.headers)["content-type"]
        )
        assert isinstance(message, events_pb2.PostMetricsUpdated)
        assert record.key.decode() == message.post_id
        seen.setdefault(message.post_id, []).append(message.metrics.impressions)
    assert first >= {str(e.event_id) for e in expected}, "events lost"
    for key, sequence in seen.items():
        assert sequence == sorted(sequence), f"key {key} out of order"
        assert sequence == list(range(len(sequence))), f"key {key} has gaps"


def test_broker_outage_loses_nothing_and_keeps_order(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, fast_settings())
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        warm_up = metrics_events([uuid.uuid4()], 1)
        insert(engine, warm_up)
        wait_for(lambda: unsent(engine) == 0, 10, "the warm-up event to be relayed")

        kafka_broker.stop()
        keys = [uuid.uuid4() for _ in range(20)]
        written = metrics_events(keys, 1000)
        for start in range(0, len(written), 100):
            insert(engine, written[start : start + 100])
        wait_for(lambda: relay.last_error is not None, 15, "the relay to notice the outage")
        assert relay.backlog() == 1000, "rows marked sent while the broker was down"

        kafka_broker.start()
        wait_for(lambda: relay.backlog() == 0, 30, "the backlog to drain after the restart")
        assert relay.last_error is None
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "run_forever did not stop"
    assert not relay.is_active

    records = consume(
        kafka_broker.bootstrap_servers,
        [PREFIX + events.POST_METRICS_UPDATED],
        1000,
        expected_ids={str(e.event_id) for e in written},
    )
    assert_complete_and_ordered(records, written)


# -- failover ------------------------------------------------------------------

RELAY_PROCESS = textwrap.dedent(
    """
    import signal, sys, threading
    from datetime import timedelta
    from sqlalchemy import create_engine
    from post_management.adapters.db.engine import normalize_url
    from post_management.adapters.kafka.relay import OutboxRelay, RelaySettings

    url, servers, name = sys.argv[1:4]
    engine = create_engine(normalize_url(url), connect_args={"application_name": name})
    settings = RelaySettings(
        batch_size=50,
        send_timeout=timedelta(seconds=2),
        poll_interval=timedelta(milliseconds=50),
        lock_retry_interval=timedelta(milliseconds=100),
        backoff_initial=timedelta(milliseconds=100),
        backoff_max=timedelta(seconds=1),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    OutboxRelay(engine, servers, settings).run_forever(stop)
    """
)


def sessions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT application_name FROM pg_stat_activity WHERE datname = current_database()")
        )
        return {str(row[0]) for row in rows}


def lock_holder(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar()


@pytest.fixture
def relay_processes(
    machine_database: str, kafka_broker: KafkaBroker
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'src'}{os.pathsep}{REPO_ROOT / 'gen'}"}

    def start(name: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                RELAY_PROCESS,
                machine_database,
                kafka_broker.bootstrap_servers,
                name,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_failover_when_the_active_relay_dies(
    engine: Engine,
    kafka_broker: KafkaBroker,
    relay_processes: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    first = relay_processes("relay-a")
    wait_for(lambda: lock_holder(engine) == "relay-a", 20, "relay-a to take the lock")
    second = relay_processes("relay-b")
    wait_for(lambda: "relay-b" in sessions(engine), 20, "relay-b to connect")
    time.sleep(0.3)  # relay-b has tried the lock a few times by now
    assert lock_holder(engine) == "relay-a"

    keys = [uuid.uuid4() for _ in range(10)]
    written = metrics_events(keys, 600)
    insert(engine, written[:300])
    wait_for(lambda: unsent(engine) < 300, 10, "relay-a to publish")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    insert(engine, written[300:])

    wait_for(lambda: lock_holder(engine) == "relay-b", 10, "relay-b to take over")
    wait_for(lambda: unsent(engine) == 0, 20, "relay-b to drain the outbox")
    records = consume(
        kafka_broker.bootstrap_servers,
        [PREFIX + events.POST_METRICS_UPDATED],
        600,
        expected_ids={str(e.event_id) for e in written},
    )
    assert_complete_and_ordered(records, written)

    second.send_signal(signal.SIGTERM)
    assert second.wait(10) == 0
    assert lock_holder(engine) is None


def test_standby_relay_does_nothing_while_another_holds_the_lock(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    settings = fast_settings()
    active = OutboxRelay(engine, kafka_broker.bootstrap_servers, settings)
    standby = OutboxRelay(engine, kafka_broker.bootstrap_servers, settings)
    try:
        insert(engine, metrics_events([uuid.uuid4()], 3))
        assert active.run_once() == 3
        insert(engine, metrics_events([uuid.uuid4()], 2))
        assert standby.run_once() == 0
        assert not standby.is_active
        assert standby.backlog() == 2
        active.close()  # releases the lock
        assert standby.run_once() == 2
        assert standby.is_active
    finally:
        active.close()
        standby.close()


# -- purge ---------------------------------------------------------------------


def test_purge_removes_only_old_sent_rows(engine: Engine) -> None:
    batch = metrics_events([uuid.uuid4()], 6)
    insert(engine, batch)
    ids = [str(e.event_id) for e in batch]
    with engine.begin() as connection:
        ages = {ids[0]: "10 days", ids[1]: "8 days", ids[2]: "6 days", ids[3]: "1 minute"}
        for event_id, age in ages.items():
            connection.execute(
                text(
                    "UPDATE outbox SET sent_at = now() - CAST(:age AS interval)"
                    " WHERE event_id = :id"
                ),
                {"age": age, "id": event_id},
            )
        # Unsent rows stay whatever their age.
        connection.execute(
            text("UPDATE outbox SET occurred_at = now() - interval '30 days' WHERE event_id = :id"),
            {"id": ids[4]},
        )
    relay = OutboxRelay(engine, "127.0.0.1:9", RelaySettings(retention=timedelta(days=7)))
    assert relay.purge() == 2
    with engine.connect() as connection:
        left = {str(r[0]) for r in connection.execute(text("SELECT event_id FROM outbox"))}
    assert left == set(ids[2:])
    assert relay.purge(older_than=timedelta(days=1)) == 1
    assert relay.purge() == 0
    assert relay.backlog() == 2


def test_without_kafka_unsent_rows_past_the_retention_are_purged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    batch = metrics_events([uuid.uuid4()], 4)
    insert(engine, batch)
    ids = [str(e.event_id) for e in batch]
    with engine.begin() as connection:
        for event_id, age in ((ids[0], "10 days"), (ids[1], "8 days"), (ids[2], "6 days")):
            connection.execute(
                text(
                    "UPDATE outbox SET occurred_at = now() - CAST(:age AS interval)"
                    " WHERE event_id = :id"
                ),
                {"age": age, "id": event_id},
            )
        # A sent row is the relay's to purge (by its sent_at), never this job's.
        connection.execute(
            text(
                "UPDATE outbox SET occurred_at = now() - interval '30 days',"
                " sent_at = now() WHERE event_id = :id"
            ),
            {"id": ids[3]},
        )
    purged = metrics.OUTBOX_UNRELAYED_PURGED._value.get()
    with caplog.at_level(logging.WARNING, logger="post_management.adapters.db"):
        assert purge_unrelayed(engine, timedelta(days=7)) == 2
        assert purge_unrelayed(engine, timedelta(days=7)) == 0
    with engine.connect() as connection:
        left = {str(r[0]) for r in connection.execute(text("SELECT event_id FROM outbox"))}
    assert left == {ids[2], ids[3]}
    assert metrics.OUTBOX_UNRELAYED_PURGED._value.get() == purged + 2
    lines = [r for r in caplog.records if "unrelayed" in r.getMessage()]
    assert len(lines) == 1 and "2 unrelayed rows" in lines[0].getMessage()


def test_the_service_without_kafka_runs_the_unrelayed_purge_on_the_retention_interval(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    settings = load_settings(retention_interval_seconds=123, outbox_retention_days=1)
    assert outbox_relay(settings, engine) is None
    (tick,) = outbox_ticks(settings, engine, None)
    assert (tick.name, tick.every_seconds) == ("outbox-purge-unrelayed", 123)
    batch = metrics_events([uuid.uuid4()], 2)
    insert(engine, batch)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE outbox SET occurred_at = now() - interval '2 days' WHERE event_id = :id"),
            {"id": str(batch[0].event_id)},
        )
    tick.run()
    with engine.connect() as connection:
        left = {str(r[0]) for r in connection.execute(text("SELECT event_id FROM outbox"))}
    assert left == {str(batch[1].event_id)}
    relay = OutboxRelay(engine, "127.0.0.1:9", RelaySettings())
    assert [t.name for t in outbox_ticks(settings, engine, relay)] == ["outbox-purge"]
