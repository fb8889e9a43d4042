"""Ports of the publishing engine: the queue in the database and the rate limiter.

The values the queue takes and gives (Claim, Settlement) are the domain's
(domain/publishing/); the queue only applies the settlements decided there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from post_management.domain.publishing import Claim, Settlement


class XPostIdTaken(Exception):
    """An X id is already stored for another post or segment of the account."""


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

    def settle_many(self, items: Sequence[tuple[Claim, Settlement]]) -> list[bool | Exception]:
        """`settle` for each item, all in one transaction: each item is applied only if
        its own holder still holds its post (False otherwise). When an item's own
        settlement fails, the transaction is undone and each item is settled alone:
        the one that failed gets its exception, the others their result. An error of
        the database itself (at the commit, say) raises for all."""
        ...

    def sending(
        self, claim: Claim, lease: timedelta, x_media_ids: Sequence[str] | None = None
    ) -> bool:
        """The check right before a create-post call: renew the lease and note the send
        time (and the media attached) on the attempt, if `claim.holder` still holds the
        post. False: the claim is lost and X must not be called."""
        ...

    def sending_many(
        self, items: Sequence[tuple[Claim, Sequence[str] | None]], lease: timedelta
    ) -> list[bool]:
        """`sending` for each (claim, X media ids) item, in one commit: True for each
        claim whose holder still holds its post (lease renewed, send noted), False for a
        lost one, which must not call X."""
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


def settle_each(
    queue: PublishQueue, items: Sequence[tuple[Claim, Settlement]]
) -> list[bool | Exception]:
    """`queue.settle` for each item in its own transaction: the fallback of
    `settle_many`, where one item's failure is its result and not the others'."""
    results: list[bool | Exception] = []
    for claim, settlement in items:
        try:
            results.append(queue.settle(claim, settlement))
        except Exception as exc:
            results.append(exc)
    return results


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
    """The publishing engine's budgets (X's, per account and for the app)."""

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


class AsyncRateLimiter(Protocol):
    """The per-caller request budget's face of a RateLimiter's budgets, awaited on the
    serving loop."""

    async def acquire(
        self, key: str, limit: int, window: timedelta, now: datetime
    ) -> datetime | None:
        """Take one unit of `key`'s budget: None when granted, else when one frees up."""
        ...
