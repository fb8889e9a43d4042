"""The privacy RPCs' storage over the memory store (ports/privacy.py
`AsyncPrivacyStore`), the twin of adapters/db/async_privacy.py.

Each call runs inside an asynchronous memory unit of work of the request path's
factory: it waits its turn behind the units of work open on the loop, and an erasure
that fails part way leaves every row as it was (the unit of work restores them).
tests/contract/test_privacy_contract.py holds both to one behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from post_management.adapters.memory.async_unit_of_work import AsyncMemoryUnitOfWorkFactory
from post_management.adapters.memory.repositories import MemoryAccountRepository
from post_management.adapters.memory.store import MemoryStore, Tables, XRemoval, copied
from post_management.domain.post import Post
from post_management.domain.privacy import (
    AuditRecord,
    MetricsRecord,
    ensure_none_publishing,
    erasure_resource_id,
)
from post_management.ports.privacy import ErasureReport
from post_management.ports.repositories import AuditEntry


def _subject(tagged: str) -> str:
    """What follows the first ':' of a scope ("<Method>:<user id>") or an actor
    ("<role>:<subject>"); all of it without one (PostgreSQL's substr and strpos)."""
    return tagged.split(":", 1)[1] if ":" in tagged else tagged


def _with_subject(actor: str, subject: str) -> str:
    return f"{actor.split(':', 1)[0]}:{subject}"


class MemoryPrivacyStore:
    def __init__(self, units: AsyncMemoryUnitOfWorkFactory) -> None:
        self._units = units
        self._store: MemoryStore = units.store

    async def audit_events(
        self, user_id: str, before_id: int | None, limit: int
    ) -> list[AuditRecord]:
        async with self._units():
            # An audit row's id is its place in the log, counted from 1 (a bigserial).
            found = [
                _audit_record(number, at, entry)
                for number, (at, entry) in enumerate(self._store.tables.audit, start=1)
                if entry.user_id == user_id and (before_id is None or number < before_id)
            ]
        return found[::-1][:limit]

    async def metrics(self, user_id: str) -> list[MetricsRecord]:
        async with self._units():
            tables = self._store.tables
            mine = sorted(p.id for p in tables.posts.values() if p.user_id == user_id)
            return [
                MetricsRecord(
                    post_id=post_id,
                    collected_at=snapshot.collected_at,
                    impressions=snapshot.counts.impressions,
                    likes=snapshot.counts.likes,
                    reposts=snapshot.counts.reposts,
                    replies=snapshot.counts.replies,
                    quotes=snapshot.counts.quotes,
                    bookmarks=snapshot.counts.bookmarks,
                )
                for post_id in mine
                for snapshot in sorted(
                    tables.post_metrics.get(post_id, []), key=lambda s: s.collected_at
                )
            ]

    async def erase(
        self,
        user_id: str,
        pseudonym: str,
        actor: str,
        delete_from_x: bool,
        now: datetime,
        replaces: Sequence[str] = (),
    ) -> ErasureReport:
        async with self._units() as unit:
            report = _erase(self._store, user_id, pseudonym, actor, delete_from_x, now, replaces)
            await unit.commit()
        return report


def _audit_record(number: int, at: datetime, entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=number,
        occurred_at=at,
        actor=entry.actor,
        action=entry.action,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        user_id=entry.user_id,
        request_id=entry.request_id,
        before=copied(entry.before),
        after=copied(entry.after),
    )


def _erase(
    store: MemoryStore,
    user_id: str,
    pseudonym: str,
    actor: str,
    delete_from_x: bool,
    now: datetime,
    replaces: Sequence[str],
) -> ErasureReport:
    """adapters/db/async_privacy.py's statements, in their order, on the rows."""
    tables = store.tables
    posts = [p for p in tables.posts.values() if p.user_id == user_id]
    ensure_none_publishing(p.state for p in posts)
    if replaces:
        _rekey(tables, pseudonym, list(replaces))
    tables.erased_users.add(pseudonym)
    queued = _queue_removals(tables, posts, pseudonym, now) if delete_from_x else 0
    accounts = [a for a in tables.accounts.values() if a.user_id == user_id]
    media = [m.id for m, _ in tables.media.values() if m.user_id == user_id]
    campaigns = [c.id for c in tables.campaigns.values() if c.user_id == user_id]
    owned = {p.id for p in posts} | {a.id for a in accounts} | set(media) | set(campaigns)
    tables.idempotency = {
        key: record
        for key, record in tables.idempotency.items()
        if _subject(key[0]) != user_id and record.resource_id not in owned
    }
    for post in posts:
        del tables.posts[post.id]
    tables.drop_post_rows({p.id for p in posts})
    tables.drop_media(set(media))
    for account in accounts:  # with what goes with an account (its cascades)
        MemoryAccountRepository(store).delete(account.id, account.version)
    for campaign_id in campaigns:
        del tables.campaigns[campaign_id]
    tables.spend = [
        replace(row, user_id=pseudonym) if row.user_id == user_id else row for row in tables.spend
    ]
    audited = 0
    for index, (at, entry) in enumerate(tables.audit):
        if entry.user_id == user_id:
            audited += 1
            tables.audit[index] = (
                at,
                replace(
                    entry,
                    user_id=pseudonym,
                    before=None,
                    after=None,
                    actor=(
                        _with_subject(entry.actor, pseudonym)
                        if _subject(entry.actor) == user_id
                        else entry.actor
                    ),
                ),
            )
    report = ErasureReport(len(posts), len(accounts), len(media), audited, queued, now)
    record = AuditEntry(
        actor,
        "user.erase",
        "user",
        erasure_resource_id(pseudonym),
        pseudonym,
        None,
        report.document(),
    )
    tables.audit.append((now, record))
    return report


def _rekey(tables: Tables, pseudonym: str, former: list[str]) -> None:
    """Rows an earlier erasure of the same user wrote under a former pseudonym move to
    the current one."""
    tables.erased_users -= set(former)
    tables.x_removals = [
        replace(row, user_hash=pseudonym) if row.user_hash in former else row
        for row in tables.x_removals
    ]
    old_records: set[UUID] = {erasure_resource_id(old) for old in former}
    for index, (at, entry) in enumerate(tables.audit):
        moved = entry
        if moved.user_id in former:
            moved = replace(moved, user_id=pseudonym)
        if _subject(moved.actor) in former:
            moved = replace(moved, actor=_with_subject(moved.actor, pseudonym))
        if moved.resource_type == "user" and moved.resource_id in old_records:
            moved = replace(moved, resource_id=erasure_resource_id(pseudonym))
        tables.audit[index] = (at, moved)


def _queue_removals(tables: Tables, posts: list[Post], pseudonym: str, now: datetime) -> int:
    """Every segment of a published thread of an account with tokens."""
    next_id = max((row.id for row in tables.x_removals), default=0) + 1
    queued = 0
    for post in posts:
        account = tables.accounts.get(post.account_id)
        if account is None or account.credentials is None:
            continue
        segments = post.segment_x_post_ids or [post.x_post_id]
        for segment in (s for s in segments if s):
            removal = XRemoval(next_id + queued, pseudonym, segment, account.credentials, now)
            tables.x_removals.append(removal)
            queued += 1
    return queued
