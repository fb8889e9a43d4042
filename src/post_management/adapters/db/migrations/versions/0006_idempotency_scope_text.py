"""idempotency_keys.scope as text: "<Method>:" + a user id of up to 128 characters

Revision ID: 0006_idempotency_scope_text
Revises: 0005_security
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_idempotency_scope_text"
down_revision = "0005_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column(
        "idempotency_keys",
        "scope",
        existing_type=sa.String(length=64),
        type_=sa.Text(),
        existing_nullable=False,
    )


def downgrade() -> None:
    # Scopes longer than 64 characters would not fit any more.
    op.execute("DELETE FROM idempotency_keys WHERE length(scope) > 64")
    op.alter_column(
        "idempotency_keys",
        "scope",
        existing_type=sa.Text(),
        type_=sa.String(length=64),
        existing_nullable=False,
    )
