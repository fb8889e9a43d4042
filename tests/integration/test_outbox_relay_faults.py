"""The outbox relay when things go wrong in one row or in its database session, and
the per-post sequence number of post events, against the machine's PostgreSQL and a
real Kafka-protocol broker (Tansu)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import Engine, text
from xmp.posts.v1 import events_pb2

from post_management.adapters.db.outbox import write_events
from post_management.adapters.kafka.relay import OutboxRelay, RelaySettings
from post_management.adapters.kafka.serialization import decode, header_map, outbox_payload
from post_management.domain import events
from post_management.domain.events import DomainEvent
from post_management.domain.post import PostState, Priority
from tests.fixtures.kafka import KafkaBroker
from tests.integration.test_outbox_relay import (
    PREFIX,
    consume,
    fast_settings,
    insert,
    insert_raw,
    lock_holder,
    unsent,
)

DEAD_LETTER = PREFIX + "dead_letter"


def _scheduled(post_id: uuid.UUID, account_id: uuid.UUID) -> DomainEvent:
    now = datetime.now(UTC)
    return events.PostScheduled(
        post_id=post_id,
        account_id=account_id,
        user_id="u",
        scheduled_for=now + timedelta(hours=1),
        timezone="UTC",
        priority=Priority.NORMAL,
        occurred_at=now,
    )


# -- one bad row never blocks the head ------------------------------------------


def test_a_row_failing_for_any_other_reason_goes_to_the_dead_letter_topic(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    post = uuid.uuid4()
    # A payload that is JSON but no object: parsing it fails with a TypeError.
    bad = insert_raw(engine, events.POST_SCHEDULED, str(post), "[1, 2]")
    good = _scheduled(post, uuid.uuid4())
    insert(engine, [good])
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, fast_settings())
    try:
        assert relay.run_once() == 2
        assert unsent(engine) == 0
    finally:
        relay.close()
    [dead] = consume(kafka_broker.bootstrap_servers, [DEAD_LETTER], 1)
    assert header_map(dead.headers)["ce_id"] == bad
    letter = json.loads(dead.value)
    assert letter["payload"] == [1, 2]
    assert letter["error"].startswith("TypeError")
    [ok] = consume(kafka_broker.bootstrap_servers, [PREFIX + events.POST_SCHEDULED], 1)
    assert header_map(ok.headers)["ce_id"] == str(good.event_id)


def test_a_record_kafka_refuses_as_too_large_goes_to_the_dead_letter_topic(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    post, account = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    huge = events.PostFailed(
        post_id=post,
        account_id=account,
        user_id="u",
        error_code="X_400",
        reason="x" * 20_000,
        attempt=1,
        state=PostState.FAILED,
        occurred_at=now,
    )
    good = _scheduled(post, account)
    insert(engine, [huge, good])
    settings = fast_settings(producer_options={"max_request_size": 8192})
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, settings)
    try:
        assert relay.run_once() == 2
        assert unsent(engine) == 0
    finally:
        relay.close()
    [dead] = consume(kafka_broker.bootstrap_servers, [DEAD_LETTER], 1)
    assert header_map(dead.headers)["ce_id"] == str(huge.event_id)
    letter = json.loads(dead.value)
    assert letter["error"].startswith("MessageSizeTooLargeError")
    assert letter["payload"] is None  # with it, the dead letter was too large as well
    [ok] = consume(kafka_broker.bootstrap_servers, [PREFIX + events.POST_SCHEDULED], 1)
    assert header_map(ok.headers)["ce_id"] == str(good.event_id)


# -- the leader's database session ------------------------------------------------


def test_a_hung_statement_gives_up_the_lock_within_the_statement_timeout(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    settings = fast_settings(statement_timeout=timedelta(seconds=1))
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, settings)
    blocker = engine.connect()
    outcome: list[BaseException | int] = []
    try:
        assert relay.run_once() == 0
        assert relay.is_active and lock_holder(engine) is not None
        # Another session holds the outbox: the relay's next read waits on it.
        blocker.execute(text("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE"))

        def run() -> None:
            try:
                outcome.append(relay.run_once())
            except Exception as exc:
                outcome.append(exc)

        started = time.monotonic()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=6)
        assert not worker.is_alive(), "the relay's statement hung past its timeout"
        assert time.monotonic() - started < 5
        assert outcome and "statement timeout" in str(outcome[0])
        # Its session ended with the statement: the lock is free for a standby.
        assert not relay.is_active
        assert lock_holder(engine) is None
    finally:
        blocker.rollback()
        blocker.close()
        relay.close()


def test_the_leader_session_has_tcp_keepalives_on_both_ends(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    settings = RelaySettings()
    assert settings.statement_timeout <= timedelta(seconds=30)
    # A vanished peer is noticed within about a minute, not the OS's two hours.
    assert settings.dead_peer_timeout <= timedelta(minutes=2)
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, fast_settings())
    try:
        assert relay.run_once() == 0
        with engine.connect() as connection:
            client_port = connection.execute(
                text(
                    "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one()
        # The relay's end: the socket of this process that holds the lock session.
        [fd] = [
            c.fd
            for c in psutil.Process().net_connections(kind="tcp")
            if c.laddr and c.laddr.port == client_port
        ]
        with socket.socket(fileno=os.dup(fd)) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000
        # The server's end, as the session itself reports it.
        session: Any = relay._lock_conn
        shown = {
            name: session.execute(text(f"SHOW {name}")).scalar_one()
            for name in (
                "statement_timeout",
                "tcp_keepalives_idle",
                "tcp_keepalives_interval",
                "tcp_keepalives_count",
                "tcp_user_timeout",
            )
        }
        session.commit()
        assert shown == {
            "statement_timeout": "15s",
            "tcp_keepalives_idle": "30",
            "tcp_keepalives_interval": "10",
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": "60000",
        }
    finally:
        relay.close()
    # The tuned session is closed, never handed back to the pool.
    with engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "0"


# -- sequence numbers ---------------------------------------------------------------


def _sequences(records: list[Any]) -> dict[str, list[tuple[int, str]]]:
    """Per post: (sequence, event type) of each record, in sequence order."""
    seen: dict[str, list[tuple[int, str]]] = {}
    for record in records:
        headers = header_map(record.headers)
        message: Any = decode(headers["ce_type"], record.value, headers["content-type"])
        seen.setdefault(message.post_id, []).append((message.sequence, headers["ce_type"]))
    return {post: sorted(pairs) for post, pairs in seen.items()}


def test_post_events_carry_a_per_post_sequence_across_topics(
    engine: Engine, kafka_broker: KafkaBroker
) -> None:
    first, second, account = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    ids = {"account_id": account, "user_id": "u"}
    written = [
        _scheduled(first, account),
        _scheduled(second, account),
        events.PostQueueAdded(
            post_id=first, **ids, due_at=now, priority=Priority.HIGH, occurred_at=now
        ),
        events.RateLimitReached(
            **ids,
            scope=events.RateLimitScope.USER,
            endpoint="POST /2/tweets",
            limit=1,
            reset_at=now,
            occurred_at=now,
        ),
        events.PostPublished(
            post_id=first, **ids, x_post_id="1", published_at=now, attempt=1, occurred_at=now
        ),
        events.PostCancelled(post_id=second, **ids, reason="user", occurred_at=now),
    ]
    insert(engine, written)
    relay = OutboxRelay(engine, kafka_broker.bootstrap_servers, fast_settings())
    try:
        assert relay.run_once() == len(written)
        # Numbers go on after the sent rows are purged: they are never reused.
        assert relay.purge(older_than=timedelta(0)) == len(written)
        # A row written by another path (raw SQL, as the publishing queue does).
        payload = outbox_payload(_scheduled(first, account))
        insert_raw(engine, events.POST_SCHEDULED, str(first), json.dumps(payload))
        assert relay.run_once() == 1
    finally:
        relay.close()
    topics = [
        PREFIX + t
        for t in (
            events.POST_SCHEDULED,
            events.POST_QUEUE_ADDED,
            events.POST_PUBLISHED,
            events.POST_CANCELLED,
        )
    ]
    records = consume(kafka_broker.bootstrap_servers, topics, 6)
    assert _sequences(records) == {
        str(first): [
            (1, events.POST_SCHEDULED),
            (2, events.POST_QUEUE_ADDED),
            (3, events.POST_PUBLISHED),
            (4, events.POST_SCHEDULED),
        ],
        str(second): [(1, events.POST_SCHEDULED), (2, events.POST_CANCELLED)],
    }
    # Account events have no sequence.
    [limited] = consume(kafka_broker.bootstrap_servers, [PREFIX + events.RATE_LIMIT_REACHED], 1)
    assert "sequence" not in events_pb2.RateLimitReached.DESCRIPTOR.fields_by_name
    assert json.loads(limited.value).get("sequence") is None


def test_concurrent_writers_of_one_post_are_numbered_in_commit_order(engine: Engine) -> None:
    post, account = uuid.uuid4(), uuid.uuid4()
    early, late = _scheduled(post, account), _scheduled(post, account)
    late = dataclasses.replace(late, event_id=uuid.uuid4())
    with engine.connect() as holder:
        # The first writer has written but not committed; the second must wait for it.
        write_events(holder, [early])
        waiter = threading.Thread(target=insert, args=(engine, [late]), daemon=True)
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive(), "the second writer did not wait for the first"
        holder.commit()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    with engine.connect() as connection:
        numbered = dict(
            connection.execute(
                text("SELECT event_id, sequence FROM outbox WHERE aggregate_id = :id"),
                {"id": str(post)},
            ).all()
        )
    assert numbered == {early.event_id: 1, late.event_id: 2}
