"""One runner for every command use case: the steps each command takes alike.

A command is a function of an `AsyncCommand`: it loads what it changes, lets the domain
change it and says what it stored (`add`, `save`, `delete`, `created`). The runner and
the command do the rest, the same way for every command:

- replay: a known `request_id` (AIP-155) is answered with the earlier result, before
  the command runs (or when the command asks, once it holds its locks), and so is a
  concurrent twin that committed first (its request id refused ours as a duplicate);
- authorization: `track` checks that the caller may act for the resource's user;
- the version: `track` checks the caller's etag (AIP-154) and keeps the version read,
  and `save` and `delete` store only over that version (ABORTED otherwise);
- the audit row of every change, with the resource before and after, and the
  request id remembered with what it made;
- the commit of the unit of work, which writes the events the change recorded.

What a command checks before it runs (the request's own fields, the length of its
request id) stays with the use case, in the order its answers promise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from post_management.domain.account import Account
from post_management.domain.auth import Principal
from post_management.domain.campaigns import Campaign
from post_management.domain.errors import Aborted
from post_management.domain.media import Media
from post_management.domain.post import Post
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.repositories import AuditEntry, DuplicateKey, IdempotencyRecord
from post_management.services.shared import idempotency
from post_management.services.shared.common import (
    audit_entry,
    check_etag,
    snapshot,
)

T = TypeVar("T")
R = TypeVar("R", Post, Account, Campaign, Media)

_RESOURCE_TYPES: dict[type, str] = {
    Post: "post",
    Account: "account",
    Campaign: "campaign",
    Media: "media",
}


@dataclass(frozen=True)
class RequestKey:
    """A request id, the scope it is unique in (e.g. "CreatePost:{user}") and the
    digest of the request it was first sent with."""

    scope: str
    request_id: str
    digest: str

    @classmethod
    def of(cls, scope: str, request_id: str, request: dict[str, Any]) -> RequestKey:
        """The key of `request`, as hashed for request ids (services/shared/idempotency)."""
        return cls(scope, request_id, idempotency.request_hash(request))


class AsyncCommand:
    """One command's unit of work, caller and request id, and the steps it shares: who
    acts, for which request id, and what `track` read (the audit's "before" and the
    version a save must match)."""

    def __init__(
        self, uow: AsyncUnitOfWork, principal: Principal, request: RequestKey | None = None
    ) -> None:
        self.uow = uow
        self.principal = principal
        self.request = request
        self._read: dict[int, tuple[dict[str, Any], int]] = {}

    @property
    def request_id(self) -> str:
        return self.request.request_id if self.request is not None else ""

    def track(self, resource: R, etag: str = "") -> R:
        """The caller may act for `resource`'s user, and `etag` (when given) is its
        current one; keeps it as read, for the audit and the save's version check."""
        self.principal.ensure_can_act_for(resource.user_id)
        if isinstance(resource, Post | Account):
            check_etag(resource.etag, etag)
            self._read[id(resource)] = (snapshot(resource), resource.version)
        return resource

    def _tracked(self, resource: Post | Account) -> tuple[dict[str, Any], int]:
        """How `track` read it: its audit form and version."""
        return self._read.pop(id(resource))

    def _remembered(self, resource_id: UUID) -> tuple[str, str, IdempotencyRecord] | None:
        """The request id's row naming what it made (None without a request id)."""
        if self.request is None or not self.request.request_id:
            return None
        key = self.request
        return key.scope, key.request_id, IdempotencyRecord(key.digest, resource_id)

    def _entry(
        self,
        action: str,
        resource: Post | Account | Campaign | Media,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> AuditEntry:
        return audit_entry(
            self.principal,
            action,
            resource_type=_RESOURCE_TYPES[type(resource)],
            resource_id=resource.id,
            user_id=resource.user_id,
            before=before,
            after=after,
            request_id=self.request_id,
        )

    def with_request(self, request: RequestKey | None) -> AsyncCommand:
        """The same unit of work and caller, for another request id (a batch item)."""
        return AsyncCommand(self.uow, self.principal, request)

    def read_ahead_earlier(self) -> None:
        """`earlier` will be asked once the next statement (the command's lock) is
        done: its read may go in that statement's round trip."""
        if self.request is not None and self.request.request_id:
            self.uow.idempotency.read_ahead(self.request.scope, self.request.request_id)

    async def earlier(self) -> UUID | None:
        """What an earlier identical request made, if its id is known; INVALID_ARGUMENT
        (REQUEST_ID_REUSED) if the id came with another request."""
        if self.request is None or not self.request.request_id:
            return None
        record = await self.uow.idempotency.get(self.request.scope, self.request.request_id)
        return idempotency.replay_of(record, self.request.digest)

    async def add(self, resource: Post | Account | Campaign, action: str) -> None:
        """Store a new resource and record its creation."""
        if isinstance(resource, Post):
            await self.uow.posts.add(resource)
        elif isinstance(resource, Account):
            await self.uow.accounts.add(resource)
        else:
            await self.uow.campaigns.add(resource)
        await self.created(resource, action)

    async def created(self, resource: Post | Account | Campaign | Media, action: str) -> None:
        """Record the creation of a resource the command stored: the request id now
        names it, and an audit row shows it."""
        if (remembered := self._remembered(resource.id)) is not None:
            await self.uow.idempotency.put(*remembered)
        await self.uow.audit.record(self._entry(action, resource, None, snapshot(resource)))

    async def save(self, resource: Post | Account, action: str) -> None:
        """Store a tracked resource over the version it was read at (ABORTED when a
        concurrent change came first) and record the change."""
        before, version = self._tracked(resource)
        if isinstance(resource, Post):
            saved = await self.uow.posts.save(resource, version)
        else:
            saved = await self.uow.accounts.save(resource, version)
        if not saved:
            raise Aborted.concurrent_change()
        if (remembered := self._remembered(resource.id)) is not None:
            await self.uow.idempotency.put(*remembered)
        await self.uow.audit.record(self._entry(action, resource, before, snapshot(resource)))

    async def delete(self, resource: Post | Account, action: str) -> None:
        """Delete a tracked resource at the version it was read at, and record it."""
        before, version = self._tracked(resource)
        if isinstance(resource, Post):
            deleted = await self.uow.posts.delete(resource.id, version)
        else:
            deleted = await self.uow.accounts.delete(resource.id, version)
        if not deleted:
            raise Aborted.concurrent_change()
        await self.uow.audit.record(self._entry(action, resource, before, None))

    async def record(self, entry: AuditEntry | None) -> None:
        """Write another audit row of the command (none for None)."""
        if entry is not None:
            await self.uow.audit.record(entry)


class AsyncCommandRunner:
    """Runs commands in asynchronous units of work from `uow`."""

    def __init__(self, uow: AsyncUnitOfWorkFactory) -> None:
        self._uow = uow

    async def run(
        self,
        principal: Principal,
        command: Callable[[AsyncCommand], Awaitable[T]],
        *,
        request: RequestKey | None = None,
        replay: Callable[[AsyncUnitOfWork, UUID], Awaitable[T]] | None = None,
        replay_first: bool = False,
    ) -> T:
        """Run `command` and commit. With `replay`, a known request id is answered by
        `replay(uow, what the earlier request made)`: when the command asks
        `AsyncCommand.earlier` (once it holds its locks), or before it runs with
        `replay_first`."""
        try:
            async with self._uow() as uow:
                run = AsyncCommand(uow, principal, request)
                if replay is not None and replay_first and (earlier := await run.earlier()):
                    return await replay(uow, earlier)
                result = await command(run)
                await uow.commit()
            return result
        except DuplicateKey:
            # A concurrent twin with the same request id committed first: its result.
            if replay is None or request is None or not request.request_id:
                raise
            async with self._uow() as uow:
                earlier = await AsyncCommand(uow, principal, request).earlier()
                if earlier is None:
                    raise
                return await replay(uow, earlier)
