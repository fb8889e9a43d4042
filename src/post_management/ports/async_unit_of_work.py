"""The asynchronous unit of work of the request path's commands: awaited on the event
loop, no worker thread. The scheduling commands run on it (SchedulePost,
BatchSchedulePosts, CancelSchedule, ListFreeSlots); the other commands keep the
synchronous unit of work (ports.unit_of_work), which this mirrors method for method.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from post_management.domain.account import Account
from post_management.domain.events import EventLog
from post_management.domain.post import Post
from post_management.ports.repositories import AuditEntry, IdempotencyRecord
from post_management.ports.schedule_queries import TakenTime


class AsyncPosts(Protocol):
    async def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None: ...

    async def save(self, post: Post, expected_version: int) -> bool:
        """Store over `expected_version`; False when another change came first."""
        ...


class AsyncAccounts(Protocol):
    async def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None: ...

    async def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        """The user's post and its account, both locked, the account first (one round
        trip); None when the user has no such post."""
        ...


class AsyncIdempotencyKeys(Protocol):
    async def get(self, scope: str, key: str) -> IdempotencyRecord | None: ...

    async def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        """Raises DuplicateKey (at the latest when the unit of work ends) when a
        concurrent request stored the same key first."""
        ...


class AsyncAuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


class AsyncScheduleQueries(Protocol):
    async def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        """The account's scheduled and published times from `since` on, in time order."""
        ...


class AsyncUnitOfWork(Protocol):
    posts: AsyncPosts
    accounts: AsyncAccounts
    idempotency: AsyncIdempotencyKeys
    audit: AsyncAuditLog
    schedule: AsyncScheduleQueries
    # As in the synchronous unit of work: written to the outbox when it commits.
    outbox: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class AsyncUnitOfWorkFactory(Protocol):
    def __call__(self) -> AsyncUnitOfWork: ...
