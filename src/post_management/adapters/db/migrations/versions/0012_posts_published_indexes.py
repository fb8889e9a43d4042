"""Partial indexes on published posts by publication time (trend alerts' tick query,
engagement history and the analytics reads of one account)

Revision ID: 0012_posts_published_indexes
Revises: 0011_trend_alerts
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_posts_published_indexes"
down_revision = "0011_trend_alerts"
branch_labels = None
depends_on = None

_PUBLISHED = sa.text("state = 'PUBLISHED'")


def upgrade() -> None:
    op.create_index("ix_posts_published", "posts", ["published_at"], postgresql_where=_PUBLISHED)
    op.create_index(
        "ix_posts_account_published",
        "posts",
        ["account_id", "published_at"],
        postgresql_where=_PUBLISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_posts_account_published", table_name="posts")
    op.drop_index("ix_posts_published", table_name="posts")
