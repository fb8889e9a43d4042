"""Analytics tables (docs/analytics.md), on the schema's shared `metadata`.

schema.py imports this module, so migrations are compared against these too.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from post_management.adapters.db.schema import metadata

# One row per refresh or webhook change: absolute counts at `collected_at`.
# Private counts are NULL when X did not return them (bearer reads, posts over 30 days).
post_metrics = Table(
    "post_metrics",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "post_id", UUID(as_uuid=True), ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Column("source", String(16), nullable=False),  # poll or webhook
    Column("impressions", BigInteger, nullable=False),
    Column("likes", BigInteger, nullable=False),
    Column("reposts", BigInteger, nullable=False),
    Column("replies", BigInteger, nullable=False),
    Column("quotes", BigInteger, nullable=False),
    Column("bookmarks", BigInteger, nullable=False),
    Column("url_link_clicks", BigInteger, nullable=True),
    Column("user_profile_clicks", BigInteger, nullable=True),
    Column("video_views", BigInteger, nullable=True),
    Index("ix_post_metrics_post_collected", "post_id", "collected_at"),
)

# The collector's schedule per published post, and whether X still has it.
post_metrics_state = Table(
    "post_metrics_state",
    metadata,
    Column(
        "post_id",
        UUID(as_uuid=True),
        ForeignKey("posts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("last_collected_at", DateTime(timezone=True), nullable=True),
    Column("next_collect_at", DateTime(timezone=True), nullable=False),
    Column("deleted_on_x", Boolean, nullable=False, server_default=text("false")),
    Column("deleted_detected_at", DateTime(timezone=True), nullable=True),
    Index(
        "ix_post_metrics_state_next",
        "next_collect_at",
        postgresql_where=text("NOT deleted_on_x"),
    ),
)

# Account Activity deliveries already applied: X may deliver an event twice.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("event_type", String(32), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Campaigns group one user's posts (posts.campaign_id); deleted with the user's data.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("name", String(100), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=True),
    Column("ends_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_campaigns_user_created", "user_id", "created_at", "id"),
)

# X's public counts of an account, one row per UTC day (the first read of the day).
account_growth = Table(
    "account_growth",
    metadata,
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("day", Date, primary_key=True),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Column("followers", BigInteger, nullable=False),
    Column("following", BigInteger, nullable=False),
    Column("posts", BigInteger, nullable=False),
    Column("listed", BigInteger, nullable=False),
)

# Trend alerts (services/analytics/trend_alerts.py): one row per finding, the dedup key making
# each alert once-only; a follower drop covers the posts of [window_start, detected_at).
trend_alerts = Table(
    "trend_alerts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dedup_key", String(128), nullable=False, unique=True),
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("post_id", UUID(as_uuid=True), ForeignKey("posts.id", ondelete="CASCADE")),
    Column("kind", String(40), nullable=False),
    Column("metric", String(16), nullable=False),
    Column("observed", Float, nullable=False),
    Column("expected", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("age_seconds", Float),
    Column("summary", Text, nullable=False),
    Column("window_start", DateTime(timezone=True)),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Index("ix_trend_alerts_post", "post_id"),
    Index("ix_trend_alerts_account_detected", "account_id", "detected_at"),
)
