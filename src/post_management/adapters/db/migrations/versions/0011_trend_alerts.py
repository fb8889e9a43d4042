"""trend_alerts: posts far from their account's norm and follower drops, once each

Revision ID: 0011_trend_alerts
Revises: 0010_x_spend
Create Date: 2026-12-06 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_trend_alerts"
down_revision = "0010_x_spend"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trend_alerts",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(128), nullable=False, unique=True),
        sa.Column(
            "account_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "post_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("age_seconds", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_trend_alerts_post", "trend_alerts", ["post_id"])
    op.create_index(
        "ix_trend_alerts_account_detected", "trend_alerts", ["account_id", "detected_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_trend_alerts_account_detected", table_name="trend_alerts")
    op.drop_index("ix_trend_alerts_post", table_name="trend_alerts")
    op.drop_table("trend_alerts")
