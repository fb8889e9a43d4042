"""The metrics collector: refreshes published posts' counts from X on a schedule.

One replica collects at a time (a leader lock per tick). Due posts are grouped
by account: with the author's credentials X returns private metrics, without
them the app's bearer token reads public ones. Each lookup carries up to 100
ids. A 429 stops that caller's lookups until X's reset time.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from post_management.domain.analytics import Counts, Snapshot, next_refresh
from post_management.domain.x_spend import CallKind, Metered, Purpose, ReadPace, refused_read
from post_management.ports.analytics import (
    SOURCE_POLL,
    Cache,
    DueRefresh,
    LeaderLock,
)
from post_management.ports.support import Clock
from post_management.ports.unit_of_work import UnitOfWorkFactory
from post_management.ports.x_api import (
    MAX_LOOKUP_IDS,
    PostMetrics,
    PostsFound,
    RateLimited,
    XApi,
    XCredentials,
)
from post_management.services.analytics.analytics import cache_keys, store_snapshot
from post_management.services.analytics.growth import GrowthCollector
from post_management.services.analytics.trend_alerts import TrendDetector

log = logging.getLogger(__name__)

APP_CALLER = "app"  # bearer reads share the app's quota
DEFAULT_POSTS_PER_TICK = 1000


def counts_from(metrics: PostMetrics) -> Counts:
    # X omits private counts for bearer reads and posts over 30 days: 0 then.
    return Counts(
        impressions=metrics.impressions,
        likes=metrics.likes,
        reposts=metrics.reposts,
        replies=metrics.replies,
        quotes=metrics.quotes,
        bookmarks=metrics.bookmarks,
        url_link_clicks=metrics.url_link_clicks or 0,
        user_profile_clicks=metrics.user_profile_clicks or 0,
    )


def _caller(item: DueRefresh) -> str:
    return f"account:{item.account_id}" if item.credentials else APP_CALLER


class MetricsCollector:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        x_api: XApi,
        clock: Clock,
        cache: Cache,
        lock: LeaderLock,
        *,
        posts_per_tick: int = DEFAULT_POSTS_PER_TICK,
        growth: GrowthCollector | None = None,
        trends: TrendDetector | None = None,
    ) -> None:
        self._uow = uow
        self._x = x_api
        self._clock = clock
        self._cache = cache
        self._lock = lock
        self._posts_per_tick = posts_per_tick
        self._growth = growth
        self._trends = trends
        # Per caller, when X's read quota refills. In memory: after a failover the
        # new leader learns it again from at most one 429.
        self._blocked: dict[str, datetime] = {}
        self._guard = threading.Lock()

    def tick(self) -> int:
        """Refresh what is due, if this replica holds the lock; the number refreshed."""
        with self._lock.hold() as leader:
            if not leader:
                return 0
            refreshed = self.collect()
            if self._growth is not None:
                self._growth.collect()  # daily follower counts, same lock and schedule
            if self._trends is not None:
                self._trends.check_posts()  # young posts against their account's norm
            return refreshed

    def blocked_until(self, caller: str) -> datetime | None:
        with self._guard:
            return self._blocked.get(caller)

    def collect(self) -> int:
        now = self._clock.now()
        with self._uow() as uow:
            due = uow.analytics.due_for_refresh(now, self._posts_per_tick)
            budgets = uow.spend.budget_states(sorted({item.account_id for item in due}))
        paces = {account_id: state.read_pace() for account_id, state in budgets.items()}
        stopped = {a for a, pace in paces.items() if pace is ReadPace.STOPPED}
        if stopped:
            log.info("metrics reads of %d accounts wait: their X budget is committed", len(stopped))
        slow = {a for a, pace in paces.items() if pace is ReadPace.SLOW}
        groups: dict[str, list[DueRefresh]] = defaultdict(list)
        for item in due:
            if item.account_id not in stopped:
                groups[_caller(item)].append(item)
        refreshed = 0
        for caller, items in groups.items():
            for start in range(0, len(items), MAX_LOOKUP_IDS):
                if not self._may_call(caller):
                    break
                stored, go_on = self._lookup(caller, items[start : start + MAX_LOOKUP_IDS], slow)
                refreshed += stored
                if not go_on:
                    break
        return refreshed

    def _may_call(self, caller: str) -> bool:
        until = self.blocked_until(caller)
        if until is None:
            return True
        if self._clock.now() >= until:
            with self._guard:
                self._blocked.pop(caller, None)
            return True
        return False

    def _block(self, caller: str, until: datetime) -> None:
        with self._guard:
            self._blocked[caller] = until
        log.info("metrics reads for %s wait for X's reset at %s", caller, until.isoformat())

    def _lookup(
        self, caller: str, batch: Sequence[DueRefresh], slow: set[UUID]
    ) -> tuple[int, bool]:
        """One GET /2/tweets: (posts refreshed, whether this caller may go on)."""
        first = batch[0].credentials
        creds = XCredentials(first.access_token, first.access_token_secret) if first else None
        outcome = self._x.lookup_posts(creds, [item.x_post_id for item in batch])
        if not isinstance(outcome, PostsFound):
            self._meter_refused(batch)
        if isinstance(outcome, RateLimited):
            self._block(caller, outcome.reset_at)
            return 0, False
        if not isinstance(outcome, PostsFound):
            # Unknown outcome, revoked tokens, ...: the posts stay due for the next tick.
            log.warning("metrics lookup for %s failed: %s", caller, type(outcome).__name__)
            return 0, False
        stored = self._store(batch, outcome, slow)
        spent = outcome.rate_limit.blocked_until() if outcome.rate_limit else None
        if spent is not None:
            self._block(caller, spent)  # the window is used up: the next call would be a 429
            return stored, False
        return stored, True

    @staticmethod
    def _next(item: DueRefresh, now: datetime, slow: set[UUID]) -> datetime:
        """The usual refresh schedule, stretched for accounts near their X budget."""
        interval = next_refresh(item.published_at, now) - now
        if item.account_id in slow:
            interval *= ReadPace.SLOW.value
        return now + interval

    def _meter_refused(self, batch: Sequence[DueRefresh]) -> None:
        """A lookup X did not answer with posts is not billed; it is still recorded."""
        now = self._clock.now()
        accounts = {item.account_id: item for item in batch}
        with self._uow() as uow:
            uow.spend.record(
                [
                    refused_read(now, CallKind.POST_READ, Purpose.METRICS, item.user_id, account_id)
                    for account_id, item in accounts.items()
                ]
            )
            uow.commit()

    def _store(self, batch: Sequence[DueRefresh], found: PostsFound, slow: set[UUID]) -> int:
        """Snapshots of the found posts, deletion marks for the missing; the number found."""
        now = self._clock.now()
        by_x_id = {item.x_post_id: item for item in batch}
        touched = []
        stored = 0
        with self._uow() as uow:
            for post in found.posts:
                item = by_x_id.pop(post.id, None)
                if item is None or post.metrics is None:
                    continue
                counts = counts_from(post.metrics)
                private = post.metrics.url_link_clicks is not None
                snapshot = Snapshot(now, counts, private_known=private)
                store_snapshot(uow, item, snapshot, SOURCE_POLL)
                stored += 1
                uow.analytics.mark_collected(item.post_id, now, self._next(item, now, slow))
                touched.append(item.post_id)
            for x_id in found.missing:
                item = by_x_id.pop(x_id, None)
                if item is not None:
                    log.info("post %s is gone from X", item.post_id)
                    uow.analytics.mark_deleted(item.post_id, now)
                    touched.append(item.post_id)
            for item in by_x_id.values():
                # Neither found nor reported missing: try again on the usual schedule.
                uow.analytics.mark_collected(item.post_id, now, self._next(item, now, slow))
            uow.spend.record(_reads(batch, found, now))
            uow.commit()
        for post_id in touched:
            self._cache.delete(*cache_keys(post_id))
        return stored


def _reads(batch: Sequence[DueRefresh], found: PostsFound, now: datetime) -> list[Metered]:
    """One POST_READ entry per account of the batch: the posts X returned for it (a
    bearer lookup mixes accounts). Missing ids are not billed."""
    by_x_id = {item.x_post_id: item for item in batch}
    returned: dict[UUID, list[str]] = defaultdict(list)
    owners: dict[UUID, str] = {}
    for post in found.posts:
        item = by_x_id.get(post.id)
        if item is not None:
            returned[item.account_id].append(post.id)
            owners[item.account_id] = item.user_id
    return [
        Metered(
            now,
            CallKind.POST_READ,
            Purpose.METRICS,
            owners[account_id],
            account_id,
            units=len(ids),
            resources=tuple(ids),
        )
        for account_id, ids in returned.items()
    ]
