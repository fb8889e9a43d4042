"""Audit trails, data export, erasure, removals on X and retention (docs/security.md)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

from post_management.domain.account import Account
from post_management.domain.auth import Principal, Role
from post_management.domain.campaigns import Campaign
from post_management.domain.errors import InvalidArgument, PermissionDenied
from post_management.domain.post import Post
from post_management.domain.privacy import AuditRecord, MetricsRecord, Pseudonyms, redact
from post_management.domain.reasons import Reason
from post_management.domain.x_spend import CallKind, Metered, Outcome, Purpose
from post_management.ports.async_unit_of_work import AsyncUnitOfWorkFactory
from post_management.ports.cache import AsyncCache
from post_management.ports.privacy import (
    AsyncPrivacyStore,
    ErasureReport,
    PendingRemoval,
    PrivacyStore,
    RetentionCutoffs,
)
from post_management.ports.repositories import Cursor, PostFilter
from post_management.ports.support import Clock
from post_management.ports.x_api import (
    AccountSuspended,
    Deleted,
    PermanentFailure,
    RateLimited,
    Unauthorized,
    UnknownOutcome,
    XApi,
    XCredentials,
)
from post_management.services.analytics.analytics import cache_keys
from post_management.services.shared.pagination import (
    Created,
    Page,
    by_creation,
    decode_token,
    page_of,
    page_size,
)

log = logging.getLogger(__name__)

# Export reads lists in pages of this size.
_EXPORT_BATCH = 500
# Audit rows are numbered by a bigint.
_MAX_AUDIT_ID = 2**63 - 1


@dataclass(frozen=True)
class UserExport:
    user_id: str
    exported_at: datetime
    accounts: list[Account]
    posts: list[Post]
    metrics: list[MetricsRecord]
    audit_events: list[AuditRecord]
    campaigns: list[Campaign]


def _audit_cursor(record: AuditRecord) -> Cursor:
    return Cursor(record.occurred_at, UUID(int=record.id))


def _redacted(record: AuditRecord) -> AuditRecord:
    return replace(record, before=redact(record.before), after=redact(record.after))


_Row = TypeVar("_Row", bound=Created)


async def _every(batch: Callable[[Cursor | None], Awaitable[list[_Row]]]) -> list[_Row]:
    """Every row a creation-ordered listing holds, read a batch at a time, each batch
    after the last row of the one before."""
    rows: list[_Row] = []
    cursor: Cursor | None = None
    while found := await batch(cursor):
        rows += found
        cursor = by_creation(found[-1])
    return rows


class PrivacyService:
    """ListAuditEvents, ExportUserData and EraseUserData, awaited on the serving loop:
    the export reads in the asynchronous unit of work, the trail and the erasure
    through the asynchronous privacy store."""

    def __init__(
        self,
        uow: AsyncUnitOfWorkFactory,
        store: AsyncPrivacyStore,
        clock: Clock,
        pseudonyms: Pseudonyms,
        analytics_cache: AsyncCache | None = None,
    ) -> None:
        self._uow = uow
        self._store = store
        self._clock = clock
        self._pseudonyms = pseudonyms
        # GetPostMetrics' and GetPostAnalytics' answers (by post id): an erasure drops
        # its posts' so no erased post's metrics are answered from the cache.
        self._analytics_cache = analytics_cache

    async def list_audit_events(
        self, principal: Principal, user_id: str, size: int, token: str
    ) -> Page[AuditRecord]:
        principal.ensure_can_act_for(user_id)
        limit = page_size(size)
        query = {"user_id": user_id, "list": "audit"}
        after = decode_token(token, query)
        # Newest first by id; the id rides in the token's UUID slot.
        before_id = after.id.int if after is not None else None
        if before_id is not None and not 0 < before_id <= _MAX_AUDIT_ID:
            raise InvalidArgument.for_field(
                "page_token", "holds a cursor out of range", reason=Reason.INVALID_PAGE_TOKEN
            )
        records = await self._store.audit_events(user_id, before_id, limit + 1)
        page = page_of(
            records, limit, query, lambda last: Cursor(last.occurred_at, UUID(int=last.id))
        )
        return Page([_redacted(record) for record in page.items], page.next_page_token)

    async def export(self, principal: Principal, user_id: str) -> UserExport:
        principal.ensure_can_act_for(user_id)
        now = self._clock.now()
        async with self._uow() as uow:
            accounts = await _every(
                lambda cursor: uow.accounts.list(user_id, cursor, _EXPORT_BATCH)
            )
            posts = await _every(
                lambda cursor: uow.posts.list(PostFilter(user_id), cursor, _EXPORT_BATCH)
            )
            campaigns = await _every(
                lambda cursor: uow.campaigns.list(user_id, cursor, _EXPORT_BATCH)
            )
        audit: list[AuditRecord] = []
        before: int | None = None
        while records := await self._store.audit_events(user_id, before, _EXPORT_BATCH):
            audit += [_redacted(record) for record in records]
            before = records[-1].id
        metrics = await self._store.metrics(user_id)
        return UserExport(user_id, now, accounts, posts, metrics, audit, campaigns)

    async def erase(self, principal: Principal, user_id: str, delete_from_x: bool) -> ErasureReport:
        if principal.role is Role.USER:
            raise PermissionDenied(
                "erasure needs the admin or service role", reason=Reason.ERASE_NOT_ALLOWED
            )
        cached = await self._post_ids(user_id) if self._analytics_cache is not None else []
        report = await self._store.erase(
            user_id,
            self._pseudonyms.of(user_id),
            f"{principal.role}:{principal.subject}",
            delete_from_x,
            self._clock.now(),
            # An erasure from before pseudonyms were keyed is re-keyed by this one.
            replaces=[self._pseudonyms.unkeyed(user_id)],
        )
        if self._analytics_cache is not None and cached:
            # After the commit: a reader that looks now finds no post, nothing cached.
            await self._analytics_cache.delete(
                *(k for post_id in cached for k in cache_keys(post_id))
            )
        log.info(
            "user erased",
            extra={"action": "user.erase", "posts": report.posts_deleted},
        )
        return report

    async def _post_ids(self, user_id: str) -> list[UUID]:
        """The user's posts, whose cached analytics answers the erasure drops."""
        async with self._uow() as uow:
            posts = await _every(
                lambda cursor: uow.posts.list(PostFilter(user_id), cursor, _EXPORT_BATCH)
            )
        return [post.id for post in posts]


class RemovalJob:
    """Deletes erased users' posts on X, a batch per tick; retried until done. A
    background tick: it keeps the synchronous PrivacyStore."""

    def __init__(self, store: PrivacyStore, x_api: XApi, clock: Clock, batch: int = 50) -> None:
        self._store = store
        self._x = x_api
        self._clock = clock
        self._batch = batch

    def tick(self) -> int:
        done = 0
        for removal in self._store.pending_removals(self._batch):
            now = self._clock.now()
            if removal.credentials is None:
                self._store.finish_removal(removal.id, now, "no credentials", final=True)
                continue
            creds = XCredentials(
                removal.credentials.access_token, removal.credentials.access_token_secret
            )
            outcome = self._x.delete_post(creds, removal.x_post_id)
            spent = [_deletion(removal, now, billed=isinstance(outcome, Deleted))]
            match outcome:
                case Deleted():
                    self._store.finish_removal(removal.id, now, "", final=True, spent=spent)
                    done += 1
                case RateLimited():
                    self._store.record_spent(spent)  # not an attempt: it waits for the reset
                    return done  # the next tick resumes after the reset
                case UnknownOutcome(reason=reason):
                    self._store.finish_removal(removal.id, now, reason, final=False, spent=spent)
                case AccountSuspended(reason=reason) | Unauthorized(reason=reason):
                    # Without working tokens nothing more can be done from here.
                    self._store.finish_removal(removal.id, now, reason, final=True, spent=spent)
                case PermanentFailure(reason=reason):
                    self._store.finish_removal(removal.id, now, reason, final=True, spent=spent)
        return done


def _deletion(removal: PendingRemoval, now: datetime, *, billed: bool) -> Metered:
    """The erasure's DELETE on X, on the erased user's pseudonym (the account is gone)."""
    outcome = Outcome.CHARGED if billed else Outcome.REFUSED
    return Metered(
        now, CallKind.POST_DELETE, Purpose.ERASURE, removal.user_hash, None, outcome=outcome
    )


@dataclass(frozen=True)
class RetentionPeriods:
    metric_snapshots: timedelta
    dead_letters: timedelta
    finished_removals: timedelta
    # Media no post attaches, counted from the upload.
    unattached_media: timedelta = timedelta(days=7)
    # Media whose every post was published, counted from the last publication.
    published_media: timedelta = timedelta(days=30)


class RetentionJob:
    """Purges what is kept only for a while; sent outbox rows are the relay's."""

    def __init__(self, store: PrivacyStore, clock: Clock, periods: RetentionPeriods) -> None:
        self._store = store
        self._clock = clock
        self._periods = periods

    def tick(self) -> dict[str, int]:
        now = self._clock.now()
        purged = self._store.purge(
            RetentionCutoffs(
                metrics_before=now - self._periods.metric_snapshots,
                dead_letters_before=now - self._periods.dead_letters,
                removals_before=now - self._periods.finished_removals,
                unattached_media_before=now - self._periods.unattached_media,
                published_media_before=now - self._periods.published_media,
            )
        )
        if any(purged.values()):
            log.info("retention purge", extra={"action": "retention.purge", **purged})
        return purged
