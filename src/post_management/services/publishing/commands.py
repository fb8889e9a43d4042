"""PublishPost and the dead-letter queue, over the same claim path as the dispatcher."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from post_management.domain.auth import Principal, Role
from post_management.domain.errors import (
    InvalidArgument,
    PermissionDenied,
)
from post_management.domain.post import UNDECIDED_STATES, Post, PostState, post_not_found
from post_management.domain.reasons import Reason
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.publishing import PublishQueue
from post_management.ports.repositories import PostFilter
from post_management.ports.support import Clock
from post_management.services.publishing.engine import Publisher
from post_management.services.shared import idempotency
from post_management.services.shared.commands import AsyncCommand, AsyncCommandRunner, RequestKey
from post_management.services.shared.common import ensure_account_filter
from post_management.services.shared.pagination import (
    Page,
    by_creation,
    decode_token,
    page_of,
    page_size,
)

# How long an immediate publish keeps trying to claim a post another claim's lock or
# the account's turn kept from it: a dispatcher's claim holds the lock for milliseconds.
CLAIM_RETRY = timedelta(seconds=1)
# What an immediate publish leaves of the caller's deadline to send its answer.
DEADLINE_MARGIN = timedelta(seconds=0.5)

# Posts that failed for good: what ListDeadLetters may list.
PERMANENT_FAILURES = (PostState.DEAD_LETTERED, PostState.FAILED)
MAX_REASON_FILTER = 200


def _dead_letter_states(states: tuple[PostState, ...]) -> tuple[PostState, ...]:
    if not states:
        return (PostState.DEAD_LETTERED,)
    for index, state in enumerate(states):
        if state not in PERMANENT_FAILURES:
            raise InvalidArgument.for_field(
                f"states[{index}]",
                "must be POST_STATE_DEAD_LETTERED or POST_STATE_FAILED",
                reason=Reason.INVALID_STATE_FILTER,
            )
    return tuple(sorted(set(states)))


@dataclass(frozen=True)
class PublishRequest:
    post_id: UUID
    user_id: str
    account_id: UUID | None
    immediate: bool
    override_schedule: bool
    request_id: str = ""
    # How long the caller still waits for the answer (its gRPC deadline), if it said.
    deadline_in: timedelta | None = None


@dataclass(frozen=True)
class DeadLetterQuery:
    """ListDeadLetters' filters: a user (a user's own by default), an account, the
    states (DEAD_LETTERED when none) and text the last error contains."""

    user_id: str = ""
    account_id: UUID | None = None
    states: tuple[PostState, ...] = ()
    reason: str = ""


class PublishCommands:
    """PublishPost, ListDeadLetters and RequeueDeadLetter on the asynchronous unit of
    work, awaited on the serving loop. Publishing now claims the post and runs the
    engine's Publisher (X calls and its own transactions, blocking) in a worker
    thread."""

    def __init__(
        self,
        uow: AsyncUnitOfWorkFactory,
        queue: PublishQueue,
        publisher: Publisher,
        clock: Clock,
        lease: timedelta,
        *,
        outcome_wait: timedelta,
    ) -> None:
        """`outcome_wait`: how long an immediate publish waits for the outcome when
        another publisher (a dispatcher) claimed the post first, at most one X call
        (and less than the caller's deadline)."""
        self._uow = uow
        self._commands = AsyncCommandRunner(uow)
        self._queue = queue
        self._publisher = publisher
        self._clock = clock
        self._lease = lease
        self._outcome_wait = outcome_wait

    async def publish(self, principal: Principal, request: PublishRequest) -> tuple[Post, bool]:
        """Returns (post, queued): queued is True when the answer is not the post's
        outcome (queued, waiting for its turn or a retry, or X's answer in doubt)."""
        principal.ensure_can_act_for(request.user_id)
        idempotency.check_request_id(request.request_id)
        fields = {
            "immediate": request.immediate,
            "override": request.override_schedule,
            "account": str(request.account_id),
        }
        key = RequestKey.of(f"PublishPost:{request.post_id}", request.request_id, fields)

        # (the post, whether this call queued it): a replay answers as it is now.
        async def queue_now(run: AsyncCommand) -> tuple[Post, bool]:
            return await self._queue_now(run, request), True

        async def replay(uow: AsyncUnitOfWork, _: UUID) -> tuple[Post, bool]:
            return await self._load(uow, request), False

        post, queued_by_this_call = await self._commands.run(
            principal, queue_now, request=key, replay=replay, replay_first=True
        )
        if not queued_by_this_call:
            # A replay answers as the post is now.
            return post, post.state in UNDECIDED_STATES
        if not request.immediate:
            return post, True
        return await self._publish_immediately(request)

    async def _publish_immediately(self, request: PublishRequest) -> tuple[Post, bool]:
        """Publish on this call and answer with the outcome. A dispatcher may claim the
        post between the commit that queued it and this call's claim: the answer is
        then that publisher's outcome, if it comes within the outcome wait. A claim
        kept from the post by a lock is tried again for a second, after which an
        account that may not publish now (its turn, a rate limit, a pause) leaves the
        post queued. `queued` is True whenever the answer is not the outcome."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome_wait = self._outcome_wait
        if request.deadline_in is not None:
            # Answer before the caller gives up on the call.
            outcome_wait = min(outcome_wait, request.deadline_in - DEADLINE_MARGIN)
        pause = 0.02
        claimed = await asyncio.to_thread(self._publish_now, request.post_id)
        current = await self._current(request)
        while not claimed and current.state in UNDECIDED_STATES:
            limit = outcome_wait
            if current.state is PostState.SCHEDULED:
                limit = min(limit, CLAIM_RETRY)
            left = limit.total_seconds() - (loop.time() - started)
            if left <= 0:
                break
            # Never past the wait's end: the answer goes out when it is over.
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)
            if current.state is PostState.SCHEDULED:
                claimed = await asyncio.to_thread(self._publish_now, request.post_id)
            current = await self._current(request)
        # PUBLISHING after this call's own attempt: X's answer was lost, the
        # reconciler decides; SCHEDULED: it waits for a retry or its account's turn.
        return current, current.state in UNDECIDED_STATES

    async def _current(self, request: PublishRequest) -> Post:
        async with self._uow() as uow:
            return await self._load(uow, request)

    def _publish_now(self, post_id: UUID) -> bool:
        """Claim the post and publish it on the calling thread (the engine's steps
        block); False when it could not be claimed."""
        claim = self._queue.claim_post(post_id, self._lease)
        if claim is None:
            return False
        self._publisher.publish(claim)
        return True

    async def _load(
        self, uow: AsyncUnitOfWork, request: PublishRequest, for_update: bool = False
    ) -> Post:
        post = await uow.posts.get(request.post_id, for_update=for_update)
        if post is None:
            raise post_not_found(request.post_id)
        if post.user_id != request.user_id:
            raise PermissionDenied("the post belongs to another user", reason=Reason.FOREIGN_POST)
        return post

    async def _queue_now(self, run: AsyncCommand, request: PublishRequest) -> Post:
        post = await self._load(run.uow, request, for_update=True)
        now = self._clock.now()
        post.ensure_publishable(now, request.override_schedule)
        run.track(post)
        if request.account_id is not None and request.account_id != post.account_id:
            post.ensure_can_move(request.account_id)
            account = await run.uow.accounts.get(request.account_id)
            if account is None or account.user_id != post.user_id:
                raise InvalidArgument.for_field(
                    "account_id", "is not an account of this user", reason=Reason.UNKNOWN_ACCOUNT
                )
        post.queue_now(
            now, override_schedule=request.override_schedule, account_id=request.account_id
        )
        await run.save(post, "post.publish")
        return post

    # --- dead letters -------------------------------------------------------

    async def list_dead_letters(
        self, principal: Principal, filters: DeadLetterQuery, size: int, token: str
    ) -> Page[Post]:
        """Posts that failed permanently: DEAD_LETTERED (default) and/or FAILED."""
        user_id, account_id, reason = filters.user_id, filters.account_id, filters.reason
        if principal.role is Role.USER:
            user_id = user_id or principal.subject
            principal.ensure_can_act_for(user_id)
        states = _dead_letter_states(filters.states)
        if len(reason) > MAX_REASON_FILTER:
            raise InvalidArgument.for_field(
                "reason", f"at most {MAX_REASON_FILTER} characters", reason=Reason.FILTER_TOO_LONG
            )
        where = PostFilter(
            user_id or None, account_id, states=states, error_contains=reason or None
        )
        limit = page_size(size)
        query = {
            "user_id": user_id,
            "account_id": str(account_id or ""),
            "states": ",".join(state.value for state in states),
            "reason": reason,
        }
        after = decode_token(token, query)
        async with self._uow() as uow:
            await ensure_account_filter(uow, principal, account_id)
            posts = await uow.posts.list(where, after, limit + 1)
        return page_of(posts, limit, query, by_creation)

    async def requeue(self, principal: Principal, post_id: UUID) -> Post:
        async def requeue(run: AsyncCommand) -> Post:
            post = await run.uow.posts.get(post_id, for_update=True)
            if post is None:
                raise post_not_found(post_id)
            run.track(post).requeue(self._clock.now())
            await run.save(post, "post.requeue")
            return post

        return await self._commands.run(principal, requeue)
