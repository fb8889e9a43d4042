"""Keeping the outbox bounded when no relay empties it (Kafka not configured)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine, text

from post_management.observability import metrics

log = logging.getLogger(__name__)

_PURGE_UNSENT = text(
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
    " WHERE sent_at IS NULL AND occurred_at < now() - make_interval(secs => :age)"
    " ORDER BY id LIMIT :limit)"
)


def purge_unrelayed(engine: Engine, retention: timedelta, *, batch: int = 10_000) -> int:
    """Delete unsent rows older than `retention`; only for a service without Kafka,
    where nothing would ever send them. Counted and logged once per purge."""
    removed = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(
                _PURGE_UNSENT, {"age": retention.total_seconds(), "limit": batch}
            ).rowcount
        removed += count
        if count < batch:
            break
    if removed:
        metrics.OUTBOX_UNRELAYED_PURGED.inc(removed)
        log.warning(
            "outbox: %d unrelayed rows older than %s deleted (Kafka is not configured)",
            removed,
            retention,
            extra={"action": "outbox.purge_unrelayed", "rows": removed},
        )
    return removed
