"""Storage for audit trails, exports, erasure and retention (docs/security.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from post_management.domain.account import Credentials
from post_management.domain.privacy import AuditRecord, MetricsRecord
from post_management.domain.x_spend import Metered


@dataclass(frozen=True)
class ErasureReport:
    posts_deleted: int
    accounts_deleted: int
    media_deleted: int
    audit_events_pseudonymised: int
    x_removals_queued: int
    erased_at: datetime

    def document(self) -> dict[str, Any]:
        """The `after` document of the erasure's own audit row (`user.erase`)."""
        return {**self.__dict__, "erased_at": self.erased_at.isoformat()}


# A removal that keeps failing is given up (done, its tokens dropped) at this many
# attempts.
MAX_REMOVAL_ATTEMPTS = 10
# The longest error a removal keeps (its first characters).
MAX_REMOVAL_ERROR_CHARS = 2000


@dataclass(frozen=True)
class PendingRemoval:
    id: int
    x_post_id: str
    credentials: Credentials | None = field(repr=False)
    attempts: int
    user_hash: str = ""  # the erased user's pseudonym


@dataclass(frozen=True)
class RetentionCutoffs:
    metrics_before: datetime
    dead_letters_before: datetime
    removals_before: datetime
    unattached_media_before: datetime
    published_media_before: datetime


class ErasureTombstones(Protocol):
    """Inside a unit of work: whether the user was erased. Holds a lock until the
    transaction ends, so an erasure cannot slip between this check and a create."""

    def is_erased(self, user_id: str) -> bool: ...


class AsyncPrivacyStore(Protocol):
    """The privacy RPCs' storage, awaited on the serving loop: a user's audit trail
    and metrics (for the listing and the export), and the erasure."""

    async def audit_events(
        self, user_id: str, before_id: int | None, limit: int
    ) -> list[AuditRecord]:
        """The user's audit rows newest first (by id), those below `before_id` only
        when it is given."""
        ...

    async def metrics(self, user_id: str) -> list[MetricsRecord]:
        """Every metrics snapshot of the user's posts, by post id then collection time."""
        ...

    async def erase(
        self,
        user_id: str,
        pseudonym: str,
        actor: str,
        delete_from_x: bool,
        now: datetime,
        replaces: Sequence[str] = (),
    ) -> ErasureReport:
        """All or nothing, in one transaction (docs/security.md): refused with
        FAILED_PRECONDITION (POSTS_BEING_PUBLISHED) while a post of the user is being
        published. `replaces`: former pseudonyms of the same user whose rows move to
        `pseudonym`."""
        ...


class PrivacyStore(Protocol):
    """The background jobs' side (synchronous, on their ticks): removals on X of
    erased users' posts, and retention's purges."""

    def pending_removals(self, limit: int) -> list[PendingRemoval]:
        """Up to `limit` removals not done yet, oldest (lowest id) first."""
        ...

    def finish_removal(
        self,
        removal_id: int,
        now: datetime,
        error: str,
        final: bool,
        spent: Sequence[Metered] = (),
    ) -> None:
        """Counts an attempt and keeps `error`. final: done (deleted, or given up),
        its tokens dropped; otherwise retried later, until MAX_REMOVAL_ATTEMPTS makes
        it done too. `spent`: the X call made, recorded in the same transaction."""
        ...

    def record_spent(self, spent: Sequence[Metered]) -> None:
        """X calls made outside a removal's outcome (a 429), recorded on their own."""
        ...

    def purge(self, cutoffs: RetentionCutoffs) -> dict[str, int]:
        """In one transaction, deletes what is older than its cutoff (strictly before
        it): metrics snapshots by collection time, DEAD_LETTERED posts by their last
        update, finished removals by when they were done, media no post attaches by
        upload time, and media every post of which was published before its cutoff.
        Answers how many of each went (metric_snapshots, dead_letters, x_removals,
        unattached_media, published_media)."""
        ...
