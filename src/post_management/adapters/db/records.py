"""Audit log and idempotency keys: append-mostly tables (the outbox: outbox.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, text

from post_management.adapters.db.schema import audit_log, idempotency_keys
from post_management.ports.repositories import AuditEntry, IdempotencyRecord

# Built once; the columns are the parameters' names.
_INSERT_AUDIT = insert(audit_log)
_GET_KEY = select(idempotency_keys.c.request_hash, idempotency_keys.c.resource_id).where(
    idempotency_keys.c.scope == bindparam("scope"), idempotency_keys.c.key == bindparam("key")
)
_PUT_KEY = insert(idempotency_keys)

# Entries in order from one JSON document; `before` and `after` as JSON (a missing
# one is JSON null, as the column type stores None).
_INSERT_AUDIT_ROWS = text(
    """
    INSERT INTO audit_log (occurred_at, actor, action, resource_type, resource_id, user_id,
                           request_id, before, after)
    SELECT CAST(e->>'occurred_at' AS timestamptz), e->>'actor', e->>'action',
           e->>'resource_type', CAST(e->>'resource_id' AS uuid), e->>'user_id',
           e->>'request_id', e->'before', e->'after'
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS v(e, n)
    ORDER BY v.n
    """
)


def audit_params(entry: AuditEntry) -> dict[str, Any]:
    """The parameters of _INSERT_AUDIT for one entry, stamped now."""
    return {
        "occurred_at": datetime.now(UTC),
        "actor": entry.actor,
        "action": entry.action,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "user_id": entry.user_id,
        "request_id": entry.request_id,
        "before": entry.before,
        "after": entry.after,
    }


class SqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def record(self, entry: AuditEntry) -> None:
        self._conn.execute(_INSERT_AUDIT, audit_params(entry))

    def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Several entries in one statement (the publishing engine's batches)."""
        now = datetime.now(UTC).isoformat()
        rows = [
            {
                "occurred_at": now,
                "actor": entry.actor,
                "action": entry.action,
                "resource_type": entry.resource_type,
                "resource_id": str(entry.resource_id),
                "user_id": entry.user_id,
                "request_id": entry.request_id,
                "before": entry.before,
                "after": entry.after,
            }
            for entry in entries
        ]
        self._conn.execute(_INSERT_AUDIT_ROWS, {"rows": json.dumps(rows)})


class SqlIdempotencyKeys:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._conn.execute(_GET_KEY, {"scope": scope, "key": key}).first()
        return IdempotencyRecord(row[0], row[1]) if row is not None else None

    def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        self._conn.execute(_PUT_KEY, key_params(scope, key, record))


def key_params(scope: str, key: str, record: IdempotencyRecord) -> dict[str, Any]:
    """The parameters of _PUT_KEY, stamped now."""
    return {
        "scope": scope,
        "key": key,
        "request_hash": record.request_hash,
        "resource_id": record.resource_id,
        "created_at": datetime.now(UTC),
    }
