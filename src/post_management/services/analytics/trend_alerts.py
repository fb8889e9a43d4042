"""Trend alerts on the metrics tick: young posts far from their account's norm, and
follower drops (domain/trends.py). Each finding is stored once (its dedup key) and, in
the same transaction, emitted as `analytics.trend_detected`; GetPostAnalytics shows
it among the post's insights."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from uuid import UUID

from post_management.domain import events
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.trends import (
    ABOVE,
    TREND_WINDOW,
    FollowerDrop,
    PostTrend,
    follower_drop,
    post_trend,
)
from post_management.ports.analytics import (
    Cache,
    TrendAlert,
    YoungPost,
)
from post_management.ports.support import Clock
from post_management.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from post_management.services.analytics.analytics import analytics_key

log = logging.getLogger(__name__)

PEER_HISTORY = timedelta(days=90)  # peers: the account's posts of this period
MAX_PEERS = 200  # newest posts of an account read as peers
MAX_YOUNG = 500  # young posts checked per tick
# Snapshots a little past the window let a peer be interpolated at the window's end.
EARLY_SLACK = timedelta(hours=1)


def _store(uow: UnitOfWork, alert: TrendAlert, user_id: str) -> bool:
    """Keeps the alert and emits its event, unless it was found before."""
    if not uow.insights.add_trend_alert(alert):
        return False
    uow.outbox.add(
        events.TrendDetected(
            account_id=alert.account_id,
            user_id=user_id,
            post_id=alert.post_id,
            kind=events.TrendKind(alert.kind),
            metric=alert.metric,
            observed=alert.observed,
            expected=alert.expected,
            score=alert.score,
            age=alert.age,
            summary=alert.summary,
            occurred_at=alert.detected_at,
        ),
    )
    return True


def post_alert(post: YoungPost, trend: PostTrend, now: datetime) -> TrendAlert:
    kind = (
        events.TrendKind.POST_ABOVE_NORM
        if trend.direction == ABOVE
        else events.TrendKind.POST_BELOW_NORM
    )
    return TrendAlert(
        dedup_key=f"post:{post.post_id}:{trend.direction}",
        account_id=post.account_id,
        post_id=post.post_id,
        kind=kind,
        metric="engagements",
        observed=trend.observed,
        expected=trend.expected,
        score=trend.z,
        summary=trend.summary(),
        detected_at=now,
        age=trend.age,
    )


def drop_alert(account_id: UUID, day: str, drop: FollowerDrop) -> TrendAlert:
    return TrendAlert(
        dedup_key=f"followers:{account_id}:{day}",
        account_id=account_id,
        post_id=None,
        kind=events.TrendKind.FOLLOWER_DROP,
        metric="followers",
        observed=float(drop.current),
        expected=float(drop.previous),
        score=drop.change,
        summary=drop.summary(),
        detected_at=drop.at,
        window_start=drop.since,
    )


class TrendDetector:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, cache: Cache) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache
        # Snapshots before this were checked by an earlier tick. In memory: after a
        # restart the whole window is checked again, and dedup keys stop repeats.
        self._checked_until: datetime | None = None

    def check_posts(self) -> int:
        """Alerts raised this tick for young posts measured since the last check."""
        now = self._clock.now()
        since = self._checked_until or now - TREND_WINDOW
        with self._uow() as uow:
            young = uow.insights.young_posts(now - TREND_WINDOW, since, MAX_YOUNG)
        self._checked_until = now
        by_account: dict[UUID, list[YoungPost]] = defaultdict(list)
        for post in young:
            by_account[post.account_id].append(post)
        raised: list[UUID] = []
        for account_id, posts in by_account.items():
            with self._uow() as uow:
                early = uow.insights.early_points(
                    account_id, now - PEER_HISTORY, TREND_WINDOW + EARLY_SLACK, MAX_PEERS
                )
                for post in posts:
                    mine = early.get(post.post_id)
                    if mine is None:
                        continue
                    within = [p for p in mine.points if p.age <= TREND_WINDOW]
                    if not within:
                        continue
                    peers = [
                        other.points
                        for other_id, other in early.items()
                        if other_id != post.post_id and other.published_at < post.published_at
                    ]
                    trend = post_trend(within, peers, max(p.age for p in within))
                    if trend is not None and _store(
                        uow, post_alert(post, trend, now), post.user_id
                    ):
                        raised.append(post.post_id)
                uow.commit()
        for post_id in raised:
            # The post's analytics list the alert at once.
            self._cache.delete(analytics_key(post_id))
        if raised:
            log.info("trend alerts raised for %d posts", len(raised))
        return len(raised)

    def check_followers(
        self, uow: UnitOfWork, account_id: UUID, snapshot: FollowerSnapshot
    ) -> bool:
        """In the transaction that stored today's snapshot: an alert when the followers
        fell against the previous snapshot (the last of the three days before)."""
        before = uow.insights.follower_snapshots(
            account_id, snapshot.collected_at - timedelta(days=3), snapshot.collected_at
        )
        earlier = [s for s in before if s.day < snapshot.day]
        if not earlier:
            return False
        previous = earlier[-1]
        drop = follower_drop(
            previous.followers, snapshot.followers, previous.collected_at, snapshot.collected_at
        )
        account = uow.accounts.get(account_id)
        if drop is None or account is None:
            return False
        return _store(uow, drop_alert(account_id, snapshot.day.isoformat(), drop), account.user_id)
