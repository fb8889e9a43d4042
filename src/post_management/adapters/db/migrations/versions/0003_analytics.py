"""analytics: metric snapshots, the collector's schedule, webhook event ids

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "post_metrics",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("likes", sa.BigInteger(), nullable=False),
        sa.Column("reposts", sa.BigInteger(), nullable=False),
        sa.Column("replies", sa.BigInteger(), nullable=False),
        sa.Column("quotes", sa.BigInteger(), nullable=False),
        sa.Column("bookmarks", sa.BigInteger(), nullable=False),
        sa.Column("url_link_clicks", sa.BigInteger(), nullable=True),
        sa.Column("user_profile_clicks", sa.BigInteger(), nullable=True),
        sa.Column("video_views", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_metrics_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_metrics")),
    )
    op.create_index(
        "ix_post_metrics_post_collected", "post_metrics", ["post_id", "collected_at"], unique=False
    )
    op.create_table(
        "post_metrics_state",
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("last_collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_collect_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_on_x", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("deleted_detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_metrics_state_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_post_metrics_state")),
    )
    op.create_index(
        "ix_post_metrics_state_next",
        "post_metrics_state",
        ["next_collect_at"],
        unique=False,
        postgresql_where=sa.text("NOT deleted_on_x"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_webhook_events")),
    )


def downgrade() -> None:
    op.drop_table("webhook_events")
    op.drop_index(
        "ix_post_metrics_state_next",
        table_name="post_metrics_state",
        postgresql_where=sa.text("NOT deleted_on_x"),
    )
    op.drop_table("post_metrics_state")
    op.drop_index("ix_post_metrics_post_collected", table_name="post_metrics")
    op.drop_table("post_metrics")
