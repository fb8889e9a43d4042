"""The in-memory "database": every table the memory adapters share, one lock.

The unit of work and the publish queue read and write the same rows, as the SQL
adapters share PostgreSQL's; the store's clock plays the database's now().
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from post_management.domain.account import Account, Credentials
from post_management.domain.analytics import Snapshot
from post_management.domain.campaigns import Campaign
from post_management.domain.events import DomainEvent
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import Media
from post_management.domain.post import Post
from post_management.ports.analytics import TrendAlert
from post_management.ports.repositories import AuditEntry, IdempotencyRecord
from post_management.ports.support import Clock


@dataclass
class PostEngine:
    """The queue's columns of a post row, beside the domain's."""

    attempt_id: UUID | None = None
    lease_expires_at: datetime | None = None
    publish_started_at: datetime | None = None
    reconcile_after: datetime | None = None
    unknown_cause: str = ""


@dataclass
class AccountEngine:
    rate_limited_until: datetime | None = None
    consecutive_failures: int = 0


@dataclass
class Attempt:
    post_id: UUID
    attempt_id: UUID
    number: int
    started_at: datetime
    sent_at: datetime | None = None
    x_media_ids: tuple[str, ...] = ()
    finished_at: datetime | None = None
    outcome: str = ""
    detail: str = ""
    x_post_id: str = ""


@dataclass(frozen=True)
class XIdOwner:
    post_id: UUID
    segment_index: int
    recorded_at: datetime


@dataclass(frozen=True)
class SpendEntry:
    occurred_at: datetime
    user_id: str
    account_id: UUID | None
    post_id: UUID | None
    campaign_id: UUID | None
    kind: str
    purpose: str
    outcome: str
    units: int
    charged_units: int
    cost_micros: int


@dataclass(frozen=True)
class XRemoval:
    """A published post of an erased user still to delete on X (x_removals)."""

    id: int
    user_hash: str
    x_post_id: str
    credentials: Credentials | None = field(repr=False)
    requested_at: datetime
    attempts: int = 0
    last_error: str = ""
    done_at: datetime | None = None


@dataclass
class MetricsState:
    """The collector's schedule of a published post, and whether X still has it."""

    next_collect_at: datetime
    last_collected_at: datetime | None = None
    deleted_on_x: bool = False
    deleted_detected_at: datetime | None = None


@dataclass
class Tables:
    posts: dict[UUID, Post] = field(default_factory=dict)
    post_engine: dict[UUID, PostEngine] = field(default_factory=dict)
    accounts: dict[UUID, Account] = field(default_factory=dict)
    account_engine: dict[UUID, AccountEngine] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    x_ids: dict[tuple[UUID, str], XIdOwner] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    audit: list[tuple[datetime, AuditEntry]] = field(default_factory=list)
    outbox: list[DomainEvent] = field(default_factory=list)
    media: dict[UUID, tuple[Media, bytes]] = field(default_factory=dict)
    media_uploads: dict[tuple[UUID, UUID], tuple[str, datetime]] = field(default_factory=dict)
    campaigns: dict[UUID, Campaign] = field(default_factory=dict)
    erased_users: set[str] = field(default_factory=set)
    x_removals: list[XRemoval] = field(default_factory=list)
    spend: list[SpendEntry] = field(default_factory=list)
    read_charges: set[tuple[date, str, str]] = field(default_factory=set)
    # Analytics (adapters/memory/analytics.py): each post's snapshots in the order
    # written, the collector's schedule, webhook event ids, each account's follower
    # counts by day, trend alerts in the order added.
    post_metrics: dict[UUID, list[Snapshot]] = field(default_factory=dict)
    metrics_state: dict[UUID, MetricsState] = field(default_factory=dict)
    webhook_events: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    account_growth: dict[UUID, dict[date, FollowerSnapshot]] = field(default_factory=dict)
    trend_alerts: list[TrendAlert] = field(default_factory=list)

    def drop_post_rows(self, post_ids: set[UUID]) -> None:
        """What goes with deleted posts (ON DELETE CASCADE): their attempts and
        analytics rows."""
        self.attempts = [a for a in self.attempts if a.post_id not in post_ids]
        for post_id in post_ids:
            self.post_engine.pop(post_id, None)
            self.post_metrics.pop(post_id, None)
            self.metrics_state.pop(post_id, None)
        self.trend_alerts = [a for a in self.trend_alerts if a.post_id not in post_ids]

    def drop_media(self, media_ids: set[UUID]) -> int:
        """Deletes the media and what goes with them (ON DELETE CASCADE): their uploads
        to X. Answers how many went."""
        for media_id in media_ids:
            del self.media[media_id]
        self.media_uploads = {
            key: value for key, value in self.media_uploads.items() if key[0] not in media_ids
        }
        return len(media_ids)


class MemoryStore:
    """Rows and the lock that makes each unit of work and queue call atomic."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tables = Tables()
        # Re-entrant: a unit of work holds it throughout, as a serializable transaction.
        self.lock = threading.RLock()
        # An asynchronous unit of work holds the lock across awaits, on its loop's
        # thread: a synchronous one opened meanwhile would wait forever (from a worker
        # thread) or share it unguarded (on the loop's thread), so it is refused.
        self.async_unit_open = False

    def now(self) -> datetime:
        return self.clock.now()

    def snapshot(self) -> Tables:
        return copy.deepcopy(self.tables)

    def restore(self, saved: Tables) -> None:
        self.tables = saved


def copied(value: Any) -> Any:
    """Rows leave and enter the store as copies: a caller's change is not a write."""
    return copy.deepcopy(value)
