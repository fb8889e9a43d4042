"""What the analytics use cases need: snapshot storage, a cache and a leader lock."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from post_management.domain.account import Credentials
from post_management.domain.analytics import Snapshot
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.post import PostState
from post_management.domain.trends import Point
from post_management.ports.cache import AsyncCache as AsyncCache  # the cache ports, re-exported
from post_management.ports.cache import Cache as Cache

SOURCE_POLL = "poll"  # a GET /2/tweets refresh
SOURCE_WEBHOOK = "webhook"  # counts moved by an Account Activity event


@dataclass(frozen=True)
class DueRefresh:
    """A published post whose metrics are due, with what the lookup needs."""

    post_id: UUID
    account_id: UUID
    user_id: str
    x_post_id: str
    published_at: datetime
    credentials: Credentials | None  # the author's, when the account has them


@dataclass(frozen=True)
class PublishedRef:
    post_id: UUID
    account_id: UUID
    user_id: str
    x_post_id: str


@dataclass(frozen=True)
class MeasuredPost:
    """A post of an account or user with its latest snapshot (None: not measured)."""

    post_id: UUID
    account_id: UUID
    state: PostState
    due_at: datetime | None
    published_at: datetime | None
    latest: Snapshot | None
    x_post_id: str = ""


class AnalyticsRepository(Protocol):
    """The metrics collector's writes and schedule (the reads of snapshots and
    measured posts are the request path's: AsyncAnalytics)."""

    def add_snapshot(self, post_id: UUID, snapshot: Snapshot, source: str) -> None: ...

    def mark_collected(self, post_id: UUID, collected_at: datetime, next_at: datetime) -> None: ...

    def mark_deleted(self, post_id: UUID, detected_at: datetime) -> None: ...

    def due_for_refresh(self, now: datetime, limit: int) -> list[DueRefresh]:
        """Published posts on X (not known deleted) whose next refresh is due, most
        overdue first; never-measured posts count as due since publishing."""
        ...


@dataclass(frozen=True)
class GrowthDue:
    """An account whose follower counts have not been read today."""

    account_id: UUID
    user_id: str
    credentials: Credentials


@dataclass(frozen=True)
class YoungPost:
    post_id: UUID
    account_id: UUID
    user_id: str
    published_at: datetime


@dataclass(frozen=True)
class EarlyPoints:
    """A post's engagements over its first hours."""

    published_at: datetime
    points: list[Point]


@dataclass(frozen=True)
class TrendAlert:
    """A stored finding; `dedup_key` makes it once-only."""

    dedup_key: str
    account_id: UUID
    post_id: UUID | None
    kind: str  # a TrendKind value (domain/events.py)
    metric: str
    observed: float
    expected: float
    score: float
    summary: str
    detected_at: datetime
    age: timedelta | None = None
    window_start: datetime | None = None  # follower drops: the posts it covers


class AccountInsights(Protocol):
    """Reads and writes behind account growth, audience activity and trend alerts (the
    campaign report reads through the asynchronous unit of work's AsyncInsights)."""

    def add_follower_snapshot(self, account_id: UUID, snapshot: FollowerSnapshot) -> bool:
        """Keeps the day's first snapshot; False when that day already had one."""
        ...

    def follower_snapshots(
        self, account_id: UUID, start: datetime, end: datetime
    ) -> list[FollowerSnapshot]:
        """Snapshots collected in [start, end), oldest first."""
        ...

    def growth_due(self, day_start: datetime, limit: int) -> list[GrowthDue]:
        """ACTIVE accounts with credentials and no snapshot collected since day_start."""
        ...

    def young_posts(
        self, published_after: datetime, measured_after: datetime, limit: int
    ) -> list[YoungPost]:
        """PUBLISHED posts published after the first instant with a snapshot collected
        after the second."""
        ...

    def early_points(
        self, account_id: UUID, published_after: datetime, window: timedelta, limit: int
    ) -> dict[UUID, EarlyPoints]:
        """The newest `limit` PUBLISHED posts of the account published after the instant,
        each with its snapshots of the first `window` after publication."""
        ...

    def add_trend_alert(self, alert: TrendAlert) -> bool:
        """False when an alert with the same dedup key exists (nothing stored)."""
        ...


class LeaderLock(Protocol):
    def hold(self) -> AbstractContextManager[bool]:
        """Try to become the one active holder for the block; yields whether it did."""
        ...
