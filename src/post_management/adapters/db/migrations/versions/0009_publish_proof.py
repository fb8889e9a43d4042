"""What the reconciler needs to prove a post absent or adopt the right one:
post_attempts.sent_at and x_media_ids (when and with which media the attempt last
called create-post), and post_x_ids (every X id known for a post or segment,
unique per account)

Revision ID: 0009_publish_proof
Revises: 0008_outbox_post_sequence
Create Date: 2026-12-06 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_publish_proof"
down_revision = "0008_outbox_post_sequence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("post_attempts", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "post_attempts",
        sa.Column(
            "x_media_ids",
            postgresql.ARRAY(sa.String(length=32)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    # Attempts under way at the upgrade may have called X without saying so.
    op.execute("UPDATE post_attempts SET sent_at = started_at WHERE finished_at IS NULL")
    op.create_table(
        "post_x_ids",
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("x_post_id", sa.String(length=32), nullable=False),
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("segment_index", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_post_x_ids_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "x_post_id", name=op.f("pk_post_x_ids")),
    )
    op.create_index("ix_post_x_ids_post", "post_x_ids", ["post_id", "segment_index"])
    # Existing ids; one already stored for another post stays with the first.
    op.execute(
        """
        INSERT INTO post_x_ids (account_id, x_post_id, post_id, segment_index, recorded_at)
        SELECT p.account_id, s.x_post_id, p.id, s.ordinality - 1, p.updated_at
        FROM posts p, unnest(p.segment_x_post_ids) WITH ORDINALITY AS s(x_post_id, ordinality)
        ON CONFLICT DO NOTHING
        """
    )
    op.execute(
        """
        INSERT INTO post_x_ids (account_id, x_post_id, post_id, segment_index, recorded_at)
        SELECT account_id, x_post_id, id, 0, COALESCE(published_at, updated_at)
        FROM posts WHERE x_post_id <> '' ORDER BY COALESCE(published_at, updated_at)
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_index("ix_post_x_ids_post", table_name="post_x_ids")
    op.drop_table("post_x_ids")
    op.drop_column("post_attempts", "x_media_ids")
    op.drop_column("post_attempts", "sent_at")
