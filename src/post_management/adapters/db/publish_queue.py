"""The posts table as the publishing queue (docs/reliability.md).

Claims commit before X is called. `FOR UPDATE SKIP LOCKED` lets any number of
dispatchers share the queue; a transaction-scoped advisory lock per account and
the unique index `uq_posts_one_publishing_per_account` keep one post per account
in flight, so an unknown outcome can be matched on the account's timeline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.exc import IntegrityError

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db import telemetry
from post_management.adapters.db.clock import NOW_SQL
from post_management.adapters.db.engine_audit import audit_settlements
from post_management.adapters.db.outbox import write_events
from post_management.adapters.db.spend_ledger import record_spend
from post_management.adapters.db.stored_credentials import unseal
from post_management.domain import events
from post_management.domain.account import AccountState, Credentials
from post_management.domain.post import PostState, Priority
from post_management.domain.publishing import Claim, Settlement, failure_streak
from post_management.domain.x_spend import PriceTable
from post_management.observability import crash_points
from post_management.ports.publishing import XPostIdTaken, settle_each

log = logging.getLogger(__name__)


def _sql(statement: str) -> TextClause:
    """A statement on the database's clock (adapters/db/clock.py): every now() in it
    is the engine's one clock."""
    return text(statement.replace("now()", NOW_SQL))


_CLAIM_COLUMNS = """
    p.id, p.attempt_id AS holder, p.attempt_count, p.account_id, p.user_id, p.text,
    p.media_ids, p.reply_to_x_post_id, p.priority, p.due_at, p.publish_started_at,
    p.unknown_cause, p.thread, p.segment_x_post_ids, p.attachment_ids,
    a.x_user_id, a.credentials_encrypted, now() AS claimed_at
"""

# Every priority, spelled out: with `priority IN (...)` the claim index is read as one
# short range per priority (due rows only) instead of being walked past every post
# queued for later, which cost 1.6x per claim with a million posts stored
# (docs/benchmarks.md). The order (priority, due_at) is unchanged.
_PRIORITIES = ", ".join(str(int(priority)) for priority in Priority)

# An account whose X budget held a post back this UTC month waits for the month to
# turn or the budget to change (docs/x-spend.md).
_THIS_MONTH = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')"
# The account `a` may publish now: active, past X's rate limit and its budget's month.
# Every claim holds it (the due heads, the queue's front and one post).
_ACCOUNT_MAY_PUBLISH = f"""a.state = 'ACTIVE'
          AND (a.rate_limited_until IS NULL OR a.rate_limited_until <= now())
          AND a.x_budget_reached_month IS DISTINCT FROM {_THIS_MONTH}"""


def _none_publishing(account_id: str) -> str:
    """No post of the account (`account_id`, a column) is in flight: one at a time."""
    return f"""NOT EXISTS (
              SELECT 1 FROM posts q WHERE q.account_id = {account_id} AND q.state = 'PUBLISHING'
          )"""  # noqa: S608 - a column name of these statements


# A claim starts a new attempt on post `p`: a new holder token, lease and attempt number.
_START_ATTEMPT = """state = 'PUBLISHING', attempt_id = gen_random_uuid(),
            attempt_count = p.attempt_count + 1,
            lease_expires_at = now() + CAST(:lease AS interval),
            publish_started_at = now(), reconcile_after = NULL, unknown_cause = '',
            version = p.version + 1, updated_at = now()"""

# Each new claim's attempt row, in the claim's own statement: the send noted later
# always finds its row.
_ATTEMPTS = """attempts AS (
        INSERT INTO post_attempts (post_id, attempt_id, number, started_at)
        SELECT id, holder, attempt_count, publish_started_at FROM claimed
        ON CONFLICT (attempt_id) DO NOTHING
    )"""

# Fair: each account's first due post (priority, then due time) is its only
# candidate, and the limit applies to those heads, so one account's backlog cannot
# fill a claim. `due` reads only the due range of the partial claim index. Rows are
# locked after the choice (SKIP LOCKED: another dispatcher has them) and re-checked.
# The advisory lock per account (keeps claim_post from racing a claim of the same
# account) is taken in its own materialized step, so only chosen rows take it.
# Due times and leases are the database's now(): a worker's own clock never decides.
_CLAIM_STEPS = f"""
    heads AS (
        SELECT DISTINCT ON (account_id) id, account_id, priority, due_at
        FROM due
        ORDER BY account_id, priority, due_at
    ), chosen AS MATERIALIZED (
        SELECT p.id, p.account_id
        FROM heads h
        JOIN posts p ON p.id = h.id
        JOIN accounts a ON a.id = h.account_id
        WHERE p.state = 'SCHEDULED' AND {_ACCOUNT_MAY_PUBLISH}
          AND {_none_publishing("h.account_id")}
        ORDER BY h.priority, h.due_at
        LIMIT :limit
        FOR UPDATE OF p SKIP LOCKED
    ), locked AS MATERIALIZED (
        SELECT id FROM chosen
        WHERE pg_try_advisory_xact_lock(hashtextextended(account_id::text, 7))
    ), claimed AS (
        UPDATE posts p SET
            {_START_ATTEMPT}
        FROM locked, accounts a
        WHERE p.id = locked.id AND a.id = p.account_id
        RETURNING {_CLAIM_COLUMNS}
    ), {_ATTEMPTS}"""  # noqa: S608 - only constants are interpolated

_CLAIM_DUE = _sql(
    f"""
    WITH due AS (
        SELECT p.id, p.account_id, p.priority, p.due_at
        FROM posts p
        WHERE p.state = 'SCHEDULED' AND p.priority IN ({_PRIORITIES}) AND p.due_at <= now()
    ), {_CLAIM_STEPS}
    SELECT * FROM claimed
    """  # noqa: S608 - only constants are interpolated
)

# The same claim over the queue's front only: the first `:window` due posts, in claim
# order, of the accounts that may publish now (active, not rate-limited or held by
# their budget, none of their posts publishing), read as that many rows of the claim
# index per priority (the account is looked up per row, in a subquery the planner
# cannot turn into a scan of accounts). Leaving out whole accounts keeps the prefix's
# heads exactly the first heads of those accounts, so when they fill the claim it is
# the claim above at a cost set by the window, not by the backlog (a burst of 10,000
# due posts made each claim sort all 10,000: 40 ms of the database's CPU). The
# window's size comes back on every row, and alone when nothing was claimed: a full
# window that still left the claim short (rows locked by another dispatcher) is
# followed by the claim above, which goes on past it (docs/reliability.md).
FRONT_WINDOW_PER_CLAIM = 4
FRONT_WINDOW_MIN = 100
_FRONT = " UNION ALL ".join(
    f"""(SELECT p.id, p.account_id, p.priority, p.due_at FROM posts p
        WHERE p.state = 'SCHEDULED' AND p.priority = {int(priority)} AND p.due_at <= now()
          AND (SELECT {_ACCOUNT_MAY_PUBLISH} FROM accounts a WHERE a.id = p.account_id)
          AND {_none_publishing("p.account_id")}
        ORDER BY p.due_at LIMIT :window)"""  # noqa: S608 - a constant priority
    for priority in sorted(Priority)
)
_CLAIM_FRONT = _sql(
    f"""
    WITH due AS MATERIALIZED (
        SELECT * FROM ({_FRONT}) AS front ORDER BY priority, due_at LIMIT :window
    ), {_CLAIM_STEPS}
    SELECT claimed.*, w.front_rows
    FROM (SELECT count(*) AS front_rows FROM due) AS w LEFT JOIN claimed ON true
    """  # noqa: S608 - only constants are interpolated
)

_CLAIM_ONE = _sql(
    f"""
    WITH claimed AS (
        UPDATE posts p SET
            {_START_ATTEMPT}
        FROM accounts a
        WHERE p.id = :post_id AND a.id = p.account_id
          AND p.state = 'SCHEDULED' AND p.due_at <= now() AND {_ACCOUNT_MAY_PUBLISH}
          AND pg_try_advisory_xact_lock(hashtextextended(p.account_id::text, 7))
        RETURNING {_CLAIM_COLUMNS}
    ), {_ATTEMPTS}
    SELECT * FROM claimed
    """  # noqa: S608 - only constants are interpolated
)

# What the reconciler needs besides: the attempt in doubt (the post's newest: its
# send, media and end), the first attempt's send, and an X id already known for the
# next unrecorded segment.
_RECONCILE_COLUMNS = """
    (SELECT pa.sent_at FROM post_attempts pa WHERE pa.post_id = p.id
     ORDER BY pa.id DESC LIMIT 1) AS sent_at,
    (SELECT pa.finished_at FROM post_attempts pa WHERE pa.post_id = p.id
     ORDER BY pa.id DESC LIMIT 1) AS gave_up_at,
    (SELECT pa.x_media_ids FROM post_attempts pa WHERE pa.post_id = p.id
     ORDER BY pa.id DESC LIMIT 1) AS sent_media_ids,
    (SELECT min(COALESCE(pa.sent_at, pa.started_at)) FROM post_attempts pa
     WHERE pa.post_id = p.id) AS first_sent_at,
    (SELECT k.x_post_id FROM post_x_ids k
     WHERE k.post_id = p.id AND k.account_id = p.account_id
       AND k.segment_index = cardinality(p.segment_x_post_ids)
     ORDER BY k.recorded_at LIMIT 1) AS known_x_post_id
"""

_CLAIM_RECONCILE = _sql(
    f"""
    WITH stuck AS (
        SELECT p.id FROM posts p
        WHERE p.state = 'PUBLISHING'
          AND (p.reconcile_after <= now()
               OR (p.reconcile_after IS NULL AND p.lease_expires_at <= now()))
        ORDER BY p.publish_started_at
        LIMIT :limit
        FOR UPDATE OF p SKIP LOCKED
    )
    UPDATE posts p SET
        attempt_id = gen_random_uuid(), lease_expires_at = now() + CAST(:lease AS interval),
        reconcile_after = NULL,
        unknown_cause = CASE WHEN p.unknown_cause = '' THEN 'lease_expired'
                             ELSE p.unknown_cause END,
        updated_at = now()
    FROM stuck, accounts a
    WHERE p.id = stuck.id AND a.id = p.account_id
    RETURNING {_CLAIM_COLUMNS}, {_RECONCILE_COLUMNS}
    """  # noqa: S608 - only the constant column lists are interpolated
)

# A claimed row that cannot even be read: it leaves the queue with the reason
# instead of failing the claim of every other row (only while this claim holds it).
_FAIL_UNREADABLE = _sql(
    """
    UPDATE posts SET state = 'FAILED', attempt_id = NULL, lease_expires_at = NULL,
        reconcile_after = NULL, last_error = :reason, version = version + 1,
        updated_at = now()
    WHERE id = :id AND attempt_id = :holder
    """
)
_LOOK_AGAIN_UNREADABLE = _sql(
    """
    UPDATE posts SET reconcile_after = now() + interval '5 minutes',
        lease_expires_at = now() + interval '5 minutes', last_error = :reason,
        updated_at = now()
    WHERE id = :id AND attempt_id = :holder
    """
)


# The statements of many posts at once take their rows as one JSON document (`:rows`,
# a list of objects): one text to pass instead of an array per column, each element of
# which the driver would escape on its own.

# The send noted before each create-post call, for many claims in one statement: the
# lease renewed where the holder still holds the post, then its attempt's send time
# (and X media ids; null keeps those noted).
_SENDING_MANY = _sql(
    """
    WITH v AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                      AS v(id uuid, holder uuid, media jsonb)
    ), renewed AS (
        UPDATE posts p
        SET lease_expires_at = GREATEST(p.lease_expires_at, now() + CAST(:lease AS interval))
        FROM v
        WHERE p.id = v.id AND p.attempt_id = v.holder AND p.state = 'PUBLISHING'
        RETURNING p.id, p.attempt_id
    ), noted AS (
        UPDATE post_attempts pa SET sent_at = now(),
            x_media_ids = CASE WHEN v.media IS NULL OR jsonb_typeof(v.media) = 'null'
                THEN pa.x_media_ids
                ELSE CAST(ARRAY(SELECT jsonb_array_elements_text(v.media)) AS varchar(32)[]) END
        FROM renewed r JOIN v ON v.id = r.id
        WHERE pa.attempt_id = r.attempt_id
    )
    SELECT id FROM renewed
    """
)

_LOCK_ACCOUNTS = _sql(
    "SELECT id, consecutive_failures, state FROM accounts WHERE id = ANY(:ids) "
    "ORDER BY id FOR UPDATE"
)

# Intervals in seconds (null: none).
_UPDATE_POSTS = _sql(
    """
    UPDATE posts p SET
        state = v.state,
        x_post_id = CASE WHEN v.x_post_id = '' THEN p.x_post_id ELSE v.x_post_id END,
        published_at = COALESCE(v.published_at, p.published_at),
        due_at = COALESCE(now() + v.due_in * interval '1 second', p.due_at),
        last_error = v.detail,
        attempt_count = p.attempt_count - v.refund,
        attempt_id = CASE WHEN v.publishing THEN p.attempt_id END,
        lease_expires_at = now() + v.reconcile_in * interval '1 second',
        reconcile_after = now() + v.reconcile_in * interval '1 second',
        unknown_cause = v.unknown_cause,
        version = p.version + 1, updated_at = now()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
        id uuid, holder uuid, state text, x_post_id text, published_at timestamptz,
        due_in float8, detail text, refund int, publishing boolean, reconcile_in float8,
        unknown_cause text)
    WHERE p.id = v.id AND p.attempt_id = v.holder AND p.state = 'PUBLISHING'
    RETURNING p.id
    """
)

# The newest row of each attempt number: numbers repeat after a requeue.
_FINISH_ATTEMPTS = _sql(
    """
    UPDATE post_attempts pa SET finished_at = now(), outcome = v.outcome, detail = v.detail,
        x_post_id = v.x_post_id
    FROM (
        SELECT u.*, (SELECT max(a.id) FROM post_attempts a
                     WHERE a.post_id = u.post_id AND a.number = u.number) AS row_id
        FROM jsonb_to_recordset(CAST(:rows AS jsonb))
             AS u(post_id uuid, number int, outcome text, detail text, x_post_id text)
    ) v
    WHERE pa.id = v.row_id
    """
)

# Each id stored for its post and segment unless the account stores it already; then
# every id's owner, so the caller can refuse one that belongs to another post.
_STORE_X_IDS = _sql(
    """
    WITH v AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
             AS v(account_id uuid, x_post_id text, post_id uuid, segment_index int)
    ), stored AS (
        INSERT INTO post_x_ids (account_id, x_post_id, post_id, segment_index, recorded_at)
        SELECT account_id, x_post_id, post_id, segment_index, now() FROM v
        ON CONFLICT DO NOTHING
        RETURNING account_id, x_post_id, post_id, segment_index
    )
    SELECT account_id, x_post_id, post_id, segment_index FROM stored
    UNION ALL
    SELECT k.account_id, k.x_post_id, k.post_id, k.segment_index
    FROM post_x_ids k JOIN v ON k.account_id = v.account_id AND k.x_post_id = v.x_post_id
    """
)

_SET_FAILURES = _sql(
    """
    UPDATE accounts a SET consecutive_failures = v.count
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id uuid, count int)
    WHERE a.id = v.id
    """
)


def _rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as the JSON document the statements above read."""
    return json.dumps(rows)


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _rows_of(
    statement: TextClause, params: dict[str, Any]
) -> Callable[[Connection], Sequence[Any]]:
    return lambda connection: connection.execute(statement, params).mappings().all()


class SqlPublishQueue:
    def __init__(self, engine: Engine, box: FernetBox, prices: PriceTable | None = None) -> None:
        self._engine = engine
        self._box = box
        self._prices = prices or PriceTable()

    def claim_due(self, limit: int, lease: timedelta) -> list[Claim]:
        def due_rows(connection: Connection) -> list[Any]:
            window = max(FRONT_WINDOW_MIN, FRONT_WINDOW_PER_CLAIM * limit)
            params = {"limit": limit, "lease": lease, "window": window}
            front = connection.execute(_CLAIM_FRONT, params).mappings().all()
            rows = [row for row in front if row["id"] is not None]
            if len(rows) < limit and front[0]["front_rows"] == window:
                # The front was full and left the claim short: go on past it.
                params = {"limit": limit - len(rows), "lease": lease}
                rows += connection.execute(_CLAIM_DUE, params).mappings().all()
            return rows

        return self._claim(due_rows, dispatching=True)

    def claim_post(self, post_id: UUID, lease: timedelta) -> Claim | None:
        params = {"post_id": post_id, "lease": lease}
        claims = self._claim(_rows_of(_CLAIM_ONE, params), dispatching=True)
        return claims[0] if claims else None

    def claim_for_reconcile(self, limit: int, lease: timedelta) -> list[Claim]:
        params = {"limit": limit, "lease": lease}
        return self._claim(_rows_of(_CLAIM_RECONCILE, params), dispatching=False)

    def _claim(
        self, claimed_rows: Callable[[Connection], Sequence[Any]], *, dispatching: bool
    ) -> list[Claim]:
        try:
            with self._engine.begin() as connection:
                claims = []
                for row in claimed_rows(connection):
                    claim = self._readable_claim(connection, row, dispatching=dispatching)
                    if claim is not None:
                        claims.append(claim)
        except IntegrityError:
            # Another dispatcher claimed a post of the same account in the same
            # instant; the unique index refused ours. The next tick tries again.
            return []
        return claims

    def _readable_claim(
        self, connection: Connection, row: Any, *, dispatching: bool
    ) -> Claim | None:
        """The row as a Claim; a row that cannot be read is taken out of this claim on
        its own (failed when newly claimed, looked at again later when its outcome is
        unknown), so one bad row never stops the others."""
        try:
            return self._to_claim(row)
        except Exception as exc:
            reason = f"the stored post could not be read: {type(exc).__name__}"
            log.error("post %s: %s", row["id"], reason)
            statement = _FAIL_UNREADABLE if dispatching else _LOOK_AGAIN_UNREADABLE
            connection.execute(
                statement, {"id": row["id"], "holder": row["holder"], "reason": reason}
            )
            return None

    def _to_claim(self, row: Any) -> Claim:
        credentials, problem = self._credentials(row["credentials_encrypted"])
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
            claimed_at=row["claimed_at"],
            credentials_problem=problem,
            sent_at=row.get("sent_at"),
            sent_media_ids=tuple(row.get("sent_media_ids") or ()),
            first_sent_at=row.get("first_sent_at"),
            gave_up_at=row.get("gave_up_at"),
            known_x_post_id=row.get("known_x_post_id") or "",
        )

    def _credentials(self, stored: bytes | None) -> tuple[Credentials | None, str]:
        if stored is None:
            return None, ""
        try:
            return unseal(self._box, stored), ""
        except (ValueError, KeyError, TypeError) as exc:
            # InvalidKeys is a ValueError: a key was removed while still in use.
            return None, f"the stored X credentials cannot be read ({type(exc).__name__})"

    def renew(self, claim: Claim, lease: timedelta) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                _sql(
                    "UPDATE posts SET lease_expires_at = GREATEST(lease_expires_at, "
                    "now() + CAST(:lease AS interval)) "
                    "WHERE id = :id AND attempt_id = :holder AND state = 'PUBLISHING'"
                ),
                {"lease": lease, "id": claim.post_id, "holder": claim.holder},
            )
            return result.rowcount == 1

    def sending(
        self, claim: Claim, lease: timedelta, x_media_ids: Sequence[str] | None = None
    ) -> bool:
        with self._engine.begin() as connection:
            renewed = connection.execute(
                _sql(
                    "UPDATE posts SET lease_expires_at = GREATEST(lease_expires_at, "
                    "now() + CAST(:lease AS interval)) "
                    "WHERE id = :id AND attempt_id = :holder AND state = 'PUBLISHING'"
                ),
                {"lease": lease, "id": claim.post_id, "holder": claim.holder},
            )
            if renewed.rowcount != 1:
                return False
            connection.execute(
                _sql(
                    "UPDATE post_attempts SET sent_at = now(), "
                    "x_media_ids = COALESCE(CAST(:media AS varchar(32)[]), x_media_ids) "
                    "WHERE attempt_id = :holder"
                ),
                {
                    "media": list(x_media_ids) if x_media_ids is not None else None,
                    "holder": claim.holder,
                },
            )
            return True

    def sending_many(
        self, items: Sequence[tuple[Claim, Sequence[str] | None]], lease: timedelta
    ) -> list[bool]:
        if not items:
            return []
        rows = [
            {
                "id": str(claim.post_id),
                "holder": str(claim.holder),
                "media": None if media is None else list(media),
            }
            for claim, media in items
        ]
        with self._engine.begin() as connection:
            held = {
                row[0]
                for row in connection.execute(_SENDING_MANY, {"rows": _rows(rows), "lease": lease})
            }
        return [claim.post_id in held for claim, _ in items]

    def record_answer(self, claim: Claim, index: int, x_post_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                _sql(
                    "INSERT INTO post_x_ids "
                    "(account_id, x_post_id, post_id, segment_index, recorded_at) "
                    "VALUES (:account_id, :x_post_id, :post_id, :index, now()) "
                    "ON CONFLICT DO NOTHING"
                ),
                {
                    "account_id": claim.account_id,
                    "x_post_id": x_post_id,
                    "post_id": claim.post_id,
                    "index": index,
                },
            )

    def stored_x_post_ids(self, account_id: UUID, x_post_ids: Sequence[str]) -> set[str]:
        if not x_post_ids:
            return set()
        with self._engine.connect() as connection:
            rows = connection.execute(
                _sql(
                    "SELECT x_post_id FROM post_x_ids "
                    "WHERE account_id = :account_id AND x_post_id = ANY(:ids)"
                ),
                {"account_id": account_id, "ids": list(x_post_ids)},
            ).all()
        return {row[0] for row in rows}

    def look_again(
        self,
        claim: Claim,
        after: timedelta,
        not_before: datetime | None = None,
        reason: str = "",
    ) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                _sql(
                    "UPDATE posts SET reconcile_after = GREATEST("
                    "now() + CAST(:after AS interval), "
                    "COALESCE(CAST(:not_before AS timestamptz), '-infinity')), "
                    "lease_expires_at = GREATEST(now() + CAST(:after AS interval), "
                    "COALESCE(CAST(:not_before AS timestamptz), '-infinity')), "
                    "last_error = CASE WHEN :reason = '' THEN last_error ELSE :reason END "
                    "WHERE id = :id AND attempt_id = :holder AND state = 'PUBLISHING'"
                ),
                {
                    "after": after,
                    "not_before": not_before,
                    "reason": reason[:2000],
                    "id": claim.post_id,
                    "holder": claim.holder,
                },
            )
            return result.rowcount == 1

    def record_segment(self, claim: Claim, index: int, x_post_id: str, lease: timedelta) -> bool:
        # The cardinality guard makes a replayed or out-of-order record a no-op. The
        # lease (and reconcile_after, when an earlier look_again set it) moves forward only.
        with self._engine.begin() as connection:
            result = connection.execute(
                _sql(
                    """
                    UPDATE posts SET
                        segment_x_post_ids = array_append(
                            segment_x_post_ids, CAST(:x_post_id AS varchar(32))),
                        lease_expires_at = GREATEST(
                            lease_expires_at, now() + CAST(:lease AS interval)),
                        reconcile_after = CASE WHEN reconcile_after IS NOT NULL
                            THEN GREATEST(reconcile_after, now() + CAST(:lease AS interval))
                            END,
                        version = version + 1, updated_at = now()
                    WHERE id = :id AND attempt_id = :holder AND state = 'PUBLISHING'
                      AND cardinality(segment_x_post_ids) = :index
                    """
                ),
                {
                    "x_post_id": x_post_id,
                    "lease": lease,
                    "id": claim.post_id,
                    "holder": claim.holder,
                    "index": index,
                },
            )
            if result.rowcount != 1:
                return False
            _store_x_post_id(connection, claim, index, x_post_id)
            return True

    def settle(self, claim: Claim, settlement: Settlement) -> bool:
        with self._engine.begin() as connection:
            applied, added = self._settle_in(connection, [(claim, settlement)])
        telemetry.committed(added)
        return applied[0]

    def settle_many(self, items: Sequence[tuple[Claim, Settlement]]) -> list[bool | Exception]:
        if not items:
            return []
        if len({claim.account_id for claim, _ in items}) == len(items):
            with self._engine.connect() as connection:
                transaction = connection.begin()
                try:
                    applied, added = self._settle_in(connection, items)
                except Exception:
                    # Before the commit: nothing of the batch is applied.
                    transaction.rollback()
                    log.warning("a batch of %d settlements failed; settling each alone", len(items))
                else:
                    transaction.commit()  # a failure here raises for every item
                    telemetry.committed(added)
                    return list(applied)
        # Each alone: one post's fault (an X id stored for another post) stays its own.
        return settle_each(self, items)

    def _settle_in(
        self, connection: Connection, items: Sequence[tuple[Claim, Settlement]]
    ) -> tuple[list[bool], list[events.DomainEvent]]:
        """The settlements of posts of distinct accounts in the connection's transaction,
        each applied only while its holder holds its post."""
        # Account rows first, then the posts: the order scheduling takes them in, so a
        # settlement and a SchedulePost can never deadlock; by id, so two batches
        # cannot either.
        accounts = {
            row.id: (row.consecutive_failures, AccountState(row.state))
            for row in connection.execute(
                _LOCK_ACCOUNTS, {"ids": sorted({claim.account_id for claim, _ in items})}
            )
        }
        applied_ids = _update_posts(connection, items)
        applied = [(c, s) for c, s in items if c.post_id in applied_ids]
        if applied:
            _store_x_post_ids(connection, [(c, 0, s.x_post_id) for c, s in applied if s.x_post_id])
            _finish_attempts(connection, applied)
            for claim, settlement in applied:
                self._update_account(connection, claim, settlement)
            record_spend(connection, self._prices, [m for _, s in applied for m in s.spent])
        added: list[events.DomainEvent] = []
        audited = []
        streaks = _apply_failure_streaks(connection, applied, accounts)
        for (claim, settlement), streak in zip(applied, streaks, strict=True):
            mine = (*settlement.events, *streak)
            added.extend(mine)
            audited.append((claim, settlement, mine))
        _add_events(connection, added)
        audit_settlements(connection, audited)
        for _ in applied:
            crash_points.crash_point(crash_points.IN_SETTLE)
        return [claim.post_id in applied_ids for claim, _ in items], added

    @staticmethod
    def _update_account(connection: Connection, claim: Claim, settlement: Settlement) -> None:
        if settlement.account_state is not None:
            connection.execute(
                _sql("UPDATE accounts SET state = :state, version = version + 1 WHERE id = :id"),
                {"state": settlement.account_state.value, "id": claim.account_id},
            )
        if settlement.account_rate_limited_until is not None:
            connection.execute(
                _sql(
                    "UPDATE accounts SET rate_limited_until = GREATEST("
                    "COALESCE(rate_limited_until, :until), :until) WHERE id = :id"
                ),
                {"until": settlement.account_rate_limited_until, "id": claim.account_id},
            )
        if settlement.account_budget_month is not None:
            connection.execute(
                _sql("UPDATE accounts SET x_budget_reached_month = :month WHERE id = :id"),
                {"month": settlement.account_budget_month, "id": claim.account_id},
            )


def _store_x_post_id(connection: Connection, claim: Claim, index: int, x_post_id: str) -> None:
    _store_x_post_ids(connection, [(claim, index, x_post_id)])


def _store_x_post_ids(connection: Connection, ids: Sequence[tuple[Claim, int, str]]) -> None:
    """Claim each X id for its post's segment; an id the account already stores for
    another post or segment is refused (the transaction rolls back)."""
    if not ids:
        return
    rows = [
        {
            "account_id": str(claim.account_id),
            "x_post_id": x_post_id,
            "post_id": str(claim.post_id),
            "segment_index": index,
        }
        for claim, index, x_post_id in ids
    ]
    owners = {
        (row.account_id, row.x_post_id): (row.post_id, row.segment_index)
        for row in connection.execute(_STORE_X_IDS, {"rows": _rows(rows)})
    }
    for claim, index, x_post_id in ids:
        owner = owners.get((claim.account_id, x_post_id))
        if owner != (claim.post_id, index):
            post_id, segment = owner or (None, None)
            raise XPostIdTaken(
                f"X post {x_post_id} is already stored for post {post_id} (segment {segment})"
            )


def _update_posts(connection: Connection, items: Sequence[tuple[Claim, Settlement]]) -> set[UUID]:
    """The posts' new rows, each only while its holder holds it; the ids applied."""
    rows = []
    for claim, settlement in items:
        publishing = settlement.state is PostState.PUBLISHING
        rows.append(
            {
                "id": str(claim.post_id),
                "holder": str(claim.holder),
                "state": settlement.state.value,
                "x_post_id": settlement.x_post_id,
                "published_at": _instant(settlement.published_at),
                "due_in": _seconds(settlement.due_in),
                "detail": settlement.detail[:2000],
                "refund": 1 if settlement.refund_attempt else 0,
                "publishing": publishing,
                "reconcile_in": _seconds(settlement.reconcile_in) if publishing else None,
                "unknown_cause": settlement.unknown_cause if publishing else "",
            }
        )
    return {row[0] for row in connection.execute(_UPDATE_POSTS, {"rows": _rows(rows)})}


def _finish_attempts(connection: Connection, items: Sequence[tuple[Claim, Settlement]]) -> None:
    rows = [
        {
            "post_id": str(claim.post_id),
            "number": claim.attempt_number,
            "outcome": settlement.outcome,
            "detail": settlement.detail[:2000],
            "x_post_id": settlement.x_post_id,
        }
        for claim, settlement in items
    ]
    connection.execute(_FINISH_ATTEMPTS, {"rows": _rows(rows)})


def _apply_failure_streaks(
    connection: Connection,
    applied: Sequence[tuple[Claim, Settlement]],
    accounts: dict[UUID, tuple[int, AccountState]],
) -> list[tuple[events.DomainEvent, ...]]:
    """Apply what each settlement does to its account's run of final failures
    (domain/publishing/failure_streak.py), in the settlements' transaction
    (`accounts`: each locked account's count and state before it); the account.suspended
    event of each pause, per settlement."""
    counts: dict[UUID, int] = {}
    found: list[tuple[events.DomainEvent, ...]] = []
    for claim, settlement in applied:
        previous, state = accounts.get(claim.account_id, (0, None))
        streak = None
        if state is not None:
            # The account's state once the settlement's own account change is applied.
            streak = failure_streak.after_settlement(
                claim, settlement.state, previous, settlement.account_state or state, claim.now()
            )
        if streak is None:
            found.append(())
        elif streak.pause:
            found.append(_pause(connection, claim, streak))
        else:
            if streak.count != previous:  # an unchanged count is not written again
                counts[claim.account_id] = streak.count
            found.append(streak.events)
    if counts:
        rows = [{"id": str(account), "count": count} for account, count in counts.items()]
        connection.execute(_SET_FAILURES, {"rows": _rows(rows)})
    return found


def _pause(
    connection: Connection, claim: Claim, streak: failure_streak.FailureStreak
) -> tuple[events.DomainEvent, ...]:
    paused = connection.execute(
        _sql(
            "UPDATE accounts SET consecutive_failures = :count, state = :paused, "
            "version = version + 1, updated_at = now() WHERE id = :id AND state = :active"
        ),
        {
            "count": streak.count,
            "paused": AccountState.PAUSED.value,
            "active": AccountState.ACTIVE.value,
            "id": claim.account_id,
        },
    )
    return streak.events if paused.rowcount == 1 else ()


def _add_events(connection: Connection, added: Sequence[events.DomainEvent]) -> None:
    write_events(connection, added)
