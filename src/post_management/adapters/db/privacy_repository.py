"""PostgreSQL side of audit trails, exports, erasure and retention."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.spend_ledger import record_spend
from post_management.adapters.db.stored_credentials import unseal
from post_management.domain.errors import FailedPrecondition
from post_management.domain.post import PostState
from post_management.domain.privacy import AuditRecord, MetricsRecord, Pseudonyms
from post_management.domain.reasons import Reason
from post_management.domain.x_spend import Metered, PriceTable
from post_management.ports.privacy import (
    ErasureReport,
    PendingRemoval,
    RetentionCutoffs,
)

# Serialises an erasure against creates for the same user (shared by creates,
# exclusive for the erasure), so nothing committed after the erasure survives it.
_LOCK_KEY = "hashtextextended(:user_id, 11)"
LOCK_AGAINST_ERASURE = text(f"SELECT pg_advisory_xact_lock_shared({_LOCK_KEY})")
ERASED = text("SELECT 1 FROM erased_users WHERE user_hash IN (:keyed, :unkeyed)")
# Removals that keep failing are given up (and their tokens dropped) after this many.
MAX_REMOVAL_ATTEMPTS = 10


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


def _rekey(run: Callable[..., Any], pseudonym: str, former: list[str]) -> None:
    """Rows an earlier erasure of the same user wrote under a former pseudonym (an
    unkeyed one) move to the current one, so nothing keeps the linkable form."""
    params = {"hash": pseudonym, "former": former}
    run(text("DELETE FROM erased_users WHERE user_hash = ANY(:former)"), params)
    run(text("UPDATE x_removals SET user_hash = :hash WHERE user_hash = ANY(:former)"), params)
    run(
        text("UPDATE audit_log SET user_id = CAST(:hash AS text) WHERE user_id = ANY(:former)"),
        params,
    )
    run(
        text(
            "UPDATE audit_log SET actor = split_part(actor, ':', 1) || ':' || "
            "CAST(:hash AS text) WHERE substr(actor, strpos(actor, ':') + 1) = ANY(:former)"
        ),
        params,
    )
    for old in former:
        run(
            text(
                "UPDATE audit_log SET resource_id = :new WHERE resource_type = 'user' "
                "AND resource_id = :old"
            ),
            {"new": _user_resource(pseudonym), "old": _user_resource(old)},
        )


def _user_resource(pseudonym: str) -> uuid.UUID:
    """The resource id of an erasure's own audit row."""
    return uuid.uuid5(uuid.NAMESPACE_URL, pseudonym)


def _json(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded = json.loads(value) if isinstance(value, str) else value
    return loaded if isinstance(loaded, dict) else {"value": loaded}


class SqlPrivacyStore:
    def __init__(self, engine: Engine, box: FernetBox, prices: PriceTable | None = None) -> None:
        self._engine = engine
        self._box = box
        self._prices = prices or PriceTable()

    def audit_events(self, user_id: str, before_id: int | None, limit: int) -> list[AuditRecord]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, occurred_at, actor, action, resource_type, resource_id, "
                    "user_id, request_id, before, after FROM audit_log "
                    "WHERE user_id = :user_id AND (CAST(:before_id AS bigint) IS NULL "
                    "OR id < :before_id) ORDER BY id DESC LIMIT :limit"
                ),
                {"user_id": user_id, "before_id": before_id, "limit": limit},
            ).mappings()
            return [
                AuditRecord(
                    id=row["id"],
                    occurred_at=row["occurred_at"],
                    actor=row["actor"],
                    action=row["action"],
                    resource_type=row["resource_type"],
                    resource_id=row["resource_id"],
                    user_id=row["user_id"],
                    request_id=row["request_id"],
                    before=_json(row["before"]),
                    after=_json(row["after"]),
                )
                for row in rows
            ]

    def metrics(self, user_id: str) -> list[MetricsRecord]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT m.post_id, m.collected_at, m.impressions, m.likes, m.reposts, "
                    "m.replies, m.quotes, m.bookmarks FROM post_metrics m "
                    "JOIN posts p ON p.id = m.post_id WHERE p.user_id = :user_id "
                    "ORDER BY m.post_id, m.collected_at"
                ),
                {"user_id": user_id},
            ).mappings()
            return [MetricsRecord(**dict(row)) for row in rows]

    def erase(
        self,
        user_id: str,
        pseudonym: str,
        actor: str,
        delete_from_x: bool,
        now: datetime,
        replaces: Sequence[str] = (),
    ) -> ErasureReport:
        params: dict[str, Any] = {"user_id": user_id, "hash": pseudonym, "now": now}
        with self._engine.begin() as connection:
            run = connection.execute
            run(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"), params)
            # A post being published may still land on X after its row is gone, and
            # then nothing would queue its removal. Locking the rows keeps the
            # dispatcher (SKIP LOCKED) from claiming one meanwhile.
            states = run(
                text("SELECT state FROM posts WHERE user_id = :user_id FOR UPDATE"), params
            ).scalars()
            if PostState.PUBLISHING.value in set(states):
                raise FailedPrecondition(
                    "some of the user's posts are being published: retry in a minute",
                    reason=Reason.POSTS_BEING_PUBLISHED,
                )
            if replaces:
                _rekey(run, pseudonym, list(replaces))
            run(
                text(
                    "INSERT INTO erased_users (user_hash, erased_at) VALUES (:hash, :now) "
                    "ON CONFLICT (user_hash) DO NOTHING"
                ),
                params,
            )
            queued = 0
            if delete_from_x:
                # Every segment of a thread; the tokens go with each row until it is done.
                queued = run(
                    text(
                        """
                        INSERT INTO x_removals
                            (user_hash, x_post_id, credentials_encrypted, requested_at)
                        SELECT :hash, segment, a.credentials_encrypted, :now
                        FROM posts p JOIN accounts a ON a.id = p.account_id
                        CROSS JOIN LATERAL unnest(
                            CASE WHEN cardinality(p.segment_x_post_ids) > 0
                                 THEN p.segment_x_post_ids ELSE ARRAY[p.x_post_id] END
                        ) AS segment
                        WHERE p.user_id = :user_id AND segment <> ''
                          AND a.credentials_encrypted IS NOT NULL
                        """
                    ),
                    params,
                ).rowcount
            # Scopes are "<Method>:<user id>" and actors "<role>:<subject>": compared
            # exactly, as LIKE would read % and _ in a user id as wildcards.
            run(
                text(
                    "DELETE FROM idempotency_keys WHERE "
                    "substr(scope, strpos(scope, ':') + 1) = CAST(:user_id AS text) "
                    "OR resource_id IN (SELECT id FROM posts WHERE user_id = :user_id "
                    "UNION ALL SELECT id FROM accounts WHERE user_id = :user_id "
                    "UNION ALL SELECT id FROM media WHERE user_id = :user_id "
                    "UNION ALL SELECT id FROM campaigns WHERE user_id = :user_id)"
                ),
                params,
            )
            # Attempts, metrics and the collector's state go with their posts (cascade).
            posts = run(text("DELETE FROM posts WHERE user_id = :user_id"), params).rowcount
            media = run(text("DELETE FROM media WHERE user_id = :user_id"), params).rowcount
            accounts = run(text("DELETE FROM accounts WHERE user_id = :user_id"), params).rowcount
            run(text("DELETE FROM campaigns WHERE user_id = :user_id"), params)
            # What X cost stays countable, without the person.
            run(text("UPDATE x_spend SET user_id = :hash WHERE user_id = :user_id"), params)
            # The trail stays (who did what, when) without the person or the content.
            audited = run(
                text(
                    "UPDATE audit_log SET user_id = CAST(:hash AS text), before = NULL, "
                    "after = NULL, actor = CASE "
                    "WHEN substr(actor, strpos(actor, ':') + 1) = CAST(:user_id AS text) "
                    "THEN split_part(actor, ':', 1) || ':' || CAST(:hash AS text) ELSE actor END "
                    "WHERE user_id = CAST(:user_id AS text)"
                ),
                params,
            ).rowcount
            report = ErasureReport(posts, accounts, media, audited, queued, now)
            run(
                text(
                    "INSERT INTO audit_log (occurred_at, actor, action, resource_type, "
                    "resource_id, user_id, request_id, before, after) VALUES (:now, :actor, "
                    "'user.erase', 'user', :resource_id, :hash, '', NULL, CAST(:after AS jsonb))"
                ),
                {
                    **params,
                    "actor": actor,
                    "resource_id": _user_resource(pseudonym),
                    "after": json.dumps({**report.__dict__, "erased_at": now.isoformat()}),
                },
            )
        return report

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
                    "error": error[:2000],
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
