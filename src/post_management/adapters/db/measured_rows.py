"""Rows of posts with their latest metric snapshot, as the analytics reads map them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.post import PostState
from post_management.ports.analytics import MeasuredPost

_PRIVATE = ("url_link_clicks", "user_profile_clicks", "video_views")

# The latest snapshot of each post, joined laterally so one index probe per post.
LATEST_SNAPSHOT = """
    LEFT JOIN LATERAL (
        SELECT m.collected_at, m.impressions, m.likes, m.reposts, m.replies, m.quotes,
               m.bookmarks, m.url_link_clicks, m.user_profile_clicks, m.video_views
        FROM post_metrics m WHERE m.post_id = p.id
        ORDER BY m.collected_at DESC, m.id DESC LIMIT 1
    ) l ON true
"""


def _counts(values: Mapping[Any, Any]) -> Counts:
    return Counts(
        impressions=values["impressions"],
        likes=values["likes"],
        reposts=values["reposts"],
        replies=values["replies"],
        quotes=values["quotes"],
        bookmarks=values["bookmarks"],
        **{name: values[name] or 0 for name in _PRIVATE},
    )


def snapshot_from_row(values: Mapping[Any, Any]) -> Snapshot | None:
    """A row's snapshot columns (a SQLAlchemy row's `_mapping`, or psycopg's dict)."""
    if values["collected_at"] is None:
        return None
    return Snapshot(values["collected_at"], _counts(values), values["url_link_clicks"] is not None)


def measured_from_row(values: Mapping[Any, Any]) -> MeasuredPost:
    return MeasuredPost(
        post_id=values["id"],
        account_id=values["account_id"],
        state=PostState(values["state"]),
        due_at=values["due_at"],
        published_at=values["published_at"],
        latest=snapshot_from_row(values),
        x_post_id=values.get("x_post_id", ""),
    )
