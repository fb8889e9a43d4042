"""The X spend ledger (docs/x-spend.md), on the schema's shared `metadata`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID

from post_management.adapters.db.schema import metadata

# One row per X call (a lookup of 100 posts is one row with units 100). Ids are kept
# without foreign keys: the spend stays when a post is deleted, and goes with erasure.
x_spend = Table(
    "x_spend",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(128), nullable=False),
    # NULL for deletions of an erased user's posts: the account is gone by then.
    Column("account_id", UUID(as_uuid=True), nullable=True),
    Column("post_id", UUID(as_uuid=True), nullable=True),
    Column("campaign_id", UUID(as_uuid=True), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("units", Integer, nullable=False),
    # Units X bills: 0 when refused, fewer than units when reads were deduplicated.
    Column("charged_units", Integer, nullable=False),
    Column("unit_price_micros", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Index("ix_x_spend_account_time", "account_id", "occurred_at"),
    Index("ix_x_spend_user_time", "user_id", "occurred_at"),
    Index("ix_x_spend_campaign_time", "campaign_id", "occurred_at"),
)

# Resources X already billed a read of on a UTC day: X charges a read once a day.
x_read_charges = Table(
    "x_read_charges",
    metadata,
    Column("day", Date, primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("resource_id", Text, primary_key=True),
)
