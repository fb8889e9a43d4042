"""How a publish reaches the queue, X and the spend ledger.

The publisher's steps are written once, as a coroutine (engine.Publisher.run), and
run two ways:

- `DirectSteps`: each step on the calling thread, in its own transaction, X through
  the synchronous client. Nothing suspends, so `run_inline` drives the coroutine
  without an event loop (PublishPost, tests).
- `BatchedSteps`: on the dispatcher's event loop. Every claimed post is a task; X is
  called through the asynchronous client (one connection pool for every account);
  the queue steps of all the posts in flight are gathered and committed together
  (`GroupCommit`): while one batch is being written the next one fills, so a burst
  costs one transaction per batch instead of one per post, and a lone post waits
  for no one.

Batching never merges what a post is promised (docs/reliability.md): each post's send
is noted, and its lease renewed, in a commit before its create-post call, and a post
whose holder lost the claim gets False and never calls X; each settlement applies
only while its own holder holds the post.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, cast
from uuid import UUID

from post_management.domain.publishing import Claim, Settlement
from post_management.ports.publishing import PublishQueue
from post_management.ports.support import Clock
from post_management.ports.x_api import NewPost, PublishOutcome, XApi, XCredentials, XPoster
from post_management.ports.x_spend import BudgetState, SpendMeter

log = logging.getLogger(__name__)

T = TypeVar("T")
Item = TypeVar("Item")
Result = TypeVar("Result")


class Steps(Protocol):
    """What a publish does outside its own decisions."""

    def budget_time(self, claim: Claim) -> datetime:
        """The time the posting budgets' windows are counted on (the database's)."""
        ...

    async def x_budget(self, account_id: UUID) -> BudgetState | None: ...

    async def sending(
        self, claim: Claim, lease: timedelta, x_media_ids: Sequence[str] | None
    ) -> bool: ...

    async def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome: ...

    async def settle(self, claim: Claim, settlement: Settlement) -> bool: ...

    async def call(self, work: Callable[[], T]) -> T:
        """Any other step that blocks (media, thread segments, the spend ledger)."""
        ...

    async def limit(self, work: Callable[[], T]) -> T:
        """A posting-budget step (the rate limiter)."""
        ...


def run_inline(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends: every step it awaits runs on
    the calling thread (DirectSteps)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError("a publish on the calling thread waited for an event loop")


class DirectSteps:
    """Each step on the calling thread, in its own transaction."""

    def __init__(
        self, queue: PublishQueue, x_api: XApi, clock: Clock, meter: SpendMeter | None
    ) -> None:
        self._queue = queue
        self._x = x_api
        self._clock = clock
        self._meter = meter

    def budget_time(self, claim: Claim) -> datetime:
        return self._clock.now()

    async def x_budget(self, account_id: UUID) -> BudgetState | None:
        return None if self._meter is None else self._meter.budget(account_id)

    async def sending(
        self, claim: Claim, lease: timedelta, x_media_ids: Sequence[str] | None
    ) -> bool:
        return self._queue.sending(claim, lease, x_media_ids)

    async def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        return self._x.create_post(creds, post)

    async def settle(self, claim: Claim, settlement: Settlement) -> bool:
        return self._queue.settle(claim, settlement)

    async def call(self, work: Callable[[], T]) -> T:
        return work()

    async def limit(self, work: Callable[[], T]) -> T:
        return work()


class GroupCommit(Generic[Item, Result]):
    """Gathers the items that tasks of one event loop submit and hands them to
    `write` (a blocking call, run in `executor`) together: the first item is written
    at once, and those submitted meanwhile go in the next batch. `write` returns one
    result per item, in order; an Exception as a result is raised to that item's
    task alone, an exception of `write` itself to every task of the batch."""

    def __init__(
        self,
        write: Callable[[list[Item]], Sequence[Result | Exception]],
        executor: Executor,
        max_batch: int = 500,
    ) -> None:
        self._write = write
        self._executor = executor
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._write, [item for item, _ in batch]
                    )
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._writer = None


class BatchedSteps:
    """The steps of the posts in flight on one event loop: queue writes and budget
    reads gathered per batch (GroupCommit), X called asynchronously."""

    def __init__(
        self,
        queue: PublishQueue,
        poster: XPoster,
        meter: SpendMeter | None,
        executor: Executor,
        *,
        commits: Executor,
        limiter_blocks: bool,
    ) -> None:
        self._queue = queue
        self._poster = poster
        self._meter = meter
        self._executor = executor
        self._limiter_blocks = limiter_blocks
        self._sending: GroupCommit[tuple[Claim, timedelta, Sequence[str] | None], bool] = (
            GroupCommit(self._send_all, commits)
        )
        self._settling: GroupCommit[tuple[Claim, Settlement], bool] = GroupCommit(
            queue.settle_many, commits
        )
        self._budgets: GroupCommit[UUID, BudgetState | None] = GroupCommit(
            self._budgets_of, commits
        )
        self._known: dict[UUID, BudgetState | None] = {}

    def budget_time(self, claim: Claim) -> datetime:
        # The database's clock, carried forward from the claim on the monotonic clock:
        # no round trip per post.
        return claim.now()

    def know_budgets(self, budgets: Mapping[UUID, BudgetState | None]) -> None:
        """Budget states read with the claims (None: no budget), until `forget`."""
        self._known.update(budgets)

    def forget(self, account_id: UUID) -> None:
        self._known.pop(account_id, None)

    async def x_budget(self, account_id: UUID) -> BudgetState | None:
        if self._meter is None:
            return None
        if account_id in self._known:
            return self._known[account_id]
        return await self._budgets.submit(account_id)

    async def sending(
        self, claim: Claim, lease: timedelta, x_media_ids: Sequence[str] | None
    ) -> bool:
        return await self._sending.submit((claim, lease, x_media_ids))

    async def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        return await self._poster.create_post(creds, post)

    async def settle(self, claim: Claim, settlement: Settlement) -> bool:
        return await self._settling.submit((claim, settlement))

    async def call(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def limit(self, work: Callable[[], T]) -> T:
        if self._limiter_blocks:  # a network round trip (Redis): off the loop
            return await self.call(work)
        return work()

    def _send_all(self, items: list[tuple[Claim, timedelta, Sequence[str] | None]]) -> list[bool]:
        # One lease for all: the engine's. Items with another one are sent alone.
        lease = items[0][1]
        if any(item[1] != lease for item in items):
            return [self._queue.sending(c, item_lease, m) for c, item_lease, m in items]
        return self._queue.sending_many([(claim, media) for claim, _, media in items], lease)

    def _budgets_of(self, account_ids: list[UUID]) -> list[BudgetState | None]:
        assert self._meter is not None
        found = self._meter.budgets(account_ids)
        return [found.get(account_id) for account_id in account_ids]


class InlinePoster:
    """A synchronous XApi as an XPoster: each call blocks the loop. For the in-memory
    X of tests; the service gives the dispatcher the asynchronous client."""

    def __init__(self, x_api: XApi) -> None:
        self._x = x_api

    async def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        return self._x.create_post(creds, post)

    async def aclose(self) -> None:
        return None


class LoopThread:
    """An event loop of its own in a daemon thread, started on first use (made by
    `loop_factory`, asyncio's default loop without one)."""

    def __init__(
        self, name: str, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    ) -> None:
        self._name = name
        self._factory = loop_factory or asyncio.new_event_loop
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = self._factory()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.loop().call_soon_threadsafe(callback)

    def close(self, before: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run `before` on the loop (closing its connections), then stop the loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if before is not None:
            try:
                asyncio.run_coroutine_threadsafe(before(), loop).result(timeout=10)
            except Exception:
                log.exception("closing the publishing loop's connections failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
