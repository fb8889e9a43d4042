"""ListScheduledPosts: a user's posts in due order, by offset or by page token."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from post_management.domain.auth import Principal
from post_management.domain.date_range import DateRange
from post_management.domain.errors import InvalidArgument
from post_management.domain.post import Post, PostState, Priority
from post_management.ports.post_reads import AsyncScheduleReader
from post_management.ports.repositories import Cursor
from post_management.ports.schedule_queries import DueCursor, ScheduledQuery
from post_management.services.shared.common import ensure_account_owner
from post_management.services.shared.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_token,
    encode_token,
)


@dataclass(frozen=True)
class ScheduledFilter:
    user_id: str
    account_id: UUID | None = None
    # None: SCHEDULED, the posts still waiting to be published.
    state: PostState | None = None
    # None: any priority.
    priority: Priority | None = None
    # Due times in this range; open sides are no bound.
    dates: DateRange = field(default_factory=DateRange)


@dataclass(frozen=True)
class Paging:
    """Which page: by offset or by page token, not both; limit 0 is the default size."""

    limit: int = 0
    offset: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class ScheduledPage:
    posts: list[Post]
    total_count: int
    limit: int
    offset: int
    next_page_token: str


@dataclass(frozen=True)
class _Plan:
    """A checked request: what to read and how to page it."""

    query: ScheduledQuery
    after: DueCursor | None
    offset: int
    size: int
    fingerprint: dict[str, str]


def _plan(principal: Principal, where: ScheduledFilter, paging: Paging) -> _Plan:
    principal.ensure_can_act_for(where.user_id)
    if paging.limit < 0:
        raise InvalidArgument.for_field("limit", "must not be negative")
    if paging.offset < 0:
        raise InvalidArgument.for_field("offset", "must not be negative")
    if paging.offset and paging.page_token:
        raise InvalidArgument.for_field(
            "page_token", "cannot be combined with offset; use one or the other"
        )
    size = min(paging.limit or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    query = ScheduledQuery(
        user_id=where.user_id,
        state=where.state or PostState.SCHEDULED,
        account_id=where.account_id,
        priority=where.priority,
        start=where.dates.start,
        end=where.dates.end,
    )
    # The token is bound to the filters (not to limit: pages may change size).
    fingerprint = {
        "list": "scheduled",
        **{key: str(value) for key, value in vars(query).items() if value is not None},
    }
    cursor = decode_token(paging.page_token, fingerprint)
    after = DueCursor(cursor.created_at, cursor.id) if cursor is not None else None
    return _Plan(query, after, paging.offset, size, fingerprint)


def _page(plan: _Plan, posts: list[Post], total: int) -> ScheduledPage:
    next_token = ""
    if len(posts) > plan.size:
        posts = posts[: plan.size]
        last = posts[-1]
        assert last.scheduled_for is not None  # the query only returns timed posts
        next_token = encode_token(Cursor(last.scheduled_for, last.id), plan.fingerprint)
    return ScheduledPage(posts, total, plan.size, plan.offset, next_token)


class ScheduledListing:
    """The listing awaited on the event loop (ports.post_reads): no thread hop."""

    def __init__(self, reader: AsyncScheduleReader) -> None:
        self._reader = reader

    async def list(
        self, principal: Principal, where: ScheduledFilter, paging: Paging
    ) -> ScheduledPage:
        plan = _plan(principal, where, paging)
        if where.account_id is not None:
            owner = await self._reader.account_owner(where.account_id)
            if owner is not None:
                ensure_account_owner(principal, owner)
        posts, total = await self._reader.scheduled_page(
            plan.query, plan.after, plan.offset, plan.size + 1
        )
        return _page(plan, posts, total)
