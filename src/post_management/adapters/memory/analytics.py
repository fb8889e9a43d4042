"""The analytics repositories over the memory store (ports/analytics.py): snapshots,
the collector's schedule, webhook event ids, follower counts and trend alerts.

They answer as adapters/db/analytics_repository.py and insights_repository.py do
(tests/contract/test_analytics_contract.py): the same filters, the same order (ties
broken by the post id, or by the order rows were written, as PostgreSQL's serial ids
break them), the same limits. Rows of a post or an account that does not exist are
refused, as PostgreSQL's foreign keys refuse them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

from post_management.adapters.memory.repositories import MissingReference
from post_management.adapters.memory.store import MemoryStore, MetricsState, copied
from post_management.domain.account import AccountState
from post_management.domain.analytics import Snapshot
from post_management.domain.engagement_features import Draft, PastPost
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import MediaKind
from post_management.domain.post import Post, PostState
from post_management.domain.trends import Point
from post_management.ports.analytics import (
    DueRefresh,
    EarlyPoints,
    GrowthDue,
    MeasuredPost,
    PublishedRef,
    TrendAlert,
    YoungPost,
)


def stored_snapshot(snapshot: Snapshot) -> Snapshot:
    """The snapshot as it reads back: private counts X withheld are kept as unknown
    and read as 0 (video views are kept whatever X said of the private ones)."""
    if snapshot.private_known:
        return snapshot
    counts = replace(snapshot.counts, url_link_clicks=0, user_profile_clicks=0)
    return Snapshot(snapshot.collected_at, counts, private_known=False)


def _reference_time(post: Post) -> datetime:
    """coalesce(published_at, due_at, created_at)."""
    return post.published_at or post.scheduled_for or post.created_at


class _Reads:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _series(self, post_id: UUID) -> list[Snapshot]:
        # Kept in the order written; a stable sort keeps it among equal instants.
        rows = self._store.tables.post_metrics.get(post_id, [])
        return sorted(rows, key=lambda snapshot: snapshot.collected_at)

    def _latest(self, post_id: UUID) -> Snapshot | None:
        series = self._series(post_id)
        return series[-1] if series else None

    def _measured(self, post: Post) -> MeasuredPost:
        return MeasuredPost(
            post_id=post.id,
            account_id=post.account_id,
            state=post.state,
            due_at=post.scheduled_for,
            published_at=post.published_at,
            latest=self._latest(post.id),
            x_post_id=post.x_post_id,
        )

    def _posts(self) -> Iterable[Post]:
        return self._store.tables.posts.values()

    def _published(self) -> Iterable[Post]:
        return (p for p in self._posts() if p.state is PostState.PUBLISHED)

    def _require_post(self, post_id: UUID) -> None:
        if post_id not in self._store.tables.posts:
            raise MissingReference("fk_post_metrics_post_id_posts")


class MemoryAnalyticsRepository(_Reads):
    def add_snapshot(self, post_id: UUID, snapshot: Snapshot, source: str) -> None:
        self._require_post(post_id)
        rows = self._store.tables.post_metrics.setdefault(post_id, [])
        rows.append(stored_snapshot(snapshot))

    def latest(self, post_id: UUID) -> Snapshot | None:
        return self._latest(post_id)

    def series(self, post_id: UUID) -> list[Snapshot]:
        return self._series(post_id)

    def deleted_on_x(self, post_id: UUID) -> bool:
        state = self._store.tables.metrics_state.get(post_id)
        return state is not None and state.deleted_on_x

    def mark_collected(self, post_id: UUID, collected_at: datetime, next_at: datetime) -> None:
        self._require_post(post_id)
        state = self._store.tables.metrics_state.setdefault(post_id, MetricsState(next_at))
        state.last_collected_at = collected_at
        state.next_collect_at = next_at

    def mark_deleted(self, post_id: UUID, detected_at: datetime) -> None:
        self._require_post(post_id)
        states = self._store.tables.metrics_state
        if post_id not in states:
            states[post_id] = MetricsState(next_collect_at=detected_at)
        states[post_id].deleted_on_x = True
        states[post_id].deleted_detected_at = detected_at

    def due_for_refresh(self, now: datetime, limit: int) -> list[DueRefresh]:
        tables = self._store.tables
        due: list[tuple[datetime, Post]] = []
        for post in self._published():
            if not post.x_post_id or post.published_at is None:
                continue
            state = tables.metrics_state.get(post.id)
            if state is not None and state.deleted_on_x:
                continue
            at = state.next_collect_at if state is not None else post.published_at
            if at <= now:
                due.append((at, post))
        due.sort(key=lambda item: (item[0], item[1].id))
        found = []
        for _, post in due[:limit]:
            assert post.published_at is not None
            account = tables.accounts[post.account_id]
            found.append(
                DueRefresh(
                    post_id=post.id,
                    account_id=post.account_id,
                    user_id=post.user_id,
                    x_post_id=post.x_post_id,
                    published_at=post.published_at,
                    credentials=account.credentials,
                )
            )
        return found

    def published_by_x_id(self, x_post_ids: Sequence[str]) -> dict[str, PublishedRef]:
        wanted = set(x_post_ids)
        return {
            p.x_post_id: PublishedRef(p.id, p.account_id, p.user_id, p.x_post_id)
            for p in self._published()
            if p.x_post_id in wanted
        }

    def account_posts(self, account_id: UUID, since: datetime | None) -> list[MeasuredPost]:
        posts = [
            p
            for p in self._published()
            if p.account_id == account_id
            and (since is None or (p.published_at is not None and p.published_at >= since))
        ]
        # PostgreSQL sorts a NULL published_at last.
        posts.sort(key=lambda p: (p.published_at is None, p.published_at or p.created_at, p.id))
        return [self._measured(p) for p in posts]

    def user_posts(self, user_id: str, start: datetime, end: datetime) -> list[MeasuredPost]:
        posts = [
            p for p in self._posts() if p.user_id == user_id and start <= _reference_time(p) < end
        ]
        posts.sort(key=lambda p: (_reference_time(p), p.id))
        return [self._measured(p) for p in posts]

    def record_webhook_event(self, event_id: str, event_type: str, received_at: datetime) -> bool:
        events = self._store.tables.webhook_events
        if event_id in events:
            return False
        events[event_id] = (event_type, received_at)
        return True


class MemoryAccountInsights(_Reads):
    def campaign_posts(self, campaign_id: UUID) -> list[MeasuredPost]:
        posts = [p for p in self._posts() if p.campaign_id == campaign_id]
        posts.sort(key=lambda p: (_reference_time(p), p.id))
        return [self._measured(p) for p in posts]

    def published_outside(
        self, campaign_id: UUID, account_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> list[MeasuredPost]:
        accounts = set(account_ids)
        posts = [
            p
            for p in self._published()
            if p.account_id in accounts
            and p.published_at is not None
            and start <= p.published_at < end
            and p.campaign_id != campaign_id
        ]
        posts.sort(key=lambda p: (p.published_at, p.id))
        return [self._measured(p) for p in posts]

    def series_of(self, post_ids: Sequence[UUID]) -> dict[UUID, list[Snapshot]]:
        return {
            post_id: series
            for post_id in dict.fromkeys(post_ids)
            if (series := self._series(post_id))
        }

    def add_follower_snapshot(self, account_id: UUID, snapshot: FollowerSnapshot) -> bool:
        if account_id not in self._store.tables.accounts:
            raise MissingReference("fk_account_growth_account_id_accounts")
        days = self._store.tables.account_growth.setdefault(account_id, {})
        if snapshot.day in days:
            return False
        days[snapshot.day] = snapshot
        return True

    def follower_snapshots(
        self, account_id: UUID, start: datetime, end: datetime
    ) -> list[FollowerSnapshot]:
        days = self._store.tables.account_growth.get(account_id, {})
        found = [s for s in days.values() if start <= s.collected_at < end]
        return sorted(found, key=lambda s: s.collected_at)

    def growth_due(self, day_start: datetime, limit: int) -> list[GrowthDue]:
        tables = self._store.tables
        stored = [
            account
            for account in sorted(tables.accounts.values(), key=lambda a: a.id)
            if account.state is AccountState.ACTIVE
            and (account.credentials is not None or account.credentials_unreadable)
            and not any(
                s.collected_at >= day_start
                for s in tables.account_growth.get(account.id, {}).values()
            )
        ]
        # Credentials no key reads take their place in the limit, as stored rows do,
        # but cannot read the account's counts.
        return [
            GrowthDue(account.id, account.user_id, credentials)
            for account in stored[:limit]
            if (credentials := account.credentials) is not None
        ]

    def engagement_history(
        self, account_id: UUID | None, published_before: datetime, limit: int
    ) -> list[PastPost]:
        tables = self._store.tables
        measured = []
        for post in self._published():
            if account_id is not None and post.account_id != account_id:
                continue
            if post.published_at is None or post.published_at >= published_before:
                continue
            latest = self._latest(post.id)
            if latest is not None and latest.counts.impressions > 0:
                measured.append((post, post.published_at, latest))
        measured.sort(key=lambda item: (item[1], item[0].id), reverse=True)
        newest = sorted(measured[:limit], key=lambda item: (item[1], item[0].id))
        return [
            PastPost(
                account_id=str(post.account_id),
                timezone=tables.accounts[post.account_id].timezone,
                draft=Draft(post.text, self._media_kind(post), published_at),
                impressions=latest.counts.impressions,
                engagement_rate=latest.counts.engagement_rate,
            )
            for post, published_at, latest in newest
        ]

    def _media_kind(self, post: Post) -> MediaKind | None:
        """The kind of the first media item; legacy X media ids count as images."""
        if post.attachment_ids:
            found = self._store.tables.media.get(post.attachment_ids[0])
            if found is not None:
                return found[0].kind
        return MediaKind.IMAGE if post.media_ids else None

    def young_posts(
        self, published_after: datetime, measured_after: datetime, limit: int
    ) -> list[YoungPost]:
        young = [
            p
            for p in self._published()
            if p.published_at is not None
            and p.published_at > published_after
            and any(s.collected_at > measured_after for s in self._series(p.id))
        ]
        young.sort(key=lambda p: (p.published_at, p.id))
        return [
            YoungPost(p.id, p.account_id, p.user_id, published_at)
            for p in young[:limit]
            if (published_at := p.published_at) is not None
        ]

    def early_points(
        self, account_id: UUID, published_after: datetime, window: timedelta, limit: int
    ) -> dict[UUID, EarlyPoints]:
        posts = [
            p
            for p in self._published()
            if p.account_id == account_id
            and p.published_at is not None
            and p.published_at > published_after
        ]
        posts.sort(key=lambda p: p.published_at or p.created_at, reverse=True)
        found: dict[UUID, EarlyPoints] = {}
        for post in sorted(posts[:limit], key=lambda p: p.id):
            published_at = post.published_at
            assert published_at is not None
            for snapshot in self._series(post.id):
                if snapshot.collected_at <= published_at + window:
                    entry = found.setdefault(post.id, EarlyPoints(published_at, []))
                    point = Point(snapshot.collected_at - published_at, snapshot.counts.engagements)
                    entry.points.append(point)
        return found

    def add_trend_alert(self, alert: TrendAlert) -> bool:
        tables = self._store.tables
        if alert.account_id not in tables.accounts:
            raise MissingReference("fk_trend_alerts_account_id_accounts")
        if alert.post_id is not None:
            self._require_post(alert.post_id)
        if any(kept.dedup_key == alert.dedup_key for kept in tables.trend_alerts):
            return False
        tables.trend_alerts.append(copied(alert))
        return True

    def trend_alerts_for_post(
        self, post_id: UUID, account_id: UUID, published_at: datetime | None
    ) -> list[TrendAlert]:
        found = [
            alert
            for alert in self._store.tables.trend_alerts
            if alert.post_id == post_id
            or (
                alert.post_id is None
                and alert.account_id == account_id
                and published_at is not None
                and alert.window_start is not None
                and alert.window_start <= published_at < alert.detected_at
            )
        ]
        # Stable: alerts detected at the same instant keep the order they were added.
        return sorted(found, key=lambda alert: alert.detected_at)
