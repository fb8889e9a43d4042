"""The asynchronous unit of work of the request path's commands: awaited on the event
loop, no worker thread. The post, scheduling, account, campaign and publishing
commands run on it (CreatePost, UpdatePost, DeletePost, ListPosts, SchedulePost,
BatchSchedulePosts, CancelSchedule, ListFreeSlots, the AccountService's own,
CreateCampaign, GetCampaign, ListCampaigns, PublishPost, ListDeadLetters,
RequeueDeadLetter, UploadMedia), and the analytics reads GetPostMetrics,
GetPostAnalytics, GetUserStats, GetAccountGrowth, GetAudienceActivity, GetXSpend,
PredictEngagement, GetOptimalTimes and GetCampaignAnalytics, and the X webhook's
deliveries (ReceiveXWebhook); the other commands and the background jobs keep the
synchronous unit of work (ports.unit_of_work). A method both use behaves alike on
both (the same statements); the reads and writes only the request path makes are on
no synchronous port.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from post_management.domain.account import Account
from post_management.domain.analytics import Snapshot
from post_management.domain.campaigns import Campaign
from post_management.domain.engagement_features import PastPost
from post_management.domain.events import EventLog
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post
from post_management.ports.analytics import MeasuredPost, PublishedRef, TrendAlert
from post_management.ports.repositories import AuditEntry, Cursor, IdempotencyRecord, PostFilter
from post_management.ports.schedule_queries import TakenTime
from post_management.ports.x_spend import BudgetState, SpendRow, SpendScope


class AsyncPosts(Protocol):
    async def add(self, post: Post) -> None: ...

    async def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None: ...

    async def list(self, where: PostFilter, after: Cursor | None, limit: int) -> list[Post]:
        """Up to `limit` posts in creation order (created_at, id), after the cursor."""
        ...

    async def delete(self, post_id: UUID, expected_version: int) -> bool: ...

    async def save(self, post: Post, expected_version: int) -> bool:
        """Store over `expected_version`; False when another change came first. A post
        this unit holds locked at that version may be stored with the commit instead
        (nothing else can change it first); should it fail all the same, the commit
        raises Aborted."""
        ...

    async def count_active_for_account(self, account_id: UUID) -> int:
        """The account's posts that are scheduled or being published."""
        ...


class AsyncAccounts(Protocol):
    async def add(self, account: Account) -> None:
        """Raises DuplicateKey (at the latest when the unit of work ends) when the
        user has that X account already."""
        ...

    async def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None: ...

    async def list(self, user_id: str | None, after: Cursor | None, limit: int) -> list[Account]:
        """Up to `limit` of the user's accounts (everyone's for None) in creation order
        (created_at, id), after the cursor."""
        ...

    async def save(self, account: Account, expected_version: int) -> bool:
        """Store over `expected_version`; False when another change came first."""
        ...

    async def delete(self, account_id: UUID, expected_version: int) -> bool: ...

    async def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        """The user's post and its account, both locked, the account first (one round
        trip); None when the user has no such post."""
        ...


class AsyncIdempotencyKeys(Protocol):
    def read_ahead(self, scope: str, key: str) -> None:
        """A hint: the key's row will be asked for after the unit of work's next
        statement, and may be read in that statement's round trip, after it (after the
        locks it takes). `get` answers the same either way."""
        ...

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None: ...

    async def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        """Raises DuplicateKey (at the latest when the unit of work ends) when a
        concurrent request stored the same key first."""
        ...


class AsyncAuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


class AsyncScheduleQueries(Protocol):
    def read_ahead_beside(self, post_id: UUID, since: datetime) -> None:
        """A hint: `taken_times(the post's account, since or later, exclude_post_id=
        post_id)` will be asked after the unit of work's next statement, and may be
        read in that statement's round trip, after it (after the locks it takes).
        `taken_times` answers the same either way."""
        ...

    async def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        """The account's scheduled and published times from `since` on, in time order."""
        ...


class AsyncCampaigns(Protocol):
    async def add(self, campaign: Campaign) -> None: ...

    async def get(self, campaign_id: UUID) -> Campaign | None: ...

    async def list(self, user_id: str, after: Cursor | None, limit: int) -> list[Campaign]:
        """The user's campaigns, newest first (after: the last one of the page before)."""
        ...


class AsyncMedia(Protocol):
    async def add(self, media: Media, data: bytes) -> None: ...

    async def get(self, media_id: UUID) -> Media | None: ...

    async def kinds(self, user_id: str, media_ids: Sequence[UUID]) -> dict[UUID, MediaKind]:
        """The kinds of the user's media among `media_ids` (others' are left out),
        locked against the retention purge until the unit of work ends."""
        ...

    async def usage(self, user_id: str) -> tuple[int, int]:
        """(items, bytes) the user keeps stored. Holds a per-user lock until the unit
        of work ends, so concurrent uploads are counted one after another."""
        ...


class AsyncErasures(Protocol):
    async def is_erased(self, user_id: str) -> bool:
        """Whether the user's data was erased; holds off an erasure of the user until
        the unit of work ends."""
        ...


class AsyncAnalytics(Protocol):
    """Snapshots and measured posts: the request path's reads, and the X webhook's
    reads and writes (add_snapshot and mark_deleted as the metrics collector's
    ports.analytics.AnalyticsRepository writes them)."""

    async def add_snapshot(self, post_id: UUID, snapshot: Snapshot, source: str) -> None: ...

    async def mark_deleted(self, post_id: UUID, detected_at: datetime) -> None:
        """X deleted the post: no refresh falls due any more."""
        ...

    async def published_by_x_id(self, x_post_ids: Sequence[str]) -> dict[str, PublishedRef]:
        """Our PUBLISHED posts among these X ids, by X id."""
        ...

    async def record_webhook_event(
        self, event_id: str, event_type: str, received_at: datetime
    ) -> bool:
        """False when the event id was seen before (a duplicate delivery)."""
        ...

    async def latest(self, post_id: UUID) -> Snapshot | None: ...

    async def series(self, post_id: UUID) -> list[Snapshot]:
        """Every snapshot of the post, oldest first."""
        ...

    async def deleted_on_x(self, post_id: UUID) -> bool: ...

    async def account_posts(self, account_id: UUID, since: datetime | None) -> list[MeasuredPost]:
        """The account's PUBLISHED posts published at or after `since`."""
        ...

    async def user_posts(self, user_id: str, start: datetime, end: datetime) -> list[MeasuredPost]:
        """The user's posts whose reference time, coalesce(published_at, due_at,
        created_at), is in [start, end)."""
        ...


class AsyncInsights(Protocol):
    """The request path's reads behind the campaign report, account growth, engagement
    prediction and trend alerts (follower_snapshots also on the trend detector's
    ports.analytics.AccountInsights)."""

    async def campaign_posts(self, campaign_id: UUID) -> list[MeasuredPost]:
        """The campaign's posts in every state, by coalesce(published_at, due_at,
        created_at), then id."""
        ...

    async def published_outside(
        self, campaign_id: UUID, account_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> list[MeasuredPost]:
        """The accounts' PUBLISHED posts of no campaign or another one, published in
        [start, end), in publication order."""
        ...

    async def series_of(self, post_ids: Sequence[UUID]) -> dict[UUID, list[Snapshot]]:
        """Every snapshot of each post, oldest first."""
        ...

    async def follower_snapshots(
        self, account_id: UUID, start: datetime, end: datetime
    ) -> list[FollowerSnapshot]:
        """Snapshots collected in [start, end), oldest first."""
        ...

    async def engagement_history(
        self, account_id: UUID | None, published_before: datetime, limit: int
    ) -> list[PastPost]:
        """The newest `limit` PUBLISHED posts with impressions, published before the
        cutoff, of one account (None: of every account), oldest first."""
        ...

    async def trend_alerts_for_post(
        self, post_id: UUID, account_id: UUID, published_at: datetime | None
    ) -> list[TrendAlert]:
        """The post's own alerts, and the account's follower drops whose window holds
        its publication; oldest first."""
        ...


class AsyncSpendLedger(Protocol):
    """The reads of ports.x_spend.SpendLedger the request path awaits."""

    async def rows(self, scope: SpendScope, start: datetime, end: datetime) -> list[SpendRow]: ...

    async def published_posts(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        """Posts in the scope published in [start, end)."""
        ...

    async def budget_states(self, account_ids: Sequence[UUID]) -> dict[UUID, BudgetState]:
        """This month's budget state of each account that has a budget."""
        ...


class AsyncUnitOfWork(Protocol):
    posts: AsyncPosts
    accounts: AsyncAccounts
    idempotency: AsyncIdempotencyKeys
    audit: AsyncAuditLog
    schedule: AsyncScheduleQueries
    campaigns: AsyncCampaigns
    media: AsyncMedia
    erasures: AsyncErasures
    analytics: AsyncAnalytics
    insights: AsyncInsights
    spend: AsyncSpendLedger
    # As in the synchronous unit of work: written to the outbox when it commits.
    outbox: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class AsyncUnitOfWorkFactory(Protocol):
    def __call__(self) -> AsyncUnitOfWork: ...
