"""The request path's reads (ports/post_reads.py) over the memory store.

PostgreSQL's reads see committed rows only; here a read waits for the loop's open
unit of work to end (a memory unit of work writes the store in place and puts the
old rows back on rollback), then reads under the store's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from post_management.adapters.memory.async_unit_of_work import AsyncMemoryUnitOfWorkFactory
from post_management.adapters.memory.store import Tables, copied
from post_management.domain.post import Post
from post_management.ports.schedule_queries import DueCursor, ScheduledQuery

T = TypeVar("T")


def _matching(tables: Tables, query: ScheduledQuery) -> list[Post]:
    return [
        post
        for post in tables.posts.values()
        if post.user_id == query.user_id
        and post.state is query.state
        and post.scheduled_for is not None
        and (query.account_id is None or post.account_id == query.account_id)
        and (query.priority is None or post.priority == query.priority)
        and (query.start is None or post.scheduled_for >= query.start)
        and (query.end is None or post.scheduled_for < query.end)
    ]


def _due_order(post: Post) -> tuple[object, UUID]:
    return (post.scheduled_for, post.id)


class MemoryPostReads:
    """AsyncPostReader, AsyncScheduleReader and AsyncResource on the store of the
    asynchronous memory units of work they read beside."""

    def __init__(self, units: AsyncMemoryUnitOfWorkFactory) -> None:
        self._units = units

    async def open(self) -> None:
        """Nothing to open: the store is in the process."""

    async def close(self) -> None:
        """Nothing to close."""

    async def get(self, post_id: UUID) -> Post | None:
        def read(tables: Tables) -> Post | None:
            found = tables.posts.get(post_id)
            return copied(found) if found is not None else None

        return await self._committed(read)

    async def account_owner(self, account_id: UUID) -> str | None:
        def read(tables: Tables) -> str | None:
            account = tables.accounts.get(account_id)
            return account.user_id if account is not None else None

        return await self._committed(read)

    async def scheduled_page(
        self, query: ScheduledQuery, after: DueCursor | None, offset: int, limit: int
    ) -> tuple[list[Post], int]:
        def read(tables: Tables) -> tuple[list[Post], int]:
            matching = _matching(tables, query)
            following = sorted(
                (
                    post
                    for post in matching
                    if after is None or _due_order(post) > (after.due_at, after.id)
                ),
                key=_due_order,
            )
            return [copied(post) for post in following[offset : offset + limit]], len(matching)

        return await self._committed(read)

    async def _committed(self, read: Callable[[Tables], T]) -> T:
        async with self._units.turn:
            with self._units.store.lock:
                return read(self._units.store.tables)
