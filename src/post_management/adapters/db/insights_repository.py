"""Reads behind campaign analytics, account growth and audience activity, in Core SQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.analytics_schema import account_growth, trend_alerts
from post_management.adapters.db.measured_rows import (
    LATEST_SNAPSHOT,
    snapshot_from_row,
)
from post_management.adapters.db.stored_credentials import unseal_or_none
from post_management.domain.analytics import Snapshot
from post_management.domain.engagement_features import Draft, PastPost
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import MediaKind
from post_management.domain.trends import Point
from post_management.ports.analytics import (
    EarlyPoints,
    GrowthDue,
    TrendAlert,
    YoungPost,
)

CAMPAIGN_POSTS = text(
    f"""
    SELECT p.id, p.account_id, p.state, p.due_at, p.published_at, p.x_post_id, l.*
    FROM posts p {LATEST_SNAPSHOT}
    WHERE p.campaign_id = :campaign_id
    ORDER BY coalesce(p.published_at, p.due_at, p.created_at), p.id
    """  # noqa: S608 - only the constant lateral join is interpolated
)

OUTSIDE = text(
    f"""
    SELECT p.id, p.account_id, p.state, p.due_at, p.published_at, p.x_post_id, l.*
    FROM posts p {LATEST_SNAPSHOT}
    WHERE p.account_id = ANY(:account_ids) AND p.state = 'PUBLISHED'
      AND p.published_at >= :start AND p.published_at < :end
      AND p.campaign_id IS DISTINCT FROM :campaign_id
    ORDER BY p.published_at, p.id
    """  # noqa: S608 - only the constant lateral join is interpolated
)

SERIES_OF = text(
    """
    SELECT m.post_id, m.collected_at, m.impressions, m.likes, m.reposts, m.replies, m.quotes,
           m.bookmarks, m.url_link_clicks, m.user_profile_clicks, m.video_views
    FROM post_metrics m WHERE m.post_id = ANY(:post_ids)
    ORDER BY m.post_id, m.collected_at, m.id
    """
)

_GROWTH_DUE = text(
    """
    SELECT a.id, a.user_id, a.credentials_encrypted FROM accounts a
    WHERE a.state = 'ACTIVE' AND a.credentials_encrypted IS NOT NULL
      AND NOT EXISTS (
        SELECT 1 FROM account_growth g
        WHERE g.account_id = a.id AND g.collected_at >= :day_start)
    ORDER BY a.id
    LIMIT :limit
    """
)

FOLLOWERS = text(
    """
    SELECT day, collected_at, followers, following, posts, listed FROM account_growth
    WHERE account_id = :account_id AND collected_at >= :start AND collected_at < :end
    ORDER BY collected_at
    """
)


# The newest measured posts before a cutoff, with the kind of their first media item
# (legacy X media ids count as images) and the latest snapshot's counts.
_HISTORY = f"""
    SELECT * FROM (
      SELECT p.id, p.account_id, a.timezone, p.text, p.published_at,
             coalesce((SELECT m.kind FROM media m WHERE m.id = p.attachment_ids[1]),
                      CASE WHEN cardinality(p.media_ids) > 0 THEN 'IMAGE' END) AS media_kind,
             l.*
      FROM posts p JOIN accounts a ON a.id = p.account_id {LATEST_SNAPSHOT}
      WHERE p.state = 'PUBLISHED' AND p.published_at < :before
        AND l.impressions > 0 {{account_filter}}
      ORDER BY p.published_at DESC, p.id DESC
      LIMIT :limit
    ) newest ORDER BY published_at, id
"""  # noqa: S608 - only constant fragments are interpolated
ACCOUNT_HISTORY = text(_HISTORY.format(account_filter="AND p.account_id = :account_id"))
ALL_HISTORY = text(_HISTORY.format(account_filter=""))


_YOUNG = text(
    """
    SELECT p.id, p.account_id, p.user_id, p.published_at FROM posts p
    WHERE p.state = 'PUBLISHED' AND p.published_at > :published_after
      AND EXISTS (SELECT 1 FROM post_metrics m
                  WHERE m.post_id = p.id AND m.collected_at > :measured_after)
    ORDER BY p.published_at, p.id
    LIMIT :limit
    """
)

# Engagements as domain/analytics.py counts them (withheld private counts are 0).
_EARLY = text(
    """
    SELECT p.id, p.published_at, m.collected_at,
           m.likes + m.reposts + m.replies + m.quotes + m.bookmarks
             + coalesce(m.url_link_clicks, 0) + coalesce(m.user_profile_clicks, 0)
             AS engagements
    FROM (SELECT id, published_at FROM posts
          WHERE account_id = :account_id AND state = 'PUBLISHED'
            AND published_at > :published_after
          ORDER BY published_at DESC LIMIT :limit) p
    JOIN post_metrics m ON m.post_id = p.id AND m.collected_at <= p.published_at + :window
    ORDER BY p.id, m.collected_at
    """
)

ALERTS = text(
    """
    SELECT * FROM trend_alerts
    WHERE post_id = :post_id
       OR (post_id IS NULL AND account_id = :account_id
           AND CAST(:published_at AS timestamptz) >= window_start
           AND CAST(:published_at AS timestamptz) < detected_at)
    ORDER BY detected_at, id
    """
)


class SqlAccountInsights:
    def __init__(self, conn: Connection, box: FernetBox) -> None:
        self._conn = conn
        self._box = box

    def add_follower_snapshot(self, account_id: UUID, snapshot: FollowerSnapshot) -> bool:
        statement = (
            pg_insert(account_growth)
            .values(
                account_id=account_id,
                day=snapshot.day,
                collected_at=snapshot.collected_at,
                followers=snapshot.followers,
                following=snapshot.following,
                posts=snapshot.posts,
                listed=snapshot.listed,
            )
            .on_conflict_do_nothing(
                index_elements=[account_growth.c.account_id, account_growth.c.day]
            )
            .returning(account_growth.c.day)
        )
        return self._conn.execute(statement).first() is not None

    def follower_snapshots(
        self, account_id: UUID, start: datetime, end: datetime
    ) -> list[FollowerSnapshot]:
        rows = self._conn.execute(FOLLOWERS, {"account_id": account_id, "start": start, "end": end})
        return [follower_from_row(row._mapping) for row in rows]

    def growth_due(self, day_start: datetime, limit: int) -> list[GrowthDue]:
        rows = self._conn.execute(_GROWTH_DUE, {"day_start": day_start, "limit": limit})
        due = []
        for row in rows:
            creds = unseal_or_none(self._box, row.credentials_encrypted)
            if creds is not None:  # unreadable tokens cannot read the account's counts
                due.append(GrowthDue(row.id, row.user_id, creds))
        return due

    def young_posts(
        self, published_after: datetime, measured_after: datetime, limit: int
    ) -> list[YoungPost]:
        values = {"published_after": published_after, "measured_after": measured_after}
        rows = self._conn.execute(_YOUNG, values | {"limit": limit})
        return [YoungPost(r.id, r.account_id, r.user_id, r.published_at) for r in rows]

    def early_points(
        self, account_id: UUID, published_after: datetime, window: timedelta, limit: int
    ) -> dict[UUID, EarlyPoints]:
        values = {
            "account_id": account_id,
            "published_after": published_after,
            "window": window,
            "limit": limit,
        }
        found: dict[UUID, EarlyPoints] = {}
        for row in self._conn.execute(_EARLY, values):
            entry = found.setdefault(row.id, EarlyPoints(row.published_at, []))
            entry.points.append(Point(row.collected_at - row.published_at, row.engagements))
        return found

    def add_trend_alert(self, alert: TrendAlert) -> bool:
        statement = (
            pg_insert(trend_alerts)
            .values(
                dedup_key=alert.dedup_key,
                account_id=alert.account_id,
                post_id=alert.post_id,
                kind=alert.kind,
                metric=alert.metric,
                observed=alert.observed,
                expected=alert.expected,
                score=alert.score,
                age_seconds=alert.age.total_seconds() if alert.age is not None else None,
                summary=alert.summary,
                window_start=alert.window_start,
                detected_at=alert.detected_at,
            )
            .on_conflict_do_nothing(index_elements=[trend_alerts.c.dedup_key])
            .returning(trend_alerts.c.id)
        )
        return self._conn.execute(statement).first() is not None


def series_by_post(rows: Iterable[Mapping[Any, Any]]) -> dict[UUID, list[Snapshot]]:
    """Snapshot rows (SERIES_OF's) by post, in the rows' order."""
    found: dict[UUID, list[Snapshot]] = defaultdict(list)
    for row in rows:
        taken = snapshot_from_row(row)
        if taken is not None:
            found[row["post_id"]].append(taken)
    return dict(found)


def follower_from_row(row: Mapping[Any, Any]) -> FollowerSnapshot:
    return FollowerSnapshot(
        row["day"],
        row["collected_at"],
        row["followers"],
        row["following"],
        row["posts"],
        row["listed"],
    )


def history_params(
    account_id: UUID | None, published_before: datetime, limit: int
) -> dict[str, object]:
    """ACCOUNT_HISTORY's values (ALL_HISTORY's without an account)."""
    values: dict[str, object] = {"before": published_before, "limit": limit}
    if account_id is not None:
        values["account_id"] = account_id
    return values


def past_post_from_row(row: Mapping[Any, Any]) -> PastPost:
    taken = snapshot_from_row(row)
    assert taken is not None  # impressions > 0 implies a snapshot
    return PastPost(
        account_id=str(row["account_id"]),
        timezone=row["timezone"],
        draft=Draft(
            row["text"],
            MediaKind(row["media_kind"]) if row["media_kind"] else None,
            row["published_at"],
        ),
        impressions=taken.counts.impressions,
        engagement_rate=taken.counts.engagement_rate,
    )


def alerts_params(
    post_id: UUID, account_id: UUID, published_at: datetime | None
) -> dict[str, object]:
    return {"post_id": post_id, "account_id": account_id, "published_at": published_at}


def trend_alert_from_row(row: Mapping[Any, Any]) -> TrendAlert:
    """A trend_alerts row (a SQLAlchemy row's `_mapping`, or psycopg's dict)."""
    age = row["age_seconds"]
    return TrendAlert(
        dedup_key=row["dedup_key"],
        account_id=row["account_id"],
        post_id=row["post_id"],
        kind=row["kind"],
        metric=row["metric"],
        observed=row["observed"],
        expected=row["expected"],
        score=row["score"],
        summary=row["summary"],
        detected_at=row["detected_at"],
        age=timedelta(seconds=age) if age is not None else None,
        window_start=row["window_start"],
    )
