"""outbox.sequence: a per-post number on every post event, in commit order

Revision ID: 0008_outbox_post_sequence
Revises: 0007_campaigns_growth
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_outbox_post_sequence"
down_revision = "0007_campaigns_growth"
branch_labels = None
depends_on = None

# Every insert of a post event, whichever code path writes it, numbers it 1, 2, 3...
# per post. The counter row stays locked until the writing transaction ends, so two
# transactions writing events of one post get numbers in their commit order.
_FUNCTION = """
CREATE FUNCTION outbox_number_post_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.aggregate_type = 'post' AND NEW.sequence IS NULL THEN
        INSERT INTO post_event_sequences AS s (post_id, last_sequence)
        VALUES (NEW.aggregate_id, 1)
        ON CONFLICT (post_id) DO UPDATE SET last_sequence = s.last_sequence + 1
        RETURNING last_sequence INTO NEW.sequence;
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "post_event_sequences",
        sa.Column("post_id", sa.String(length=64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_post_event_sequences")),
    )
    op.add_column("outbox", sa.Column("sequence", sa.BigInteger(), nullable=True))
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER outbox_number_post_event BEFORE INSERT ON outbox "
        "FOR EACH ROW EXECUTE FUNCTION outbox_number_post_event()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_number_post_event ON outbox")
    op.execute("DROP FUNCTION outbox_number_post_event()")
    op.drop_column("outbox", "sequence")
    op.drop_table("post_event_sequences")
