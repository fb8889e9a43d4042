"""The publishing queue over the memory store (ports/publishing.py PublishQueue).

Each call is atomic under the store's lock, as each SQL statement group is one
transaction; the store's clock is the database's now(). The choices (fair heads per
account, one post in flight per account, holder-token guards, forward-only leases)
are those of adapters/db/publish_queue.py, proven equal by tests/contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

from post_management.adapters.memory.engine_audit import settlement_entries
from post_management.adapters.memory.repositories import write_events
from post_management.adapters.memory.spend_ledger import record_spend
from post_management.adapters.memory.store import Attempt, MemoryStore, PostEngine, XIdOwner
from post_management.domain import events
from post_management.domain.account import AccountState
from post_management.domain.post import Post, PostState
from post_management.domain.publishing import LEASE_EXPIRED, Claim, Settlement, failure_streak
from post_management.domain.x_spend import PriceTable
from post_management.ports.publishing import XPostIdTaken, settle_each

T = TypeVar("T")
MAX_DETAIL = 2000


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else max(a, b)


class MemoryPublishQueue:
    def __init__(self, store: MemoryStore, prices: PriceTable | None = None) -> None:
        self._store = store
        self._prices = prices or PriceTable()

    # --- claims -------------------------------------------------------------------

    def claim_due(self, limit: int, lease: timedelta) -> list[Claim]:
        def claim() -> list[Claim]:
            now = self._store.now()
            heads: dict[UUID, Post] = {}
            for post in self._store.tables.posts.values():
                if post.state is not PostState.SCHEDULED or post.scheduled_for is None:
                    continue
                if post.scheduled_for > now:
                    continue
                head = heads.get(post.account_id)
                if head is None or _queue_order(post) < _queue_order(head):
                    heads[post.account_id] = post
            chosen = sorted(
                (p for p in heads.values() if self._account_free(p.account_id, now)),
                key=_queue_order,
            )[:limit]
            return [self._start_attempt(post, lease, now) for post in chosen]

        return self._atomic(claim)

    def claim_post(self, post_id: UUID, lease: timedelta) -> Claim | None:
        def claim() -> Claim | None:
            now = self._store.now()
            post = self._store.tables.posts.get(post_id)
            if post is None or post.state is not PostState.SCHEDULED:
                return None
            if post.scheduled_for is None or post.scheduled_for > now:
                return None
            if not self._account_free(post.account_id, now):
                return None
            return self._start_attempt(post, lease, now)

        return self._atomic(claim)

    def claim_for_reconcile(self, limit: int, lease: timedelta) -> list[Claim]:
        def claim() -> list[Claim]:
            now = self._store.now()
            tables = self._store.tables
            stuck = []
            for post in tables.posts.values():
                engine = tables.post_engine[post.id]
                if post.state is not PostState.PUBLISHING:
                    continue
                if engine.reconcile_after is not None:
                    if engine.reconcile_after <= now:
                        stuck.append(post)
                elif engine.lease_expires_at is not None and engine.lease_expires_at <= now:
                    stuck.append(post)
            stuck.sort(key=lambda p: _started(tables.post_engine[p.id]))
            claims = []
            for post in stuck[:limit]:
                engine = tables.post_engine[post.id]
                engine.attempt_id = uuid.uuid4()
                engine.lease_expires_at = now + lease
                engine.reconcile_after = None
                engine.unknown_cause = engine.unknown_cause or LEASE_EXPIRED
                post.updated_at = now
                claims.append(self._claim_of(post, now, reconciling=True))
            return claims

        return self._atomic(claim)

    def _account_free(self, account_id: UUID, now: datetime) -> bool:
        tables = self._store.tables
        account = tables.accounts.get(account_id)
        if account is None or account.state is not AccountState.ACTIVE:
            return False
        limited = tables.account_engine[account_id].rate_limited_until
        if limited is not None and limited > now:
            return False
        if account.x_budget_reached_month == now.strftime("%Y-%m"):
            return False
        return not any(
            p.account_id == account_id and p.state is PostState.PUBLISHING
            for p in tables.posts.values()
        )

    def _start_attempt(self, post: Post, lease: timedelta, now: datetime) -> Claim:
        engine = self._store.tables.post_engine[post.id]
        post.state = PostState.PUBLISHING
        post.attempt_count += 1
        post.version += 1
        post.updated_at = now
        engine.attempt_id = uuid.uuid4()
        engine.lease_expires_at = now + lease
        engine.publish_started_at = now
        engine.reconcile_after = None
        engine.unknown_cause = ""
        self._store.tables.attempts.append(
            Attempt(post.id, engine.attempt_id, post.attempt_count, now)
        )
        return self._claim_of(post, now, reconciling=False)

    def _claim_of(self, post: Post, now: datetime, *, reconciling: bool) -> Claim:
        tables = self._store.tables
        engine = tables.post_engine[post.id]
        account = tables.accounts[post.account_id]
        assert engine.attempt_id is not None and engine.publish_started_at is not None
        assert post.scheduled_for is not None
        extra: dict[str, object] = {}
        if reconciling:
            attempts = [a for a in tables.attempts if a.post_id == post.id]
            newest = attempts[-1] if attempts else None
            known = sorted(
                (owner.recorded_at, x_post_id)
                for (account_id, x_post_id), owner in tables.x_ids.items()
                if owner.post_id == post.id
                and account_id == post.account_id
                and owner.segment_index == len(post.segment_x_post_ids)
            )
            extra = {
                "sent_at": newest.sent_at if newest else None,
                "sent_media_ids": newest.x_media_ids if newest else (),
                "first_sent_at": min((a.sent_at or a.started_at for a in attempts), default=None),
                "gave_up_at": newest.finished_at if newest else None,
                "known_x_post_id": known[0][1] if known else "",
            }
        return Claim(
            post_id=post.id,
            holder=engine.attempt_id,
            attempt_number=post.attempt_count,
            account_id=post.account_id,
            user_id=post.user_id,
            x_user_id=account.x_user_id,
            text=post.text,
            media_ids=tuple(post.media_ids),
            reply_to_x_post_id=post.reply_to_x_post_id,
            priority=post.priority,
            due_at=post.scheduled_for,
            started_at=engine.publish_started_at,
            credentials=account.credentials,
            unknown_cause=engine.unknown_cause,
            thread=tuple(post.thread),
            segment_x_post_ids=tuple(post.segment_x_post_ids),
            attachment_ids=tuple(post.attachment_ids),
            claimed_at=now,
            **extra,  # type: ignore[arg-type]
        )

    # --- the holder's calls ---------------------------------------------------------

    def _held(self, claim: Claim) -> tuple[Post, PostEngine] | None:
        post = self._store.tables.posts.get(claim.post_id)
        if post is None or post.state is not PostState.PUBLISHING:
            return None
        engine = self._store.tables.post_engine[post.id]
        return (post, engine) if engine.attempt_id == claim.holder else None

    def renew(self, claim: Claim, lease: timedelta) -> bool:
        def renew() -> bool:
            held = self._held(claim)
            if held is None:
                return False
            held[1].lease_expires_at = _later(held[1].lease_expires_at, self._store.now() + lease)
            return True

        return self._atomic(renew)

    def sending(
        self, claim: Claim, lease: timedelta, x_media_ids: Sequence[str] | None = None
    ) -> bool:
        def sending() -> bool:
            if not self.renew(claim, lease):
                return False
            for attempt in self._store.tables.attempts:
                if attempt.attempt_id == claim.holder:
                    attempt.sent_at = self._store.now()
                    if x_media_ids is not None:
                        attempt.x_media_ids = tuple(x_media_ids)
            return True

        return self._atomic(sending)

    def sending_many(
        self, items: Sequence[tuple[Claim, Sequence[str] | None]], lease: timedelta
    ) -> list[bool]:
        return self._atomic(lambda: [self.sending(claim, lease, media) for claim, media in items])

    def record_answer(self, claim: Claim, index: int, x_post_id: str) -> None:
        def record() -> None:
            key = (claim.account_id, x_post_id)
            if key not in self._store.tables.x_ids:
                self._store.tables.x_ids[key] = XIdOwner(claim.post_id, index, self._store.now())

        self._atomic(record)

    def stored_x_post_ids(self, account_id: UUID, x_post_ids: Sequence[str]) -> set[str]:
        with self._store.lock:
            stored = self._store.tables.x_ids
            return {x for x in x_post_ids if (account_id, x) in stored}

    def look_again(
        self,
        claim: Claim,
        after: timedelta,
        not_before: datetime | None = None,
        reason: str = "",
    ) -> bool:
        def look() -> bool:
            held = self._held(claim)
            if held is None:
                return False
            post, engine = held
            when = self._store.now() + after
            if not_before is not None:
                when = max(when, not_before)
            engine.reconcile_after = when
            engine.lease_expires_at = when
            if reason:
                post.last_error = reason[:MAX_DETAIL]
            return True

        return self._atomic(look)

    def record_segment(self, claim: Claim, index: int, x_post_id: str, lease: timedelta) -> bool:
        def record() -> bool:
            held = self._held(claim)
            if held is None or len(held[0].segment_x_post_ids) != index:
                return False
            post, engine = held
            now = self._store.now()
            post.segment_x_post_ids.append(x_post_id)
            engine.lease_expires_at = _later(engine.lease_expires_at, now + lease)
            if engine.reconcile_after is not None:
                engine.reconcile_after = max(engine.reconcile_after, now + lease)
            post.version += 1
            post.updated_at = now
            self._store_x_post_id(claim, index, x_post_id)
            return True

        return self._atomic(record)

    def settle(self, claim: Claim, settlement: Settlement) -> bool:
        return self._atomic(lambda: self._settle_held(claim, settlement))

    def settle_many(self, items: Sequence[tuple[Claim, Settlement]]) -> list[bool | Exception]:
        try:
            return self._atomic(lambda: [self._settle_held(c, s) for c, s in items])
        except Exception:  # one item's own failure: each alone, as the database does
            return settle_each(self, items)

    def _settle_held(self, claim: Claim, settlement: Settlement) -> bool:
        held = self._held(claim)
        if held is None:
            return False
        self._update_post(*held, settlement)
        if settlement.x_post_id:
            self._store_x_post_id(claim, 0, settlement.x_post_id)
        self._finish_attempt(claim, settlement)
        self._update_account(claim, settlement)
        record_spend(self._store, self._prices, settlement.spent)
        streak = self._apply_failure_streak(claim, settlement, claim.now())
        added = (*settlement.events, *streak)
        write_events(self._store, added)
        now = self._store.now()
        for entry in settlement_entries(claim, settlement, added):
            self._store.tables.audit.append((now, entry))
        return True

    def _update_post(self, post: Post, engine: PostEngine, settlement: Settlement) -> None:
        now = self._store.now()
        publishing = settlement.state is PostState.PUBLISHING
        reconcile_in = settlement.reconcile_in if publishing else None
        post.state = settlement.state
        if settlement.x_post_id:
            post.x_post_id = settlement.x_post_id
        if settlement.published_at is not None:
            post.published_at = settlement.published_at
        if settlement.due_in is not None:
            post.scheduled_for = now + settlement.due_in
        post.last_error = settlement.detail[:MAX_DETAIL]
        post.attempt_count -= 1 if settlement.refund_attempt else 0
        if not publishing:
            engine.attempt_id = None
        engine.lease_expires_at = now + reconcile_in if reconcile_in is not None else None
        engine.reconcile_after = engine.lease_expires_at
        engine.unknown_cause = settlement.unknown_cause if publishing else ""
        post.version += 1
        post.updated_at = now

    def _finish_attempt(self, claim: Claim, settlement: Settlement) -> None:
        # The newest row of this attempt number: numbers repeat after a requeue.
        for attempt in reversed(self._store.tables.attempts):
            if attempt.post_id == claim.post_id and attempt.number == claim.attempt_number:
                attempt.finished_at = self._store.now()
                attempt.outcome = settlement.outcome
                attempt.detail = settlement.detail[:MAX_DETAIL]
                attempt.x_post_id = settlement.x_post_id
                return

    def _update_account(self, claim: Claim, settlement: Settlement) -> None:
        account = self._store.tables.accounts.get(claim.account_id)
        if account is None:
            return
        engine = self._store.tables.account_engine[claim.account_id]
        if settlement.account_state is not None:
            account.state = settlement.account_state
            account.version += 1
        if settlement.account_rate_limited_until is not None:
            until = settlement.account_rate_limited_until
            engine.rate_limited_until = _later(engine.rate_limited_until, until)
        if settlement.account_budget_month is not None:
            account.x_budget_reached_month = settlement.account_budget_month

    def _store_x_post_id(self, claim: Claim, index: int, x_post_id: str) -> None:
        """Claim `x_post_id` for segment `index`; an id the account already stores for
        another post or segment is refused (and the whole call undone)."""
        key = (claim.account_id, x_post_id)
        owner = self._store.tables.x_ids.setdefault(
            key, XIdOwner(claim.post_id, index, self._store.now())
        )
        if (owner.post_id, owner.segment_index) != (claim.post_id, index):
            raise XPostIdTaken(
                f"X post {x_post_id} is already stored for post {owner.post_id} "
                f"(segment {owner.segment_index})"
            )

    def _apply_failure_streak(
        self, claim: Claim, settlement: Settlement, now: datetime
    ) -> tuple[events.DomainEvent, ...]:
        """Apply what the settlement does to the account's run of final failures
        (domain/publishing/failure_streak.py); the account.suspended event of a pause."""
        account = self._store.tables.accounts.get(claim.account_id)
        if account is None:
            return ()
        engine = self._store.tables.account_engine[claim.account_id]
        streak = failure_streak.after_settlement(
            claim, settlement.state, engine.consecutive_failures, account.state, now
        )
        if streak is None:
            return ()
        engine.consecutive_failures = streak.count
        if streak.pause:
            account.state = AccountState.PAUSED
            account.version += 1
            account.updated_at = self._store.now()
        return streak.events

    def _atomic(self, work: Callable[[], T]) -> T:
        """Run `work` as one transaction: on an exception the rows are as before."""
        with self._store.lock:
            saved = self._store.snapshot()
            try:
                return work()
            except BaseException:
                self._store.restore(saved)
                raise


def _queue_order(post: Post) -> tuple[int, datetime, UUID]:
    assert post.scheduled_for is not None
    return (int(post.priority), post.scheduled_for, post.id)


def _started(engine: PostEngine) -> datetime:
    assert engine.publish_started_at is not None
    return engine.publish_started_at
