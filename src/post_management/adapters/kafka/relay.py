"""Transactional outbox relay: publishes unsent `outbox` rows to Kafka in id order
and marks them sent once Kafka has acknowledged them (docs/events.md).

One relay is active at a time: it holds a PostgreSQL session advisory lock on a
dedicated connection, and does all its outbox reads and writes on that
connection. Other replicas poll for the lock and take over when the holder's
connection closes (process death, network loss, shutdown). That connection has a
statement timeout and TCP keepalives on both ends, so neither a hung statement nor
a peer that vanished without closing the connection keeps the lock for long.

A row that cannot be turned into its record, or that Kafka refuses for itself (too
large), goes to the dead-letter topic: one bad row never blocks the rows behind it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError, KafkaError, MessageSizeTooLargeError
from sqlalchemy import Connection, Engine, text

from post_management.adapters.kafka.registry import UnknownEventType
from post_management.adapters.kafka.serialization import (
    InvalidPayload,
    ValueFormat,
    cloudevent_headers,
    encode,
    to_message,
)
from post_management.adapters.kafka.telemetry import observed_batch

log = logging.getLogger(__name__)

# "xmp-outbox" folded into 63 bits: one lock per database, shared by all replicas.
DEFAULT_LOCK_KEY = 0x786D_702D_6F75_7462

_SELECT_BATCH = text(
    "SELECT id, event_id, event_type, aggregate_id, payload, headers, occurred_at, sequence"
    " FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT :limit"
)
# Session settings of the lock connection (set_config(..., false) lasts the session).
_SESSION_SETTINGS = text(
    "SELECT set_config('statement_timeout', :statement_ms, false),"
    " set_config('idle_in_transaction_session_timeout', :statement_ms, false),"
    " set_config('tcp_keepalives_idle', :idle_s, false),"
    " set_config('tcp_keepalives_interval', :interval_s, false),"
    " set_config('tcp_keepalives_count', :count, false),"
    " set_config('tcp_user_timeout', :user_timeout_ms, false)"
)
# A dead-letter record keeps at most this much of the row's payload.
DEAD_LETTER_PAYLOAD_LIMIT = 64 * 1024
_MARK_SENT = text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)")
_BACKLOG = text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
_PURGE = text(
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
    " WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => :age)"
    " ORDER BY id LIMIT :limit)"
)


@dataclass(frozen=True)
class RelaySettings:
    # Topic = prefix + event type, e.g. "xmp.posts.post.scheduled".
    topic_prefix: str = "xmp.posts."
    # Rows whose payload does not parse as their event's message go here
    # (prefix + this), so one bad row cannot stall the outbox.
    dead_letter_suffix: str = "dead_letter"
    value_format: ValueFormat = ValueFormat.JSON
    # CloudEvents `source` attribute (a URI reference).
    source: str = "/xmp/post-management"
    batch_size: int = 500
    # Upper bound on waiting for Kafka to acknowledge one batch.
    send_timeout: timedelta = timedelta(seconds=30)
    # Idle wait between polls when the outbox is empty.
    poll_interval: timedelta = timedelta(milliseconds=500)
    # How often a standby replica retries the advisory lock.
    lock_retry_interval: timedelta = timedelta(seconds=2)
    lock_key: int = DEFAULT_LOCK_KEY
    # Exponential back-off after a failure, bounded.
    backoff_initial: timedelta = timedelta(milliseconds=500)
    backoff_max: timedelta = timedelta(seconds=30)
    # Sent rows older than this are deleted by purge().
    retention: timedelta = timedelta(days=7)
    # The lock connection: a statement (or a transaction left open) that takes longer
    # fails, the session ends and the lock passes on; the relay's statements take ms.
    statement_timeout: timedelta = timedelta(seconds=15)
    # TCP keepalives on both ends of the lock connection: a peer gone without a FIN
    # is noticed after idle + interval * count (a minute), not the OS's two hours.
    keepalive_idle: timedelta = timedelta(seconds=30)
    keepalive_interval: timedelta = timedelta(seconds=10)
    keepalive_count: int = 3
    client_id: str = "post-management-outbox-relay"
    # Extra KafkaProducer options (security, compression, ...); they win.
    producer_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dead_letter_topic(self) -> str:
        return self.topic_prefix + self.dead_letter_suffix

    @property
    def dead_peer_timeout(self) -> timedelta:
        """How long an unanswered peer may keep the connection (TCP_USER_TIMEOUT too)."""
        return self.keepalive_idle + self.keepalive_interval * self.keepalive_count


class PublishFailed(Exception):
    """Kafka did not acknowledge part of a batch; those rows stay unsent."""

    def __init__(self, sent: int, failed: int, cause: BaseException | None) -> None:
        super().__init__(f"{failed} outbox rows not acknowledged ({sent} sent): {cause!r}")
        self.sent = sent
        self.failed = failed
        self.cause = cause


@dataclass(frozen=True)
class _Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class _Pending:
    row_id: int
    topic: str
    key: bytes
    future: Any = None
    error: BaseException | None = None

    def acked(self) -> bool:
        future = self.future
        return future is not None and bool(future.is_done) and bool(future.succeeded())


ProducerFactory = Callable[..., KafkaProducer]


class OutboxRelay:
    """Relays the outbox of one database to Kafka.

    `run_forever(stop_event)` is the loop to run in a thread; `run_once()` is one
    batch (0 when the outbox is empty or another replica holds the lock).
    `backlog()` and `purge()` work on any replica.
    """

    def __init__(
        self,
        engine: Engine,
        bootstrap_servers: str | Sequence[str],
        settings: RelaySettings | None = None,
        *,
        producer_factory: ProducerFactory = KafkaProducer,
    ) -> None:
        self._engine = engine
        self._servers = (
            [bootstrap_servers] if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
        )
        self.settings = settings or RelaySettings()
        self._producer_factory = producer_factory
        self._producer: KafkaProducer | None = None
        self._lock_conn: Connection | None = None
        self._guard = threading.RLock()
        self.last_error: BaseException | None = None

    # -- leadership -------------------------------------------------------

    @property
    def is_active(self) -> bool:
        """Whether this relay holds the advisory lock (as far as it knows)."""
        return self._lock_conn is not None

    def _ensure_lock(self) -> Connection | None:
        if self._lock_conn is not None:
            return self._lock_conn
        settings = self.settings
        conn = self._engine.connect()
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.settings.lock_key}
            ).scalar_one()
            conn.commit()
            if got:
                # Only the leader's session is tuned; it never returns to the pool.
                conn.execute(
                    _SESSION_SETTINGS,
                    {
                        "statement_ms": str(_ms(settings.statement_timeout)),
                        "idle_s": str(int(settings.keepalive_idle.total_seconds())),
                        "interval_s": str(int(settings.keepalive_interval.total_seconds())),
                        "count": str(settings.keepalive_count),
                        "user_timeout_ms": str(_ms(settings.dead_peer_timeout)),
                    },
                )
                conn.commit()
                _keep_alive(conn, settings)
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return None
        log.info("outbox relay active (advisory lock %d taken)", self.settings.lock_key)
        self._lock_conn = conn
        return conn

    def _drop_lock(self, *, broken: bool) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return
        if not broken:
            try:
                conn.rollback()
                conn.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self.settings.lock_key}
                )
                conn.commit()
            except Exception:
                log.debug("releasing the outbox lock failed; closing frees it", exc_info=True)
        # Closing the DBAPI connection ends the session, which frees the lock even
        # if the unlock could not be sent; never pool it (its settings are the lock's).
        conn.invalidate()
        conn.close()

    # -- Kafka ------------------------------------------------------------

    def _ensure_producer(self) -> KafkaProducer:
        if self._producer is not None:
            return self._producer
        send_ms = int(self.settings.send_timeout.total_seconds() * 1000)
        request_ms = max(1000, min(30_000, send_ms // 2))
        config: dict[str, Any] = {
            "bootstrap_servers": self._servers,
            "client_id": self.settings.client_id,
            "acks": "all",
            # Retries are bounded by delivery_timeout_ms, not by count.
            "retries": 2**31 - 1,
            "linger_ms": 5,
            "request_timeout_ms": request_ms,
            "delivery_timeout_ms": max(send_ms, request_ms + 5),
            "max_block_ms": send_ms,
            "bootstrap_timeout_ms": min(send_ms, 10_000),
        }
        config.update(self.settings.producer_options)
        try:
            # Idempotence keeps per-partition order across retries without
            # limiting the pipeline; kafka-python refuses it below Kafka 0.11.
            producer = self._producer_factory(**({"enable_idempotence": True} | config))
        except KafkaConfigurationError:
            log.warning("broker lacks idempotent produce; sending one request at a time")
            producer = self._producer_factory(
                **(
                    {"enable_idempotence": False, "max_in_flight_requests_per_connection": 1}
                    | config
                )
            )
        self._producer = producer
        return producer

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                # Unacknowledged records are abandoned: their rows stay unsent.
                producer.close(timeout=0)
            except Exception:
                log.debug("closing the Kafka producer failed", exc_info=True)

    # -- relaying ---------------------------------------------------------

    @observed_batch
    def run_once(self) -> int:
        """Publish one batch and mark it sent; the number of rows marked.

        Raises PublishFailed (after marking what was acknowledged) when Kafka
        refused or timed out part of the batch, and database errors as they are.
        """
        with self._guard:
            try:
                return self._run_once()
            except PublishFailed:
                self._drop_producer()
                raise
            except KafkaError:
                self._drop_producer()
                raise
            except Exception:
                # A database error may mean the session (and the lock) is gone.
                self._drop_lock(broken=True)
                raise

    def _run_once(self) -> int:
        conn = self._ensure_lock()
        if conn is None:
            return 0
        rows = conn.execute(_SELECT_BATCH, {"limit": self.settings.batch_size}).all()
        conn.commit()
        if not rows:
            return 0
        producer = self._ensure_producer()
        pending: list[_Pending] = []
        send_error: BaseException | None = None
        for row in rows:
            record = self._record(row)
            item = _Pending(row.id, record.topic, record.key)
            pending.append(item)
            if send_error is not None:
                continue
            try:
                item.topic, item.future = self._send(producer, row, record)
            except KafkaError as exc:
                # Metadata unavailable (broker down): later rows are not handed
                # over at all, so they cannot overtake this one.
                send_error = exc
        try:
            producer.flush(timeout=self.settings.send_timeout.total_seconds())
        except KafkaError as exc:
            send_error = send_error or exc
        acked = _acknowledged_prefixes(pending)
        if acked:
            conn.execute(_MARK_SENT, {"ids": acked})
            conn.commit()
        failed = len(pending) - len(acked)
        if failed:
            cause = send_error or next(
                (p.future.exception for p in pending if p.future is not None and p.future.failed()),
                None,
            )
            raise PublishFailed(len(acked), failed, cause)
        return len(acked)

    def _record(self, row: Any) -> _Record:
        """The row's record, or its dead-letter record when anything about the row
        fails (payload, event type, sequence, headers): never raises for a row."""
        try:
            return self._event_record(row)
        except (InvalidPayload, UnknownEventType) as exc:
            log.error("outbox row %d (%s) is invalid: %s", row.id, row.event_type, exc)
            return self._dead_letter_record(row, exc)
        except Exception as exc:
            log.exception("outbox row %d (%s) cannot be relayed", row.id, row.event_type)
            return self._dead_letter_record(row, exc)

    def _event_record(self, row: Any) -> _Record:
        settings = self.settings
        message = to_message(row.event_type, row.payload)
        if row.sequence is not None and "sequence" in message.DESCRIPTOR.fields_by_name:
            message.sequence = row.sequence  # type: ignore[attr-defined]
        value, content_type = encode(message, settings.value_format)
        headers = self._headers(row, content_type)
        return _Record(settings.topic_prefix + row.event_type, _key(row), value, headers)

    def _dead_letter_record(
        self, row: Any, error: BaseException, *, keep_payload: bool = True
    ) -> _Record:
        headers = self._headers(row, "application/json")
        value = _dead_letter_value(row, error, keep_payload=keep_payload)
        return _Record(self.settings.dead_letter_topic, _key(row), value, headers)

    def _headers(self, row: Any, content_type: str) -> list[tuple[str, bytes]]:
        # Trace context is optional: headers that are not an object are ignored.
        row_headers = row.headers if isinstance(row.headers, Mapping) else None
        return cloudevent_headers(
            event_id=str(row.event_id),
            event_type=str(row.event_type),
            source=self.settings.source,
            occurred_at=row.occurred_at,
            content_type_value=content_type,
            subject=str(row.aggregate_id),
            row_headers=row_headers,
        )

    def _send(self, producer: KafkaProducer, row: Any, record: _Record) -> tuple[str, Any]:
        """Hand the record to the producer: its topic and future. A refusal of this
        record itself (too large, a value the client rejects) sends the row to the
        dead-letter topic instead; a KafkaError about the broker propagates."""
        try:
            future = producer.send(
                record.topic, key=record.key, value=record.value, headers=record.headers
            )
            return record.topic, future
        except MessageSizeTooLargeError as exc:
            refusal: Exception = exc
        except KafkaError:
            raise
        except Exception as exc:
            refusal = exc
        log.error("Kafka refused outbox row %d (%s): %r", row.id, row.event_type, refusal)
        dead = self._dead_letter_record(row, refusal)
        try:
            future = producer.send(dead.topic, key=dead.key, value=dead.value, headers=dead.headers)
        except MessageSizeTooLargeError:
            # Still too large with the payload: the dead letter goes without it.
            dead = self._dead_letter_record(row, refusal, keep_payload=False)
            future = producer.send(dead.topic, key=dead.key, value=dead.value, headers=dead.headers)
        return dead.topic, future

    def run_forever(self, stop_event: threading.Event) -> None:
        """Relay until `stop_event` is set; survives Kafka and database outages."""
        settings = self.settings
        backoff = settings.backoff_initial.total_seconds()
        try:
            while not stop_event.is_set():
                try:
                    sent = self.run_once()
                except Exception as exc:
                    self.last_error = exc
                    delay = min(backoff, settings.backoff_max.total_seconds())
                    # Jitter spreads reconnects of several replicas.
                    delay *= random.uniform(0.8, 1.0)
                    log.warning("outbox relay failed (%r); retrying in %.1fs", exc, delay)
                    backoff = min(backoff * 2, settings.backoff_max.total_seconds())
                    stop_event.wait(delay)
                    continue
                self.last_error = None
                backoff = settings.backoff_initial.total_seconds()
                if sent >= settings.batch_size:
                    continue
                idle = settings.poll_interval if self.is_active else settings.lock_retry_interval
                stop_event.wait(idle.total_seconds())
        finally:
            self.close()

    def close(self) -> None:
        """Flush nothing further, close the producer and give up the lock."""
        with self._guard:
            self._drop_producer()
            self._drop_lock(broken=False)

    # -- housekeeping -----------------------------------------------------

    def backlog(self) -> int:
        """Rows waiting to be relayed."""
        with self._engine.connect() as conn:
            return int(conn.execute(_BACKLOG).scalar_one())

    def purge(self, older_than: timedelta | None = None, *, batch: int = 10_000) -> int:
        """Delete sent rows whose `sent_at` is older than the retention period.

        Unsent rows are never deleted. Works in batches to keep locks short.
        """
        age = (older_than if older_than is not None else self.settings.retention).total_seconds()
        removed = 0
        while True:
            with self._engine.begin() as conn:
                count = conn.execute(_PURGE, {"age": age, "limit": batch}).rowcount
            removed += count
            if count < batch:
                return removed


def _acknowledged_prefixes(pending: list[_Pending]) -> list[int]:
    """Ids to mark sent: acknowledged rows not preceded (in id order) by an
    unacknowledged row of the same topic and key, so a retry re-sends the rest
    of that key's sequence in order."""
    blocked: set[tuple[str, bytes]] = set()
    ids: list[int] = []
    for item in pending:
        stream = (item.topic, item.key)
        if not item.acked():
            blocked.add(stream)
        elif stream not in blocked:
            ids.append(item.row_id)
    return ids


def _dead_letter_value(row: Any, error: BaseException, *, keep_payload: bool = True) -> bytes:
    payload: Any = row.payload if keep_payload else None
    rendered = json.dumps(payload, separators=(",", ":"), default=str)
    if len(rendered) > DEAD_LETTER_PAYLOAD_LIMIT:
        # A payload too large for Kafka must not make its dead letter too large.
        payload = rendered[:DEAD_LETTER_PAYLOAD_LIMIT]
    document = {
        "eventType": str(row.event_type),
        "aggregateId": str(row.aggregate_id),
        "payload": payload,
        "error": f"{type(error).__name__}: {error}"[:2000],
    }
    return json.dumps(document, separators=(",", ":"), default=str).encode("utf-8")


def _key(row: Any) -> bytes:
    return str(row.aggregate_id).encode("utf-8")


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _keep_alive(conn: Connection, settings: RelaySettings) -> None:
    """TCP keepalives (and a user timeout) on the relay's end of the lock session, so
    a relay waiting on a database that vanished notices it; the server's end is set
    by _SESSION_SETTINGS. A Unix-socket session has no TCP to tune."""
    dbapi: Any = conn.connection.dbapi_connection
    with socket.socket(fileno=os.dup(dbapi.fileno())) as sock:  # a dup: closing it is safe
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", int(settings.keepalive_idle.total_seconds())),
            ("TCP_KEEPINTVL", int(settings.keepalive_interval.total_seconds())),
            ("TCP_KEEPCNT", settings.keepalive_count),
            ("TCP_USER_TIMEOUT", _ms(settings.dead_peer_timeout)),
        ):
            option = getattr(socket, name, None)  # Linux names; absent elsewhere
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
