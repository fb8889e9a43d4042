"""Read models the scheduling use cases need beyond single-post access."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from post_management.domain.account import Account
from post_management.domain.post import PostState, Priority

if TYPE_CHECKING:  # the unit of work's port imports TakenTime from here
    from post_management.ports.async_unit_of_work import AsyncUnitOfWork


@dataclass(frozen=True)
class TakenTime:
    """Another post of an account that occupies a time: queued, in flight or on X."""

    post_id: UUID
    text: str
    at: datetime  # due time, or publish time once published


@dataclass(frozen=True)
class DueCursor:
    """Keyset position in due order: the (due_at, id) of the last row of a page."""

    due_at: datetime
    id: UUID


@dataclass(frozen=True)
class ScheduledQuery:
    """Posts of one user with a due time; `start`/`end` bound it as [start, end)."""

    user_id: str
    state: PostState
    account_id: UUID | None = None
    priority: Priority | None = None
    start: datetime | None = None
    end: datetime | None = None


class ScheduleQueries(Protocol):
    def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        """The account's SCHEDULED, PUBLISHING and PUBLISHED posts at or after `since`."""
        ...


class BestTimeFinder(Protocol):
    async def best_free_time(
        self,
        uow: AsyncUnitOfWork,
        account: Account,
        taken: Sequence[datetime],
        now: datetime,
        window: timedelta,
    ) -> datetime | None:
        """The best free time for a post of the account (SLOT_POLICY_BEST), or None;
        the account's history is read in the caller's unit of work."""
        ...
