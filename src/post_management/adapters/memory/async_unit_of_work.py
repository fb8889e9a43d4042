"""The asynchronous unit of work over the memory store: the synchronous one's
repositories, awaited. An asyncio lock runs the units of work of one event loop one
after the other (the store's own lock is re-entrant, and every coroutine of a loop
runs on its one thread)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import TracebackType
from typing import Self
from uuid import UUID

from post_management.adapters.memory.unit_of_work import MemoryUnitOfWork, MemoryUnitOfWorkFactory
from post_management.domain.account import Account
from post_management.domain.events import EventLog
from post_management.domain.post import Post
from post_management.ports.async_unit_of_work import (
    AsyncAccounts,
    AsyncAuditLog,
    AsyncIdempotencyKeys,
    AsyncPosts,
    AsyncScheduleQueries,
)
from post_management.ports.repositories import (
    AccountRepository,
    AuditEntry,
    AuditLog,
    IdempotencyKeys,
    IdempotencyRecord,
    PostRepository,
)
from post_management.ports.schedule_queries import ScheduleQueries, TakenTime


class _Posts:
    def __init__(self, posts: PostRepository) -> None:
        self._posts = posts

    async def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None:
        return self._posts.get(post_id, for_update=for_update)

    async def save(self, post: Post, expected_version: int) -> bool:
        return self._posts.save(post, expected_version)


class _Accounts:
    def __init__(self, accounts: AccountRepository) -> None:
        self._accounts = accounts

    async def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None:
        return self._accounts.get(account_id, for_update=for_update)

    async def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        return self._accounts.lock_with_post(post_id, user_id)


class _IdempotencyKeys:
    def __init__(self, keys: IdempotencyKeys) -> None:
        self._keys = keys

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self._keys.get(scope, key)

    async def put(self, scope: str, key: str, record: IdempotencyRecord) -> None:
        self._keys.put(scope, key, record)


class _AuditLog:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def record(self, entry: AuditEntry) -> None:
        self._audit.record(entry)


class _ScheduleQueries:
    def __init__(self, schedule: ScheduleQueries) -> None:
        self._schedule = schedule

    async def taken_times(
        self, account_id: UUID, since: datetime, exclude_post_id: UUID | None = None
    ) -> list[TakenTime]:
        return self._schedule.taken_times(account_id, since, exclude_post_id)


class AsyncMemoryUnitOfWork:
    posts: AsyncPosts
    accounts: AsyncAccounts
    idempotency: AsyncIdempotencyKeys
    audit: AsyncAuditLog
    schedule: AsyncScheduleQueries
    outbox: EventLog

    def __init__(self, sync: MemoryUnitOfWork, turn: asyncio.Lock) -> None:
        self._sync = sync
        self._turn = turn
        self.outbox = sync.outbox
        self.posts = _Posts(sync.posts)
        self.accounts = _Accounts(sync.accounts)
        self.idempotency = _IdempotencyKeys(sync.idempotency)
        self.audit = _AuditLog(sync.audit)
        self.schedule = _ScheduleQueries(sync.schedule)

    async def __aenter__(self) -> Self:
        await self._turn.acquire()
        try:
            self._sync.__enter__()
        except BaseException:
            self._turn.release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._sync.__exit__(exc_type, exc, tb)
        finally:
            self._turn.release()

    async def commit(self) -> None:
        self._sync.commit()


class AsyncMemoryUnitOfWorkFactory:
    """Asynchronous units of work on the store of a synchronous factory (both kinds
    share its rows, as both SQL kinds share the database)."""

    def __init__(self, sync: MemoryUnitOfWorkFactory) -> None:
        self._sync = sync
        self._turn = asyncio.Lock()

    def __call__(self) -> AsyncMemoryUnitOfWork:
        unit = self._sync()
        assert isinstance(unit, MemoryUnitOfWork)
        return AsyncMemoryUnitOfWork(unit, self._turn)
