"""The database schema. Alembic migrations must produce exactly this
(tests/integration/test_migrations.py compares them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _timestamps() -> list[Column[object]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


accounts = Table(
    "accounts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("handle", String(64), nullable=False),
    Column("x_user_id", String(32), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("posting_rules", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Fernet token of the JSON credentials; never leaves the service.
    Column("credentials_encrypted", LargeBinary, nullable=True),
    # Set from X's rate-limit answers: the dispatcher leaves the account alone until then.
    Column("rate_limited_until", DateTime(timezone=True), nullable=True),
    # FAILED/DEAD_LETTERED settlements since the last success; the account pauses at
    # the limit (domain/publishing/failure_streak.py) and the count restarts.
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    # Monthly X spend budget in micro-dollars (NULL: none), and the month ("YYYY-MM",
    # UTC) in which a publish would have exceeded it: the dispatcher skips the
    # account's posts until the month turns or the budget changes (docs/x-spend.md).
    Column("x_monthly_budget_micros", BigInteger, nullable=True),
    Column("x_budget_reached_month", String(7), nullable=True),
    Column("version", Integer, nullable=False),
    *_timestamps(),
    UniqueConstraint("user_id", "x_user_id"),
    Index("ix_accounts_user_created", "user_id", "created_at", "id"),
)

posts = Table(
    "posts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("text", Text, nullable=False),
    Column("media_ids", ARRAY(String(32)), nullable=False, server_default=text("'{}'")),
    Column("reply_to_x_post_id", String(32), nullable=False, server_default=""),
    # Our media ids (the media table), uploaded to X by the publisher before segment 0.
    Column(
        "attachment_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'")
    ),
    # Follow-up segments, and the X id of each segment as soon as X returned it.
    Column("thread", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("segment_x_post_ids", ARRAY(String(32)), nullable=False, server_default=text("'{}'")),
    Column("state", String(16), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    # The instant the post is due (UTC), and the IANA zone it was asked in.
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("timezone", String(64), nullable=False, server_default=""),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("x_post_id", String(32), nullable=False, server_default=""),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    # Set while PUBLISHING: which attempt holds the post, and until when.
    Column("attempt_id", UUID(as_uuid=True), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    # When the current attempt called X: the reconciler searches X from here.
    Column("publish_started_at", DateTime(timezone=True), nullable=True),
    # Set when X's answer was lost: from then on the reconciler decides.
    Column("reconcile_after", DateTime(timezone=True), nullable=True),
    # Why the outcome is unknown ("timeout", "duplicate", ...): decides what "not on X" means.
    Column("unknown_cause", String(32), nullable=False, server_default=""),
    Column("version", Integer, nullable=False),
    # The user's campaign (analytics_schema.campaigns); NULL for none.
    Column(
        "campaign_id",
        UUID(as_uuid=True),
        ForeignKey("campaigns.id", ondelete="SET NULL"),
        nullable=True,
    ),
    # What the content rules found in the texts when last screened, before any
    # account's policy (adapters/db/post_repository.py has the shape); NULL: not
    # screened (rows written before it was kept, or under an OFF policy).
    Column("content_screening", JSONB(none_as_null=True), nullable=True),
    *_timestamps(),
    Index("ix_posts_user_created", "user_id", "created_at", "id"),
    Index("ix_posts_campaign", "campaign_id", postgresql_where=text("campaign_id IS NOT NULL")),
    Index("ix_posts_account_due", "account_id", "due_at"),
    # Published posts by publication time: the trend alerts' tick query, engagement
    # history and the analytics reads of one account.
    Index("ix_posts_published", "published_at", postgresql_where=text("state = 'PUBLISHED'")),
    Index(
        "ix_posts_account_published",
        "account_id",
        "published_at",
        postgresql_where=text("state = 'PUBLISHED'"),
    ),
    # The dispatcher's claim query: matches its ORDER BY, only queued rows.
    Index(
        "ix_posts_due_scheduled",
        "priority",
        "due_at",
        postgresql_where=text("state = 'SCHEDULED'"),
    ),
    # At most one post per account is being published, so an unknown outcome can be
    # matched against the account's timeline without ambiguity.
    Index(
        "uq_posts_one_publishing_per_account",
        "account_id",
        unique=True,
        postgresql_where=text("state = 'PUBLISHING'"),
    ),
)

post_attempts = Table(
    "post_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "post_id", UUID(as_uuid=True), ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("attempt_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("number", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # published, failed, rate_limited, unknown, suspended, retry, dead_lettered, adopted
    Column("outcome", String(32), nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default=""),
    Column("x_post_id", String(32), nullable=False, server_default=""),
    # Set just before each create-post call of the attempt (the lease check): when it
    # last called X, and the X media ids it attached. The reconciler's proof starts here.
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("x_media_ids", ARRAY(String(32)), nullable=False, server_default=text("'{}'")),
    Index("ix_post_attempts_post", "post_id", "number"),
)

# Every X id known to be one of our posts or thread segments: recorded, or answered by
# X after the claim was lost. One X id belongs to one post of the account, so the
# reconciler can never adopt an id twice.
post_x_ids = Table(
    "post_x_ids",
    metadata,
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("x_post_id", String(32), primary_key=True),
    # No foreign key: a deleted post's X id must still never be adopted for another.
    Column("post_id", UUID(as_uuid=True), nullable=False),
    Column("segment_index", Integer, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_post_x_ids_post", "post_id", "segment_index"),
)

media = Table(
    "media",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("mime_type", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    # Kept here until published: X forgets uploads after a day, retries may come later.
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_media_user_created", "user_id", "created_at"),
)

# The X media id of one media item for one account (X ids belong to the uploader),
# stored as soon as the upload succeeds so a retry never uploads it again.
media_uploads = Table(
    "media_uploads",
    metadata,
    Column(
        "media_id",
        UUID(as_uuid=True),
        ForeignKey("media.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("x_media_id", String(32), nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", UUID(as_uuid=True), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("request_id", String(128), nullable=False, server_default=""),
    Column("before", JSONB, nullable=True),
    Column("after", JSONB, nullable=True),
    Index("ix_audit_log_user_occurred", "user_id", "occurred_at"),
)

outbox = Table(
    "outbox",
    metadata,
    # The relay publishes in id order.
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    Column("aggregate_type", String(32), nullable=False),
    # The Kafka key: post id, or account id for account events.
    Column("aggregate_id", String(64), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # Per-post number of a post event, set on insert by the trigger of migration 0008.
    Column("sequence", BigInteger, nullable=True),
    Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
)

# The last number given to an event of each post (outbox.sequence); kept after the
# outbox rows are purged so the numbers never restart.
post_event_sequences = Table(
    "post_event_sequences",
    metadata,
    Column("post_id", String(64), primary_key=True),
    Column("last_sequence", BigInteger, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # "<Method>:" + a user id of up to 128 characters.
    Column("scope", Text, primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("resource_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


# Registered on `metadata` by import; kept apart so each feature owns its tables.
from post_management.adapters.db import analytics_schema as _analytics_schema  # noqa: E402, F401
from post_management.adapters.db import privacy_schema as _privacy_schema  # noqa: E402, F401
from post_management.adapters.db import spend_schema as _spend_schema  # noqa: E402, F401
