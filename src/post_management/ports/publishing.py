"""Ports of the publishing engine: the queue in the database and the rate limiter."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from post_management.domain.account import AccountState, Credentials
from post_management.domain.events import DomainEvent
from post_management.domain.post import PostState, Priority
from post_management.domain.x_spend import Metered

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
    # attempt called X (duplicates point back to it); an X id X already gave for the
    # next unrecorded segment, whose settlement was lost.
    sent_at: datetime | None = None
    sent_media_ids: tuple[str, ...] = ()
    first_sent_at: datetime | None = None
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


class XPostIdTaken(Exception):
    """An X id is already stored for another post or segment of the account."""


@dataclass(frozen=True)
class Settlement:
    """What becomes of a claimed post, applied in one transaction."""

    state: PostState
    outcome: str  # recorded in post_attempts
    detail: str = ""
    x_post_id: str = ""
    published_at: datetime | None = None
    # Back to SCHEDULED: due this long after the database's now() (None: unchanged).
    due_in: timedelta | None = None
    # Stays PUBLISHING (unknown): the reconciler looks this long after now().
    reconcile_in: timedelta | None = None
    unknown_cause: str = ""
    # Rate limits and suspensions are not the post's fault: the attempt is refunded.
    refund_attempt: bool = False
    account_state: AccountState | None = None
    account_rate_limited_until: datetime | None = None
    events: tuple[DomainEvent, ...] = ()
    # The UTC month ("YYYY-MM") whose X budget now holds the account's posts back.
    account_budget_month: str | None = None
    # The X calls of this attempt (domain/x_spend.py), recorded with the outcome.
    spent: tuple[Metered, ...] = ()


class PublishQueue(Protocol):
    """Every time it stores or compares is the database's now(): no process clock
    decides when a post is due or whether a lease has run out."""

    def claim_due(self, limit: int, lease: timedelta) -> list[Claim]:
        """Due SCHEDULED posts, at most one per account (its first in (priority, due
        time) order), the earliest of those first; none of an account that is paused,
        rate limited or already publishing."""
        ...

    def claim_post(self, post_id: UUID, lease: timedelta) -> Claim | None:
        """This post, if it is SCHEDULED and due and its account is free."""
        ...

    def claim_for_reconcile(self, limit: int, lease: timedelta) -> list[Claim]:
        """PUBLISHING posts whose outcome is unknown and settled, or whose lease expired
        (their publisher died): each gets a new holder token and lease."""
        ...

    def renew(self, claim: Claim, lease: timedelta) -> bool:
        """Push the lease to now() + `lease` if `claim.holder` still holds the post:
        the check before every call to X."""
        ...

    def look_again(
        self,
        claim: Claim,
        after: timedelta,
        not_before: datetime | None = None,
        reason: str = "",
    ) -> bool:
        """Keep a reconciliation claim and look again `after` from now() (not before
        `not_before`, e.g. X's rate-limit reset); `reason` (why X could not tell)
        becomes the post's last error."""
        ...

    def settle(self, claim: Claim, settlement: Settlement) -> bool:
        """Apply the settlement if `claim.holder` still holds the post."""
        ...

    def sending(
        self, claim: Claim, lease: timedelta, x_media_ids: Sequence[str] | None = None
    ) -> bool:
        """The check right before a create-post call: renew the lease and note the send
        time (and the media attached) on the attempt, if `claim.holder` still holds the
        post. False: the claim is lost and X must not be called."""
        ...

    def record_answer(self, claim: Claim, index: int, x_post_id: str) -> None:
        """Keep an id X gave for segment `index` although the claim was lost meanwhile:
        whoever holds the post adopts it instead of sending again."""
        ...

    def stored_x_post_ids(self, account_id: UUID, x_post_ids: Sequence[str]) -> set[str]:
        """Those of `x_post_ids` already stored for a post or segment of the account."""
        ...

    def record_segment(self, claim: Claim, index: int, x_post_id: str, lease: timedelta) -> bool:
        """Store segment `index`'s X id in its own transaction, if `claim.holder` still
        holds the post and `index` is the next unrecorded segment; the lease is pushed
        to now() + `lease` so a long thread keeps its claim."""
        ...


@dataclass(frozen=True)
class Budget:
    """At most `limit` uses of `key` in any sliding `window`."""

    key: str
    limit: int
    window: timedelta


@dataclass(frozen=True)
class Taken:
    """One unit of each budget, taken together; `token` names them for `release`."""

    keys: tuple[str, ...]
    token: str


@dataclass(frozen=True)
class Refused:
    """The first budget that had no unit left, and when its oldest use leaves it."""

    key: str
    free_at: datetime


class RateLimiter(Protocol):
    def acquire(self, key: str, limit: int, window: timedelta, now: datetime) -> datetime | None:
        """Take one unit of `key`'s budget: None when granted, else when one frees up."""
        ...

    def take(self, budgets: Sequence[Budget], now: datetime) -> Taken | Refused:
        """One unit of every budget, or none at all (atomic, so a refusal by one
        budget never leaves a unit taken from another)."""
        ...

    def release(self, taken: Taken) -> None:
        """Give back units that were not used (the call they were for never left)."""
        ...

    def room(self, budget: Budget, now: datetime) -> int:
        """How many units `budget` has left now, without taking any."""
        ...
