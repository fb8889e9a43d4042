"""Asynchronous reads for the request path: awaited on the event loop, no thread hop.

These ports only read committed rows, each call one statement; the commands' writes
go through a unit of work (ports.async_unit_of_work on the request path).
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from post_management.domain.post import Post
from post_management.ports.schedule_queries import DueCursor, ScheduledQuery


class AsyncPostReader(Protocol):
    async def get(self, post_id: UUID) -> Post | None:
        """The committed post, or None when no post has this id."""
        ...


class AsyncScheduleReader(Protocol):
    async def account_owner(self, account_id: UUID) -> str | None:
        """The user an account belongs to, or None when there is no such account."""
        ...

    async def scheduled_page(
        self, query: ScheduledQuery, after: DueCursor | None, offset: int, limit: int
    ) -> tuple[list[Post], int]:
        """Up to `limit` posts in due order (due_at, id), and how many match in all."""
        ...


class AsyncResource(Protocol):
    """Something the server opens on its event loop before serving and closes after."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...
