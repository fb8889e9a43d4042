"""The one outbox writer: every event reaches the outbox table through `write_events`,
in the transaction of the change it describes.

The unit of work calls it when it commits, with the events its aggregates recorded
and its use case added (adapters/db/unit_of_work.py); the publishing queue calls it
when it applies a settlement (adapters/db/publish_queue.py). A row's payload is the
event's message in proto3 JSON (adapters/kafka/serialization.py), which the relay
sends on; the trigger of migration 0008 numbers post events as they are inserted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, text

from post_management.adapters.kafka.serialization import outbox_payload
from post_management.domain.events import DomainEvent
from post_management.observability import tracing

# All of a transaction's events in one statement, in order (the trigger numbers post
# events row by row as they are inserted), passed as one JSON document: no array of
# JSON texts to escape element by element.
_INSERT = text(
    """
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, payload, headers,
                        occurred_at)
    SELECT CAST(e->>'event_id' AS uuid), e->>'event_type', e->>'aggregate_type',
           e->>'aggregate_id', e->'payload', CAST(:headers AS jsonb),
           CAST(e->>'occurred_at' AS timestamptz)
    FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS v(e, n)
    ORDER BY v.n
    """
)


def write_events(connection: Connection, events: Sequence[DomainEvent]) -> None:
    """Insert one row per event, in order; an event id stored before is refused
    (uq_outbox_event_id) and takes the transaction down with it."""
    params = outbox_params(events)
    if params is not None:
        connection.execute(_INSERT, params)


def outbox_params(events: Sequence[DomainEvent]) -> dict[str, str] | None:
    """The parameters of _INSERT for `events` (None for no events)."""
    if not events:
        return None
    rows = [
        {
            "event_id": str(event.event_id),
            "event_type": event.event_type,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "payload": outbox_payload(event),
            "occurred_at": event.occurred_at.isoformat(),
        }
        for event in events
    ]
    # Trace context and correlation id, forwarded to Kafka by the relay.
    headers = json.dumps(tracing.outbox_headers())
    return {"events": json.dumps(rows), "headers": headers}
