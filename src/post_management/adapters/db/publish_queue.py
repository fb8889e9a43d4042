"""The posts table as the publishing queue (DESIGN section 4).

Claims commit before X is called. `FOR UPDATE SKIP LOCKED` lets any number of
dispatchers share the queue; a transaction-scoped advisory lock per account and
the unique index `uq_posts_one_publishing_per_account` keep one post per account
in flight, so an unknown outcome can be matched on the account's timeline.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from post_management.adapters.db import telemetry
from post_management.domain import account_safety, events
from post_management.domain.account import AccountState, Credentials
from post_management.domain.post import PostState, Priority
from post_management.observability import tracing
from post_management.ports.publishing import Claim, Settlement
from post_management.ports.support import SecretBox

_CLAIM_COLUMNS = """
    p.id, p.attempt_id AS holder, p.attempt_count, p.account_id, p.user_id, p.text,
    p.media_ids, p.reply_to_x_post_id, p.priority, p.due_at, p.publish_started_at,
    p.unknown_cause, p.thread, p.segment_x_post_ids, p.attachment_ids,
    a.x_user_id, a.credentials_encrypted
"""

# Every priority, spelled out: with `priority IN (...)` the claim index is read as one
# short range per priority (due rows only) instead of being walked past every post
# queued for later, which cost 1.6x per claim with a million posts stored
# (docs/benchmarks.md). The order (priority, due_at) is unchanged.
_PRIORITIES = ", ".join(str(int(priority)) for priority in Priority)

# Candidates are scanned in the claim index's order; DISTINCT ON keeps the first per
# account. The advisory lock is taken per candidate row, so two dispatchers never
# claim two posts of one account in the same instant.
_CLAIM_DUE = text(
    f"""
    WITH candidates AS (
        SELECT p.id, p.account_id, p.priority, p.due_at
        FROM posts p
        JOIN accounts a ON a.id = p.account_id
        WHERE p.state = 'SCHEDULED' AND p.priority IN ({_PRIORITIES}) AND p.due_at <= :now
          AND a.state = 'ACTIVE'
          AND (a.rate_limited_until IS NULL OR a.rate_limited_until <= :now)
          AND NOT EXISTS (
              SELECT 1 FROM posts q WHERE q.account_id = p.account_id AND q.state = 'PUBLISHING'
          )
        ORDER BY p.priority, p.due_at
        LIMIT :scan
        FOR UPDATE OF p SKIP LOCKED
    ), firsts AS (
        SELECT DISTINCT ON (account_id) id, priority, due_at
        FROM candidates
        WHERE pg_try_advisory_xact_lock(hashtextextended(account_id::text, 7))
        ORDER BY account_id, priority, due_at
    ), chosen AS (
        SELECT id FROM firsts ORDER BY priority, due_at LIMIT :limit
    )
    UPDATE posts p SET
        state = 'PUBLISHING', attempt_id = gen_random_uuid(),
        attempt_count = p.attempt_count + 1, lease_expires_at = :lease_until,
        publish_started_at = :now, reconcile_after = NULL, unknown_cause = '',
        version = p.version + 1, updated_at = :now
    FROM chosen, accounts a
    WHERE p.id = chosen.id AND a.id = p.account_id
    RETURNING {_CLAIM_COLUMNS}
    """  # noqa: S608 - only constants (columns, priorities) are interpolated
)

_CLAIM_ONE = text(
    f"""
    UPDATE posts p SET
        state = 'PUBLISHING', attempt_id = gen_random_uuid(),
        attempt_count = p.attempt_count + 1, lease_expires_at = :lease_until,
        publish_started_at = :now, reconcile_after = NULL, unknown_cause = '',
        version = p.version + 1, updated_at = :now
    FROM accounts a
    WHERE p.id = :post_id AND a.id = p.account_id
      AND p.state = 'SCHEDULED' AND p.due_at <= :now AND a.state = 'ACTIVE'
      AND (a.rate_limited_until IS NULL OR a.rate_limited_until <= :now)
      AND pg_try_advisory_xact_lock(hashtextextended(p.account_id::text, 7))
    RETURNING {_CLAIM_COLUMNS}
    """  # noqa: S608 - only the constant column list is interpolated
)

_CLAIM_RECONCILE = text(
    f"""
    WITH stuck AS (
        SELECT p.id FROM posts p
        WHERE p.state = 'PUBLISHING'
          AND (p.reconcile_after <= :now
               OR (p.reconcile_after IS NULL AND p.lease_expires_at <= :now))
        ORDER BY p.publish_started_at
        LIMIT :limit
        FOR UPDATE OF p SKIP LOCKED
    )
    UPDATE posts p SET
        attempt_id = gen_random_uuid(), lease_expires_at = :lease_until,
        reconcile_after = NULL,
        unknown_cause = CASE WHEN p.unknown_cause = '' THEN 'lease_expired'
                             ELSE p.unknown_cause END,
        updated_at = :now
    FROM stuck, accounts a
    WHERE p.id = stuck.id AND a.id = p.account_id
    RETURNING {_CLAIM_COLUMNS}
    """  # noqa: S608 - only the constant column list is interpolated
)

_INSERT_ATTEMPT = text(
    """
    INSERT INTO post_attempts (post_id, attempt_id, number, started_at)
    VALUES (:post_id, :attempt_id, :number, :started_at)
    ON CONFLICT (attempt_id) DO NOTHING
    """
)


class SqlPublishQueue:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Claim]:
        params = {"now": now, "limit": limit, "scan": limit * 4, "lease_until": now + lease}
        return self._claim(_CLAIM_DUE, params, record_attempts=True)

    def claim_post(self, post_id: UUID, now: datetime, lease: timedelta) -> Claim | None:
        params = {"now": now, "post_id": post_id, "lease_until": now + lease}
        claims = self._claim(_CLAIM_ONE, params, record_attempts=True)
        return claims[0] if claims else None

    def claim_for_reconcile(self, now: datetime, limit: int, lease: timedelta) -> list[Claim]:
        params = {"now": now, "limit": limit, "lease_until": now + lease}
        return self._claim(_CLAIM_RECONCILE, params, record_attempts=False)

    def _claim(
        self, statement: Any, params: dict[str, Any], *, record_attempts: bool
    ) -> list[Claim]:
        try:
            with self._engine.begin() as connection:
                rows = connection.execute(statement, params).mappings().all()
                claims = [self._to_claim(row) for row in rows]
                if record_attempts and claims:
                    connection.execute(
                        _INSERT_ATTEMPT,
                        [
                            {
                                "post_id": c.post_id,
                                "attempt_id": c.holder,
                                "number": c.attempt_number,
                                "started_at": c.started_at,
                            }
                            for c in claims
                        ],
                    )
        except IntegrityError:
            # Another dispatcher claimed a post of the same account in the same
            # instant; the unique index refused ours. The next tick tries again.
            return []
        return claims

    def _to_claim(self, row: Any) -> Claim:
        credentials = None
        if row["credentials_encrypted"] is not None:
            data = json.loads(self._box.decrypt(bytes(row["credentials_encrypted"])))
            credentials = Credentials(data["access_token"], data["access_token_secret"])
        return Claim(
            post_id=row["id"],
            holder=row["holder"],
            attempt_number=row["attempt_count"],
            account_id=row["account_id"],
            user_id=row["user_id"],
            x_user_id=row["x_user_id"],
            text=row["text"],
            media_ids=tuple(row["media_ids"]),
            reply_to_x_post_id=row["reply_to_x_post_id"],
            priority=Priority(row["priority"]),
            due_at=row["due_at"],
            started_at=row["publish_started_at"],
            credentials=credentials,
            unknown_cause=row["unknown_cause"],
            thread=tuple(row["thread"]),
            segment_x_post_ids=tuple(row["segment_x_post_ids"]),
            attachment_ids=tuple(row["attachment_ids"]),
        )

    def extend(self, claim: Claim, until: datetime) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                text(
                    "UPDATE posts SET reconcile_after = :until, lease_expires_at = :until "
                    "WHERE id = :id AND attempt_id = :holder AND state = 'PUBLISHING'"
                ),
                {"until": until, "id": claim.post_id, "holder": claim.holder},
            )
            return result.rowcount == 1

    def record_segment(
        self, claim: Claim, index: int, x_post_id: str, now: datetime, lease_until: datetime
    ) -> bool:
        # The cardinality guard makes a replayed or out-of-order record a no-op. The
        # lease (and reconcile_after, when an earlier extend set it) moves forward only.
        with self._engine.begin() as connection:
            result = connection.execute(
                text(
                    """
                    UPDATE posts SET
                        segment_x_post_ids = array_append(
                            segment_x_post_ids, CAST(:x_post_id AS varchar(32))),
                        lease_expires_at = GREATEST(lease_expires_at, :lease_until),
                        reconcile_after = CASE WHEN reconcile_after IS NOT NULL
                            THEN GREATEST(reconcile_after, :lease_until) END,
                        version = version + 1, updated_at = :now
                    WHERE id = :id AND attempt_id = :holder AND state = 'PUBLISHING'
                      AND cardinality(segment_x_post_ids) = :index
                    """
                ),
                {
                    "x_post_id": x_post_id,
                    "lease_until": lease_until,
                    "now": now,
                    "id": claim.post_id,
                    "holder": claim.holder,
                    "index": index,
                },
            )
            return result.rowcount == 1

    def settle(self, claim: Claim, settlement: Settlement, now: datetime) -> bool:
        with self._engine.begin() as connection:
            # Account row first, then the post: the order scheduling takes them in,
            # so a settlement and a SchedulePost can never deadlock.
            connection.execute(
                text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE"),
                {"id": claim.account_id},
            )
            if not self._update_post(connection, claim, settlement, now):
                return False
            # The newest row of this attempt number: numbers repeat after a requeue.
            connection.execute(
                text(
                    "UPDATE post_attempts SET finished_at = :now, outcome = :outcome, "
                    "detail = :detail, x_post_id = :x_post_id "
                    "WHERE id = (SELECT max(id) FROM post_attempts "
                    "WHERE post_id = :post_id AND number = :number)"
                ),
                {
                    "now": now,
                    "outcome": settlement.outcome,
                    "detail": settlement.detail[:2000],
                    "x_post_id": settlement.x_post_id,
                    "post_id": claim.post_id,
                    "number": claim.attempt_number,
                },
            )
            self._update_account(connection, claim, settlement)
            added = (*settlement.events, *_failure_streak(connection, claim, settlement, now))
            _add_events(connection, added)
        telemetry.committed(added)
        return True

    @staticmethod
    def _update_post(
        connection: Connection, claim: Claim, settlement: Settlement, now: datetime
    ) -> bool:
        publishing = settlement.state is PostState.PUBLISHING
        result = connection.execute(
            text(
                """
                UPDATE posts SET
                    state = :state,
                    x_post_id = CASE WHEN :x_post_id = '' THEN x_post_id ELSE :x_post_id END,
                    published_at = COALESCE(CAST(:published_at AS timestamptz), published_at),
                    due_at = COALESCE(CAST(:due_at AS timestamptz), due_at),
                    last_error = :detail,
                    attempt_count = attempt_count - :refund,
                    attempt_id = CASE WHEN CAST(:publishing AS boolean) THEN attempt_id END,
                    lease_expires_at = CAST(:reconcile_after AS timestamptz),
                    reconcile_after = CAST(:reconcile_after AS timestamptz),
                    unknown_cause = :unknown_cause,
                    version = version + 1, updated_at = :now
                WHERE id = :id AND attempt_id = :holder AND state = 'PUBLISHING'
                """
            ),
            {
                "state": settlement.state.value,
                "x_post_id": settlement.x_post_id,
                "published_at": settlement.published_at,
                "due_at": settlement.due_at,
                "detail": settlement.detail[:2000],
                "refund": 1 if settlement.refund_attempt else 0,
                "publishing": publishing,
                "reconcile_after": settlement.reconcile_after if publishing else None,
                "unknown_cause": settlement.unknown_cause if publishing else "",
                "now": now,
                "id": claim.post_id,
                "holder": claim.holder,
            },
        )
        return result.rowcount == 1

    @staticmethod
    def _update_account(connection: Connection, claim: Claim, settlement: Settlement) -> None:
        if settlement.account_state is not None:
            connection.execute(
                text("UPDATE accounts SET state = :state, version = version + 1 WHERE id = :id"),
                {"state": settlement.account_state.value, "id": claim.account_id},
            )
        if settlement.account_rate_limited_until is not None:
            connection.execute(
                text(
                    "UPDATE accounts SET rate_limited_until = GREATEST("
                    "COALESCE(rate_limited_until, :until), :until) WHERE id = :id"
                ),
                {"until": settlement.account_rate_limited_until, "id": claim.account_id},
            )


def _failure_streak(
    connection: Connection, claim: Claim, settlement: Settlement, now: datetime
) -> tuple[events.DomainEvent, ...]:
    """Count final failures per account in the settlement's transaction; pause the
    account's queue at the limit (domain.account_safety) and say why."""
    previous = connection.execute(
        text("SELECT consecutive_failures FROM accounts WHERE id = :id FOR UPDATE"),
        {"id": claim.account_id},
    ).scalar_one_or_none()
    if previous is None:
        return ()
    streak = account_safety.after_settlement(previous, settlement.state)
    if streak is None:
        return ()
    if not streak.pause:
        connection.execute(
            text("UPDATE accounts SET consecutive_failures = :count WHERE id = :id"),
            {"count": streak.count, "id": claim.account_id},
        )
        return ()
    # The count restarts so that a resumed account gets a full streak again.
    paused = connection.execute(
        text(
            "UPDATE accounts SET consecutive_failures = 0, state = :paused, "
            "version = version + 1, updated_at = :now WHERE id = :id AND state = :active"
        ),
        {
            "paused": AccountState.PAUSED.value,
            "active": AccountState.ACTIVE.value,
            "now": now,
            "id": claim.account_id,
        },
    )
    if paused.rowcount != 1:
        return ()
    return (
        events.account_suspended(
            account_id=claim.account_id,
            user_id=claim.user_id,
            x_user_id=claim.x_user_id,
            reason=streak.reason,
            affected_posts=streak.count,
            occurred_at=now,
        ),
    )


def _add_events(connection: Connection, added: Sequence[events.DomainEvent]) -> None:
    # Trace context and correlation id, forwarded to Kafka by the relay.
    headers = json.dumps(tracing.outbox_headers())
    rows: Sequence[dict[str, Any]] = [
        {
            "event_id": event.event_id or uuid.uuid4(),
            "event_type": event.event_type,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "payload": json.dumps(event.payload),
            "headers": headers,
            "occurred_at": event.occurred_at,
        }
        for event in added
    ]
    if rows:
        connection.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, "
                "payload, headers, occurred_at) VALUES (:event_id, :event_type, :aggregate_type, "
                ":aggregate_id, CAST(:payload AS jsonb), CAST(:headers AS jsonb), :occurred_at)"
            ),
            rows,
        )
