"""PostgreSQL side of erasure tombstones, removals on X and retention (the jobs'); the
privacy RPCs' audit trail, export reads and erasure are async_privacy.py's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.spend_ledger import record_spend
from post_management.adapters.db.stored_credentials import unseal
from post_management.domain.privacy import Pseudonyms
from post_management.domain.x_spend import Metered, PriceTable
from post_management.ports.privacy import (
    MAX_REMOVAL_ATTEMPTS,
    MAX_REMOVAL_ERROR_CHARS,
    PendingRemoval,
    RetentionCutoffs,
)

# Serialises an erasure against creates for the same user (shared by creates,
# exclusive for the erasure), so nothing committed after the erasure survives it.
LOCK_KEY = "hashtextextended(:user_id, 11)"
LOCK_AGAINST_ERASURE = text(f"SELECT pg_advisory_xact_lock_shared({LOCK_KEY})")
ERASED = text("SELECT 1 FROM erased_users WHERE user_hash IN (:keyed, :unkeyed)")


class SqlErasureTombstones:
    def __init__(self, connection: Connection, pseudonyms: Pseudonyms) -> None:
        self._conn = connection
        self._pseudonyms = pseudonyms

    def is_erased(self, user_id: str) -> bool:
        self._conn.execute(LOCK_AGAINST_ERASURE, {"user_id": user_id})
        found = self._conn.execute(ERASED, tombstone_params(self._pseudonyms, user_id)).first()
        return found is not None


def tombstone_params(pseudonyms: Pseudonyms, user_id: str) -> dict[str, str]:
    """ERASED's parameters: keyed tombstones, and unkeyed ones written before
    pseudonyms were keyed."""
    keyed, unkeyed = pseudonyms.every_form(user_id)
    return {"keyed": keyed, "unkeyed": unkeyed}


class SqlPrivacyStore:
    """The jobs' PrivacyStore: removals on X and retention's purges, on the
    synchronous engine, each call its own transaction."""

    def __init__(self, engine: Engine, box: FernetBox, prices: PriceTable | None = None) -> None:
        self._engine = engine
        self._box = box
        self._prices = prices or PriceTable()

    def pending_removals(self, limit: int) -> list[PendingRemoval]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, x_post_id, credentials_encrypted, attempts, user_hash "
                    "FROM x_removals "
                    "WHERE done_at IS NULL ORDER BY id LIMIT :limit"
                ),
                {"limit": limit},
            ).mappings()
            removals = []
            for row in rows:
                stored = row["credentials_encrypted"]
                credentials = unseal(self._box, stored) if stored is not None else None
                removals.append(
                    PendingRemoval(
                        row["id"], row["x_post_id"], credentials, row["attempts"], row["user_hash"]
                    )
                )
            return removals

    def finish_removal(
        self,
        removal_id: int,
        now: datetime,
        error: str,
        final: bool,
        spent: Sequence[Metered] = (),
    ) -> None:
        with self._engine.begin() as connection:
            record_spend(connection, self._prices, spent)
            connection.execute(
                text(
                    "UPDATE x_removals SET attempts = attempts + 1, last_error = :error, "
                    "done_at = CASE WHEN CAST(:final AS boolean) OR attempts + 1 >= :max "
                    "THEN CAST(:now AS timestamptz) END, "
                    "credentials_encrypted = CASE WHEN CAST(:final AS boolean) "
                    "OR attempts + 1 >= :max THEN NULL ELSE credentials_encrypted END "
                    "WHERE id = :id"
                ),
                {
                    "id": removal_id,
                    "now": now,
                    "error": error[:MAX_REMOVAL_ERROR_CHARS],
                    "final": final,
                    "max": MAX_REMOVAL_ATTEMPTS,
                },
            )

    def record_spent(self, spent: Sequence[Metered]) -> None:
        with self._engine.begin() as connection:
            record_spend(connection, self._prices, spent)

    def purge(self, cutoffs: RetentionCutoffs) -> dict[str, int]:
        with self._engine.begin() as connection:
            run = connection.execute
            metrics = run(
                text("DELETE FROM post_metrics WHERE collected_at < :cutoff"),
                {"cutoff": cutoffs.metrics_before},
            ).rowcount
            dead = run(
                text("DELETE FROM posts WHERE state = 'DEAD_LETTERED' AND updated_at < :cutoff"),
                {"cutoff": cutoffs.dead_letters_before},
            ).rowcount
            removals = run(
                text("DELETE FROM x_removals WHERE done_at < :cutoff"),
                {"cutoff": cutoffs.removals_before},
            ).rowcount
            # After the dead letters: their media may have just become unattached.
            unattached = _purge_media(connection, "unattached", cutoffs.unattached_media_before)
            published = _purge_media(connection, "published", cutoffs.published_media_before)
        return {
            "metric_snapshots": metrics,
            "dead_letters": dead,
            "x_removals": removals,
            "unattached_media": unattached,
            "published_media": published,
        }


# Media uploaded before the cutoff that no post attaches.
_UNATTACHED = """
    SELECT m.id FROM media m
    WHERE m.created_at < :cutoff AND NOT EXISTS (
        SELECT 1 FROM (
            SELECT DISTINCT unnest(attachment_ids) AS id FROM posts
            WHERE attachment_ids <> '{}'
        ) a WHERE a.id = m.id
    )
"""
# Media every post of which was published before the cutoff (none still to publish).
_PUBLISHED = """
    SELECT h.id FROM (
        SELECT unnest(attachment_ids) AS id, state, published_at
        FROM posts WHERE attachment_ids <> '{}'
    ) h GROUP BY h.id
    HAVING bool_and(h.state = 'PUBLISHED' AND h.published_at < :cutoff)
"""
_LOCK = "SELECT id FROM media WHERE id IN ({}) FOR UPDATE SKIP LOCKED"
_DELETE = "DELETE FROM media WHERE id = ANY(:ids) AND id IN ({})"
# Complete statements, written once: (lock the candidates, delete those still due).
_MEDIA_PURGES = {
    "unattached": (_LOCK.format(_UNATTACHED), _DELETE.format(_UNATTACHED)),
    "published": (_LOCK.format(_PUBLISHED), _DELETE.format(_PUBLISHED)),
}


def _purge_media(connection: Connection, kind: str, cutoff: datetime) -> int:
    """Deletes the media due, except rows a transaction is attaching right now
    (share-locked by it): they are skipped. The delete looks again with a fresh
    snapshot, so a post committed after the candidates were found keeps its media."""
    lock, delete = _MEDIA_PURGES[kind]
    locked = connection.execute(text(lock), {"cutoff": cutoff}).scalars().all()
    if not locked:
        return 0
    result = connection.execute(text(delete), {"ids": list(locked), "cutoff": cutoff})
    return int(result.rowcount)
