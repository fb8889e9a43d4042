"""The unit of work's repositories over the memory store (ports/repositories.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from post_management.adapters.memory.store import AccountEngine, MemoryStore, PostEngine, copied
from post_management.domain.account import Account
from post_management.domain.campaigns import Campaign
from post_management.domain.events import DomainEvent, EventLog
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import UNDECIDED_STATES, Post, PostState
from post_management.domain.privacy import Pseudonyms
from post_management.ports.repositories import (
    AuditEntry,
    Cursor,
    DuplicateKey,
    IdempotencyRecord,
    PostFilter,
)
from post_management.ports.schedule_queries import TakenTime

TAKEN_STATES = (PostState.SCHEDULED, PostState.PUBLISHING, PostState.PUBLISHED)


class MissingReference(Exception):
    """A row names another that does not exist (PostgreSQL's foreign key violation,
    which no port translates: the use cases look the account up first)."""


def _after(created_at: datetime, row_id: UUID, cursor: Cursor | None) -> bool:
    return cursor is None or (created_at, row_id) > (cursor.created_at, cursor.id)


class MemoryPostRepository:
    def __init__(self, store: MemoryStore, outbox: EventLog) -> None:
        self._store = store
        # The unit of work's: a stored post's recorded events go there.
        self._outbox = outbox

    def add(self, post: Post) -> None:
        tables = self._store.tables
        if post.id in tables.posts:
            raise DuplicateKey("pk_posts")
        if post.account_id not in tables.accounts:
            raise MissingReference("fk_posts_account_id_accounts")
        if post.state is PostState.PUBLISHING and _publishing(self._store, post.account_id):
            raise DuplicateKey("uq_posts_one_publishing_per_account")
        self._outbox.add(*post.pull_events())
        tables.posts[post.id] = copied(post)
        tables.post_engine[post.id] = PostEngine()

    def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None:
        found = self._store.tables.posts.get(post_id)
        return copied(found) if found is not None else None

    def list(self, where: PostFilter, after: Cursor | None, limit: int) -> list[Post]:
        rows = [
            post
            for post in self._store.tables.posts.values()
            if (where.user_id is None or post.user_id == where.user_id)
            and (where.account_id is None or post.account_id == where.account_id)
            and (where.state is None or post.state is where.state)
            and (where.states is None or post.state in where.states)
            and (
                not where.error_contains
                or where.error_contains.casefold() in post.last_error.casefold()
            )
            and _after(post.created_at, post.id, after)
        ]
        rows.sort(key=lambda post: (post.created_at, post.id))
        return [copied(post) for post in rows[:limit]]

    def save(self, post: Post, expected_version: int) -> bool:
        stored = self._store.tables.posts.get(post.id)
        if stored is None or stored.version != expected_version:
            return False
        self._outbox.add(*post.pull_events())
        row = copied(post)
        row.created_at = stored.created_at
        row.version = expected_version + 1
        self._store.tables.posts[post.id] = row
        post.version = expected_version + 1
        return True

    def delete(self, post_id: UUID, expected_version: int) -> bool:
        tables = self._store.tables
        stored = tables.posts.get(post_id)
        if stored is None or stored.version != expected_version:
            return False
        del tables.posts[post_id]
        tables.drop_post_rows({post_id})
        return True

    def count_active_for_account(self, account_id: UUID) -> int:
        return sum(
            1
            for post in self._store.tables.posts.values()
            if post.account_id == account_id and post.state in UNDECIDED_STATES
        )


def _publishing(store: MemoryStore, account_id: UUID) -> bool:
    return any(
        p.account_id == account_id and p.state is PostState.PUBLISHING
        for p in store.tables.posts.values()
    )


class MemoryAccountRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def add(self, account: Account) -> None:
        tables = self._store.tables
        if account.id in tables.accounts:
            raise DuplicateKey("pk_accounts")
        if self._find(account.user_id, account.x_user_id) is not None:
            raise DuplicateKey("uq_accounts_user_id_x_user_id")
        row = copied(account)
        row.x_budget_reached_month = None  # the engine's column, never the caller's
        tables.accounts[account.id] = row
        tables.account_engine[account.id] = AccountEngine()

    def _find(self, user_id: str, x_user_id: str) -> Account | None:
        for account in self._store.tables.accounts.values():
            if account.user_id == user_id and account.x_user_id == x_user_id:
                return account
        return None

    def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None:
        found = self._store.tables.accounts.get(account_id)
        return copied(found) if found is not None else None

    def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        post = self._store.tables.posts.get(post_id)
        if post is None or post.user_id != user_id:
            return None
        account = self.get(post.account_id)
        return (account, copied(post)) if account is not None else None

    def find_by_x_user(self, user_id: str, x_user_id: str) -> Account | None:
        found = self._find(user_id, x_user_id)
        return copied(found) if found is not None else None

    def list(self, user_id: str | None, after: Cursor | None, limit: int) -> list[Account]:
        rows = [
            account
            for account in self._store.tables.accounts.values()
            if (user_id is None or account.user_id == user_id)
            and _after(account.created_at, account.id, after)
        ]
        rows.sort(key=lambda account: (account.created_at, account.id))
        return [copied(account) for account in rows[:limit]]

    def save(self, account: Account, expected_version: int) -> bool:
        tables = self._store.tables
        stored = tables.accounts.get(account.id)
        if stored is None or stored.version != expected_version:
            return False
        other = self._find(account.user_id, account.x_user_id)
        if other is not None and other.id != account.id:
            raise DuplicateKey("uq_accounts_user_id_x_user_id")
        row = copied(account)
        row.created_at = stored.created_at
        row.version = expected_version + 1
        # A new budget re-opens the month; any other change leaves the engine's mark.
        same_budget = stored.x_monthly_budget_micros == account.x_monthly_budget_micros
        row.x_budget_reached_month = stored.x_budget_reached_month if same_budget else None
        tables.accounts[account.id] = row
        account.version = expected_version + 1
        return True

    def delete(self, account_id: UUID, expected_version: int) -> bool:
        tables = self._store.tables
        stored = tables.accounts.get(account_id)
        if stored is None or stored.version != expected_version:
            return False
        del tables.accounts[account_id]
        tables.account_engine.pop(account_id, None)
        # The posts go with their account (with their attempts and analytics rows), and
        # so do the account's X ids, media uploads, follower counts and trend alerts
        # (ON DELETE CASCADE); a post's own delete leaves its X ids claimed.
        gone = {p.id for p in tables.posts.values() if p.account_id == account_id}
        for post_id in gone:
            del tables.posts[post_id]
        tables.drop_post_rows(gone)
        tables.x_ids = {key: v for key, v in tables.x_ids.items() if key[0] != account_id}
        uploads = tables.media_uploads
        tables.media_uploads = {key: v for key, v in uploads.items() if key[1] != account_id}
        tables.account_growth.pop(account_id, None)
        tables.trend_alerts = [a for a in tables.trend_alerts if a.account_id != account_id]
        return True


class MemoryIdempotencyKeys:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self._store.tables.idempotency.get((scope, key))

    def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        keys = self._store.tables.idempotency
        if (scope, key) in keys:
            raise DuplicateKey("pk_idempotency_keys")
        keys[(scope, key)] = record


class MemoryAuditLog:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def record(self, entry: AuditEntry) -> None:
        self._store.tables.audit.append((self._store.now(), entry))


def write_events(store: MemoryStore, events: Sequence[DomainEvent]) -> None:
    """The memory outbox's one writer, as adapters/db/outbox.py is PostgreSQL's: the
    events in order, an event id stored before refused. It keeps the typed events:
    turning them into messages is the Kafka adapter's, and no relay reads this store."""
    outbox = store.tables.outbox
    stored = {event.event_id for event in outbox}
    for event in events:
        if event.event_id in stored:
            raise DuplicateKey("uq_outbox_event_id")
        stored.add(event.event_id)
        outbox.append(event)


class MemoryScheduleQueries:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        found = []
        for post in self._store.tables.posts.values():
            at = post.published_at or post.scheduled_for
            if (
                post.account_id == account_id
                and post.state in TAKEN_STATES
                and at is not None
                and at >= since
                and post.id != exclude_post_id
            ):
                found.append(TakenTime(post.id, post.text, at))
        return sorted(found, key=lambda taken: (taken.at, taken.post_id))


class MemoryMediaRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def add(self, media: Media, data: bytes) -> None:
        if media.id in self._store.tables.media:
            raise DuplicateKey("pk_media")
        self._store.tables.media[media.id] = (media, bytes(data))

    def get(self, media_id: UUID) -> Media | None:
        found = self._store.tables.media.get(media_id)
        return found[0] if found else None

    def usage(self, user_id: str) -> tuple[int, int]:
        mine = [m for m, _ in self._store.tables.media.values() if m.user_id == user_id]
        return len(mine), sum(m.size_bytes for m in mine)

    def kinds(self, user_id: str, media_ids: Sequence[UUID]) -> dict[UUID, MediaKind]:
        found = {}
        for media_id in media_ids:
            row = self._store.tables.media.get(media_id)
            if row is not None and row[0].user_id == user_id:
                found[media_id] = row[0].kind
        return found


class MemoryMediaUploads:
    """MediaUploads (each call on its own, as the SQL one's own transactions)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def uploaded(
        self, account_id: UUID, media_ids: Sequence[UUID], since: datetime
    ) -> dict[UUID, str]:
        with self._store.lock:
            uploads = self._store.tables.media_uploads
            found = {}
            for media_id in media_ids:
                row = uploads.get((media_id, account_id))
                if row is not None and row[1] >= since:
                    found[media_id] = row[0]
            return found

    def content(self, media_id: UUID) -> tuple[bytes, str] | None:
        with self._store.lock:
            row = self._store.tables.media.get(media_id)
            return (row[1], row[0].mime_type) if row else None

    def record(self, media_id: UUID, account_id: UUID, x_media_id: str, at: datetime) -> None:
        with self._store.lock:
            # A later upload replaces an expired one.
            self._store.tables.media_uploads[(media_id, account_id)] = (x_media_id, at)


class MemoryCampaignRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def add(self, campaign: Campaign) -> None:
        if campaign.id in self._store.tables.campaigns:
            raise DuplicateKey("pk_campaigns")
        self._store.tables.campaigns[campaign.id] = copied(campaign)

    def get(self, campaign_id: UUID) -> Campaign | None:
        found = self._store.tables.campaigns.get(campaign_id)
        return copied(found) if found is not None else None

    def list(self, user_id: str, after: Cursor | None, limit: int) -> list[Campaign]:
        rows = [
            c
            for c in self._store.tables.campaigns.values()
            if c.user_id == user_id
            and (after is None or (c.created_at, c.id) < (after.created_at, after.id))
        ]
        rows.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        return [copied(c) for c in rows[:limit]]


class MemoryErasureTombstones:
    """Tombstones are kept by pseudonym, as the SQL table keeps them."""

    def __init__(self, store: MemoryStore, pseudonyms: Pseudonyms) -> None:
        self._store = store
        self._pseudonyms = pseudonyms

    def is_erased(self, user_id: str) -> bool:
        return any(
            form in self._store.tables.erased_users for form in self._pseudonyms.every_form(user_id)
        )

    def erase(self, user_id: str) -> None:
        """Write the user's tombstone (what the privacy store's erasure leaves)."""
        self._store.tables.erased_users.add(self._pseudonyms.of(user_id))
