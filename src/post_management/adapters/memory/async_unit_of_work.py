"""The asynchronous unit of work over the memory store: the synchronous one's
repositories, awaited. An asyncio lock runs the units of work of one event loop one
after the other (the store's own lock is re-entrant, and every coroutine of a loop
runs on its one thread). While one is open, a synchronous memory unit of work on the
same store is refused (RuntimeError) rather than left to deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self
from uuid import UUID

from post_management.adapters.memory.analytics import (
    MemoryAccountInsights,
    MemoryAnalyticsRepository,
)
from post_management.adapters.memory.store import MemoryStore
from post_management.adapters.memory.unit_of_work import MemoryUnitOfWork, MemoryUnitOfWorkFactory
from post_management.domain.account import Account
from post_management.domain.analytics import Snapshot
from post_management.domain.campaigns import Campaign
from post_management.domain.engagement_features import PastPost
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post
from post_management.ports.analytics import (
    MeasuredPost,
    PublishedRef,
    TrendAlert,
)
from post_management.ports.async_unit_of_work import (
    AsyncUnitOfWork,
)
from post_management.ports.campaigns import CampaignRepository
from post_management.ports.media import MediaRepository
from post_management.ports.privacy import ErasureTombstones
from post_management.ports.repositories import (
    AccountRepository,
    AuditEntry,
    AuditLog,
    Cursor,
    IdempotencyKeys,
    IdempotencyRecord,
    PostFilter,
    PostRepository,
)
from post_management.ports.schedule_queries import ScheduleQueries, TakenTime
from post_management.ports.x_spend import BudgetState, SpendLedger, SpendRow, SpendScope


class _Posts:
    def __init__(self, posts: PostRepository) -> None:
        self._posts = posts

    async def add(self, post: Post) -> None:
        self._posts.add(post)

    async def list(self, where: PostFilter, after: Cursor | None, limit: int) -> list[Post]:
        return self._posts.list(where, after, limit)

    async def delete(self, post_id: UUID, expected_version: int) -> bool:
        return self._posts.delete(post_id, expected_version)

    async def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None:
        return self._posts.get(post_id, for_update=for_update)

    async def save(self, post: Post, expected_version: int) -> bool:
        return self._posts.save(post, expected_version)

    async def count_active_for_account(self, account_id: UUID) -> int:
        return self._posts.count_active_for_account(account_id)


class _Accounts:
    def __init__(self, accounts: AccountRepository) -> None:
        self._accounts = accounts

    async def add(self, account: Account) -> None:
        self._accounts.add(account)

    async def list(self, user_id: str | None, after: Cursor | None, limit: int) -> list[Account]:
        return self._accounts.list(user_id, after, limit)

    async def save(self, account: Account, expected_version: int) -> bool:
        return self._accounts.save(account, expected_version)

    async def delete(self, account_id: UUID, expected_version: int) -> bool:
        return self._accounts.delete(account_id, expected_version)

    async def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None:
        return self._accounts.get(account_id, for_update=for_update)

    async def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        return self._accounts.lock_with_post(post_id, user_id)


class _IdempotencyKeys:
    def __init__(self, keys: IdempotencyKeys) -> None:
        self._keys = keys

    def read_ahead(self, scope: str, key: str) -> None:
        """Nothing to send ahead: `get` reads the store."""

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self._keys.get(scope, key)

    async def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        self._keys.put(scope, key, record)


class _AuditLog:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def record(self, entry: AuditEntry) -> None:
        self._audit.record(entry)


class _ScheduleQueries:
    def __init__(self, schedule: ScheduleQueries) -> None:
        self._schedule = schedule

    def read_ahead_beside(self, post_id: UUID, since: datetime) -> None:
        """Nothing to send ahead: `taken_times` reads the store."""

    async def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        return self._schedule.taken_times(account_id, since, exclude_post_id)


class _Campaigns:
    def __init__(self, campaigns: CampaignRepository) -> None:
        self._campaigns = campaigns

    async def add(self, campaign: Campaign) -> None:
        self._campaigns.add(campaign)

    async def list(self, user_id: str, after: Cursor | None, limit: int) -> list[Campaign]:
        return self._campaigns.list(user_id, after, limit)

    async def get(self, campaign_id: UUID) -> Campaign | None:
        return self._campaigns.get(campaign_id)


class _Media:
    def __init__(self, media: MediaRepository) -> None:
        self._media = media

    async def add(self, media: Media, data: bytes) -> None:
        self._media.add(media, data)

    async def get(self, media_id: UUID) -> Media | None:
        return self._media.get(media_id)

    async def kinds(self, user_id: str, media_ids: Sequence[UUID]) -> dict[UUID, MediaKind]:
        return self._media.kinds(user_id, media_ids)

    async def usage(self, user_id: str) -> tuple[int, int]:
        return self._media.usage(user_id)


class _Erasures:
    def __init__(self, erasures: ErasureTombstones) -> None:
        self._erasures = erasures

    async def is_erased(self, user_id: str) -> bool:
        return self._erasures.is_erased(user_id)


class _Analytics:
    def __init__(self, analytics: MemoryAnalyticsRepository) -> None:
        self._analytics = analytics

    async def add_snapshot(self, post_id: UUID, snapshot: Snapshot, source: str) -> None:
        self._analytics.add_snapshot(post_id, snapshot, source)

    async def mark_deleted(self, post_id: UUID, detected_at: datetime) -> None:
        self._analytics.mark_deleted(post_id, detected_at)

    async def published_by_x_id(self, x_post_ids: Sequence[str]) -> dict[str, PublishedRef]:
        return self._analytics.published_by_x_id(x_post_ids)

    async def record_webhook_event(
        self, event_id: str, event_type: str, received_at: datetime
    ) -> bool:
        return self._analytics.record_webhook_event(event_id, event_type, received_at)

    async def latest(self, post_id: UUID) -> Snapshot | None:
        return self._analytics.latest(post_id)

    async def series(self, post_id: UUID) -> list[Snapshot]:
        return self._analytics.series(post_id)

    async def deleted_on_x(self, post_id: UUID) -> bool:
        return self._analytics.deleted_on_x(post_id)

    async def account_posts(self, account_id: UUID, since: datetime | None) -> list[MeasuredPost]:
        return self._analytics.account_posts(account_id, since)

    async def user_posts(self, user_id: str, start: datetime, end: datetime) -> list[MeasuredPost]:
        return self._analytics.user_posts(user_id, start, end)


class _Insights:
    def __init__(self, insights: MemoryAccountInsights) -> None:
        self._insights = insights

    async def campaign_posts(self, campaign_id: UUID) -> list[MeasuredPost]:
        return self._insights.campaign_posts(campaign_id)

    async def published_outside(
        self, campaign_id: UUID, account_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> list[MeasuredPost]:
        return self._insights.published_outside(campaign_id, account_ids, start, end)

    async def series_of(self, post_ids: Sequence[UUID]) -> dict[UUID, list[Snapshot]]:
        return self._insights.series_of(post_ids)

    async def follower_snapshots(
        self, account_id: UUID, start: datetime, end: datetime
    ) -> list[FollowerSnapshot]:
        return self._insights.follower_snapshots(account_id, start, end)

    async def engagement_history(
        self, account_id: UUID | None, published_before: datetime, limit: int
    ) -> list[PastPost]:
        return self._insights.engagement_history(account_id, published_before, limit)

    async def trend_alerts_for_post(
        self, post_id: UUID, account_id: UUID, published_at: datetime | None
    ) -> list[TrendAlert]:
        return self._insights.trend_alerts_for_post(post_id, account_id, published_at)


class _SpendLedger:
    def __init__(self, spend: SpendLedger) -> None:
        self._spend = spend

    async def rows(self, scope: SpendScope, start: datetime, end: datetime) -> list[SpendRow]:
        return self._spend.rows(scope, start, end)

    async def published_posts(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        return self._spend.published_posts(scope, start, end)

    async def budget_states(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        return self._spend.budget_states(account_ids)


class AsyncMemoryUnitOfWork(AsyncUnitOfWork):
    def __init__(self, sync: MemoryUnitOfWork, store: MemoryStore, turn: asyncio.Lock) -> None:
        self._sync = sync
        self._store = store
        self._turn = turn
        self.outbox = sync.outbox
        self.posts = _Posts(sync.posts)
        self.accounts = _Accounts(sync.accounts)
        self.idempotency = _IdempotencyKeys(sync.idempotency)
        self.audit = _AuditLog(sync.audit)
        self.schedule = _ScheduleQueries(sync.schedule)
        self.campaigns = _Campaigns(sync.campaigns)
        self.media = _Media(sync.media)
        self.erasures = _Erasures(sync.erasures)
        self.analytics = _Analytics(MemoryAnalyticsRepository(store))
        # The store's own: the webhook's and the campaign report's reads are on no
        # synchronous port.
        self.insights = _Insights(MemoryAccountInsights(store))
        self.spend = _SpendLedger(sync.spend)

    async def __aenter__(self) -> Self:
        await self._turn.acquire()
        try:
            self._sync.__enter__()
        except BaseException:
            self._turn.release()
            raise
        self._store.async_unit_open = True
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._store.async_unit_open = False
        try:
            self._sync.__exit__(*exc_info)
        finally:
            self._turn.release()

    async def commit(self) -> None:
        self._sync.commit()


class AsyncMemoryUnitOfWorkFactory:
    """Asynchronous units of work on the store of a synchronous factory (both kinds
    share its rows, as both SQL kinds share the database)."""

    def __init__(self, sync: MemoryUnitOfWorkFactory) -> None:
        self._sync = sync
        # Held by each unit of work from its start to its end (and by the memory reads).
        self.turn = asyncio.Lock()

    @property
    def store(self) -> MemoryStore:
        return self._sync.store

    def __call__(self) -> AsyncMemoryUnitOfWork:
        unit = self._sync()
        assert isinstance(unit, MemoryUnitOfWork)
        return AsyncMemoryUnitOfWork(unit, self._sync.store, self.turn)
