"""What the content rules found in a post's texts, kept with the post so that
scheduling it does not run the classifier again (NULL: screened when next checked)

Revision ID: 0013_posts_content_screening
Revises: 0012_posts_published_indexes
Create Date: 2026-12-06 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013_posts_content_screening"
down_revision = "0012_posts_published_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: adding it rewrites no row.
    op.add_column("posts", sa.Column("content_screening", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("posts", "content_screening")
