"""Transactional outbox relay: publishes unsent `outbox` rows to Kafka in id order
and marks them sent once Kafka has acknowledged them (docs/events.md).

One relay is active at a time: it holds a PostgreSQL session advisory lock on a
dedicated connection, and does all its outbox reads and writes on that
connection. Other replicas poll for the lock and take over when the holder's
connection closes (process death, network loss, shutdown).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError, KafkaError
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
    "SELECT id, event_id, event_type, aggregate_id, payload, headers, occurred_at"
    " FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT :limit"
)
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
    client_id: str = "post-management-outbox-relay"
    # Extra KafkaProducer options (security, compression, ...); they win.
    producer_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dead_letter_topic(self) -> str:
        return self.topic_prefix + self.dead_letter_suffix


class PublishFailed(Exception):
    """Kafka did not acknowledge part of a batch; those rows stay unsent."""

    def __init__(self, sent: int, failed: int, cause: BaseException | None) -> None:
        super().__init__(f"{failed} outbox rows not acknowledged ({sent} sent): {cause!r}")
        self.sent = sent
        self.failed = failed
        self.cause = cause


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
        conn = self._engine.connect()
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.settings.lock_key}
            ).scalar_one()
            conn.commit()
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
                broken = True
        if broken:
            # Closing the DBAPI connection ends the session, which frees the
            # lock even if the unlock could not be sent; never pool it.
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
            topic, key, value, headers = self._record(row)
            item = _Pending(row.id, topic, key)
            pending.append(item)
            if send_error is not None:
                continue
            try:
                item.future = producer.send(topic, key=key, value=value, headers=headers)
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

    def _record(self, row: Any) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
        settings = self.settings
        key = str(row.aggregate_id).encode("utf-8")
        try:
            message = to_message(row.event_type, row.payload)
            value, content_type = encode(message, settings.value_format)
            topic = settings.topic_prefix + row.event_type
        except (InvalidPayload, UnknownEventType) as exc:
            log.error("outbox row %d (%s) is invalid: %s", row.id, row.event_type, exc)
            topic = settings.dead_letter_topic
            value, content_type = _dead_letter_value(row, exc), "application/json"
        headers = cloudevent_headers(
            event_id=str(row.event_id),
            event_type=row.event_type,
            source=settings.source,
            occurred_at=row.occurred_at,
            content_type_value=content_type,
            subject=str(row.aggregate_id),
            row_headers=row.headers,
        )
        return topic, key, value, headers

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


def _dead_letter_value(row: Any, error: BaseException) -> bytes:
    document = {
        "eventType": row.event_type,
        "aggregateId": str(row.aggregate_id),
        "payload": row.payload,
        "error": str(error),
    }
    return json.dumps(document, separators=(",", ":"), default=str).encode("utf-8")


__all__ = [
    "DEFAULT_LOCK_KEY",
    "OutboxRelay",
    "PublishFailed",
    "RelaySettings",
    "ValueFormat",
]
