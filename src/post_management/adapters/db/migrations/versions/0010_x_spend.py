"""X spend ledger (x_spend, x_read_charges) and monthly budgets on accounts

Revision ID: 0010_x_spend
Revises: 0009_publish_proof
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_x_spend"
down_revision = "0009_publish_proof"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "x_spend",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("account_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("post_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("campaign_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("charged_units", sa.Integer(), nullable=False),
        sa.Column("unit_price_micros", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_x_spend_account_time", "x_spend", ["account_id", "occurred_at"])
    op.create_index("ix_x_spend_user_time", "x_spend", ["user_id", "occurred_at"])
    op.create_index("ix_x_spend_campaign_time", "x_spend", ["campaign_id", "occurred_at"])
    op.create_table(
        "x_read_charges",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("resource_id", sa.Text(), primary_key=True),
    )
    op.add_column("accounts", sa.Column("x_monthly_budget_micros", sa.BigInteger(), nullable=True))
    op.add_column("accounts", sa.Column("x_budget_reached_month", sa.String(7), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "x_budget_reached_month")
    op.drop_column("accounts", "x_monthly_budget_micros")
    op.drop_table("x_read_charges")
    op.drop_index("ix_x_spend_campaign_time", table_name="x_spend")
    op.drop_index("ix_x_spend_user_time", table_name="x_spend")
    op.drop_index("ix_x_spend_account_time", table_name="x_spend")
    op.drop_table("x_spend")
