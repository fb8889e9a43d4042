"""Campaigns (posts.campaign_id) and daily follower snapshots (account_growth)

Revision ID: 0007_campaigns_growth
Revises: 0006_idempotency_scope_text
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_campaigns_growth"
down_revision = "0006_idempotency_scope_text"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_campaigns_user_created", "campaigns", ["user_id", "created_at", "id"])
    op.add_column(
        "posts",
        sa.Column(
            "campaign_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("campaigns.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_posts_campaign",
        "posts",
        ["campaign_id"],
        postgresql_where=sa.text("campaign_id IS NOT NULL"),
    )
    op.create_table(
        "account_growth",
        sa.Column(
            "account_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=False),
        sa.Column("following", sa.BigInteger(), nullable=False),
        sa.Column("posts", sa.BigInteger(), nullable=False),
        sa.Column("listed", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("account_growth")
    op.drop_index("ix_posts_campaign", table_name="posts")
    op.drop_column("posts", "campaign_id")
    op.drop_index("ix_campaigns_user_created", table_name="campaigns")
    op.drop_table("campaigns")
