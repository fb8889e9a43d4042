"""Erasure tombstones and pending removals on X (docs/security.md), on the shared
`metadata`. schema.py imports this module, so migrations are compared against it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy import text as sql_text

from post_management.adapters.db.schema import metadata

# One row per erased user, keyed by the same stable hash that replaces the user id
# in audit rows: the raw id is not kept, yet a create for it can still be refused.
erased_users = Table(
    "erased_users",
    metadata,
    Column("user_hash", String(64), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

# Published posts of an erased user still to delete on X. The account's tokens are
# kept (encrypted) only until the row is done, then cleared.
x_removals = Table(
    "x_removals",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_hash", String(64), nullable=False),
    Column("x_post_id", String(32), nullable=False),
    Column("credentials_encrypted", LargeBinary, nullable=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Index("ix_x_removals_pending", "id", postgresql_where=sql_text("done_at IS NULL")),
)
