"""A claimed post: what the engine holds while it publishes one post."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from post_management.domain.account import Credentials
from post_management.domain.post import Priority

# Claim.unknown_cause of a post taken over because its holder's lease ran out.
LEASE_EXPIRED = "lease_expired"


@dataclass(frozen=True)
class Claim:
    """A post this process holds in PUBLISHING until its lease runs out.

    `holder` is the token in posts.attempt_id: a settlement only lands while it
    still matches, so a worker that lost its lease cannot overwrite anything.
    Times are the database's: `claimed_at` is its now() at the claim, and `now()`
    carries it forward on this process's monotonic clock, so a worker whose wall
    clock is off still stamps and compares the database's time.
    """

    post_id: UUID
    holder: UUID
    attempt_number: int
    account_id: UUID
    user_id: str
    x_user_id: str
    text: str
    media_ids: tuple[str, ...]
    reply_to_x_post_id: str
    priority: Priority
    due_at: datetime
    started_at: datetime
    credentials: Credentials | None = field(repr=False)
    # Set for reconciliation claims: why the earlier outcome is unknown.
    unknown_cause: str = ""
    # Follow-up segments, the X ids of segments already on X, and media to upload.
    thread: tuple[str, ...] = ()
    segment_x_post_ids: tuple[str, ...] = ()
    attachment_ids: tuple[UUID, ...] = ()
    # The database's now() when the claim committed.
    claimed_at: datetime | None = None
    # Set when the stored credentials could not be read (e.g. no key decrypts them).
    credentials_problem: str = ""
    # Reconciliation claims only. When the attempt in doubt last called create-post
    # (None: it never did) and the X media ids it attached; when the post's first
    # attempt called X (duplicates point back to it); when the attempt gave up; an X
    # id X already gave for the next unrecorded segment, whose settlement was lost.
    sent_at: datetime | None = None
    sent_media_ids: tuple[str, ...] = ()
    first_sent_at: datetime | None = None
    # When the attempt in doubt ended without an answer (its caller gave up: X may
    # have received the call until then); None when its holder never came back.
    gave_up_at: datetime | None = None
    known_x_post_id: str = ""
    _anchor: float = field(default_factory=time.monotonic, repr=False, compare=False)

    def now(self) -> datetime:
        """The database's time now, as far as this process can tell without asking."""
        base = self.claimed_at if self.claimed_at is not None else self.started_at
        return base + timedelta(seconds=time.monotonic() - self._anchor)

    @property
    def segments(self) -> tuple[str, ...]:
        """The texts to publish in order: the post, then its thread (domain/threads.py)."""
        return (self.text, *self.thread)
