"""Scheduling use cases: schedule or reschedule, cancel, batch, free slots.

Lock order: the account row first, then the post row. Scheduling holds the
account's row lock (SELECT ... FOR UPDATE) while it reads the account's other
posts and writes the new time, so two requests racing for one free time on
one account run one after the other and the second sees the first's post.

They run on the asynchronous unit of work (ports.async_unit_of_work): awaited on
the serving loop, with no worker thread between the request and the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from post_management.domain.account import Account, account_not_found
from post_management.domain.auth import Principal
from post_management.domain.conflicts import resolve_conflict
from post_management.domain.errors import (
    Aborted,
    DomainError,
    InvalidArgument,
)
from post_management.domain.post import Post, Priority
from post_management.domain.reasons import Reason
from post_management.domain.requested_time import (
    DEFAULT_HORIZON,
    DEFAULT_PAST_GRACE,
    check_window,
    resolve_requested_time,
)
from post_management.domain.slots import SlotPolicy, free_slots, next_free_slot
from post_management.domain.timezones import load_zone
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.schedule_queries import BestTimeFinder
from post_management.ports.support import Clock
from post_management.services.posts.content_screening import ContentScreen, findings_entry
from post_management.services.scheduling.support import (
    LOOKBACK,
    BatchItem,
    FreeSlots,
    RefusedItem,
    RulesMemo,
    ScheduleRequest,
    ScheduleResult,
    account_rules,
    at_index,
    check_request,
    ensure_not_duplicate,
    foreign_error,
    load_own_post,
    replayed,
    request_key,
)
from post_management.services.shared.commands import AsyncCommand, AsyncCommandRunner

DEFAULT_FREE_SLOTS = 5
MAX_FREE_SLOTS = 50
MAX_BATCH = 100


class SchedulingService:
    def __init__(
        self,
        uow: AsyncUnitOfWorkFactory,
        clock: Clock,
        *,
        past_grace: timedelta = DEFAULT_PAST_GRACE,
        horizon: timedelta = DEFAULT_HORIZON,
        suggestions: int = 3,
        screen: ContentScreen | None = None,
        best_time: BestTimeFinder | None = None,
    ) -> None:
        self._uow = uow
        self._commands = AsyncCommandRunner(uow)
        self._clock = clock
        self._screen = screen or ContentScreen(None)
        self._past_grace = past_grace
        self._horizon = horizon
        self._suggestions = suggestions
        self._best_time = best_time

    # --- schedule -------------------------------------------------------------

    async def schedule(
        self, principal: Principal, request: ScheduleRequest, rules: RulesMemo | None = None
    ) -> ScheduleResult:
        principal.ensure_can_act_for(request.user_id)
        check_request(request)
        memo = rules or RulesMemo()
        return await self._commands.run(
            principal,
            lambda run: self._schedule_in(run, request, memo),
            # Hashed only when there is a request id to remember it by.
            request=request_key(request) if request.request_id else None,
            # Asked once the account and the post are locked (_schedule_in).
            replay=lambda uow, earlier: replayed(uow, earlier, request),
        )

    async def batch(
        self,
        principal: Principal,
        user_id: str,
        requests: Sequence[ScheduleRequest | RefusedItem],
        *,
        all_or_nothing: bool,
    ) -> list[BatchItem]:
        """All-or-nothing: one transaction, and the first failure fails the batch
        with its error naming the index (`requests[i]`). Otherwise each item runs
        in its own transaction and reports its own error (an item the edge could not
        read reports the error it was refused with)."""
        principal.ensure_can_act_for(user_id)
        if len(requests) > MAX_BATCH:
            raise InvalidArgument.for_field(
                "requests", f"at most {MAX_BATCH} items per batch", reason=Reason.BATCH_TOO_LARGE
            )
        for index, request in enumerate(requests):
            if request.user_id != user_id:
                raise at_index(
                    InvalidArgument.for_field(
                        "user_id",
                        "must be empty or the batch's user_id",
                        reason=Reason.USER_MISMATCH,
                    ),
                    index,
                    request.post_id,
                )
        # One parse of each account's stored rules for the whole batch.
        rules = RulesMemo()
        if not all_or_nothing:
            return [await self._batch_item(principal, request, rules) for request in requests]
        checked: list[ScheduleRequest] = []
        for index, request in enumerate(requests):
            try:
                if isinstance(request, RefusedItem):
                    raise request.error
                check_request(request)
            except DomainError as error:
                raise at_index(error, index, request.post_id) from None
            checked.append(request)

        async def schedule_all(run: AsyncCommand) -> list[BatchItem]:
            await self._lock_accounts(run.uow, checked, user_id)
            items = []
            for index, request in enumerate(checked):
                item = run.with_request(request_key(request))
                try:
                    result = await self._schedule_in(item, request, rules)
                except DomainError as error:
                    raise at_index(error, index, request.post_id) from None
                items.append(BatchItem(request.post_id, result))
            return items

        return await self._commands.run(principal, schedule_all)

    async def _batch_item(
        self, principal: Principal, request: ScheduleRequest | RefusedItem, rules: RulesMemo
    ) -> BatchItem:
        if isinstance(request, RefusedItem):
            return BatchItem(request.post_id, error=request.error)
        try:
            return BatchItem(request.post_id, await self.schedule(principal, request, rules))
        except DomainError as error:
            return BatchItem(request.post_id, error=error)

    async def _lock_accounts(
        self, uow: AsyncUnitOfWork, requests: Sequence[ScheduleRequest], user_id: str
    ) -> None:
        # One order for every batch, so two batches over the same accounts
        # cannot deadlock.
        account_ids = set()
        for request in requests:
            post = await uow.posts.get(request.post_id)
            if post is not None and post.user_id == user_id:
                account_ids.add(post.account_id)
        for account_id in sorted(account_ids):
            await uow.accounts.get(account_id, for_update=True)

    async def _schedule_in(
        self, run: AsyncCommand, request: ScheduleRequest, memo: RulesMemo
    ) -> ScheduleResult:
        uow = run.uow
        # Both asked for below, once the lock is held: read in the lock's round trip.
        run.read_ahead_earlier()
        uow.schedule.read_ahead_beside(request.post_id, self._clock.now() - LOOKBACK)
        locked = await uow.accounts.lock_with_post(request.post_id, request.user_id)
        if locked is None:
            await load_own_post(uow, request.post_id, request.user_id)  # NOT_FOUND or foreign
            raise Aborted.concurrent_change()  # the post or its account went meanwhile
        account, post = locked
        if account.id != post.account_id:
            raise Aborted.concurrent_change()  # the post moved to another account meanwhile
        earlier = await run.earlier()
        if earlier is not None:
            return await replayed(uow, earlier, request)
        post.ensure_can("schedule")
        findings = await self._screen.check_post_awaited(post, account)
        now = self._clock.now()
        zone = load_zone(account.timezone, "account.timezone")
        rules = memo.rules_of(account)
        taken = await uow.schedule.taken_times(account.id, now - LOOKBACK, exclude_post_id=post.id)
        times = [entry.at for entry in taken]
        priority = post.priority if request.priority is None else request.priority
        moved, reason = False, ""
        if request.scheduled_for is not None:
            requested = resolve_requested_time(
                request.scheduled_for,
                request.timezone or zone,
                now,
                nonexistent=request.nonexistent,
                ambiguous=request.ambiguous,
                past_grace=self._past_grace,
                horizon=self._horizon,
            )
            resolution = resolve_conflict(
                requested.instant,
                rules,
                zone,
                times,
                now,
                request.conflict_policy,
                suggestions=self._suggestions,
                window=self._horizon,
            )
            instant, moved, reason = resolution.instant, resolution.moved, resolution.reason
            # A move must not leave the horizon either.
            check_window(instant, now, self._past_grace, self._horizon)
        else:
            best = await self._best_slot(uow, request, account, priority, times, now)
            instant = best or next_free_slot(
                rules, zone, times, now, priority, window=self._horizon
            )
        ensure_not_duplicate(post, instant, taken, zone)
        run.track(post)
        timezone = request.timezone.key if request.timezone else account.timezone
        rescheduled = post.schedule(instant, timezone, priority, now)
        await run.save(post, "post.reschedule" if rescheduled else "post.schedule")
        await run.record(findings_entry(run.principal, post, findings, request.request_id))
        return ScheduleResult(post, moved, reason, findings)

    async def _best_slot(
        self,
        uow: AsyncUnitOfWork,
        request: ScheduleRequest,
        account: Account,
        priority: Priority,
        times: list[datetime],
        now: datetime,
    ) -> datetime | None:
        """SLOT_POLICY_BEST: the best free time of the coming week; None falls back to
        the next free slot (URGENT posts, no finder, or nothing free that week)."""
        if request.slot_policy is not SlotPolicy.BEST or priority is Priority.URGENT:
            return None
        if self._best_time is None:
            return None
        # The finder reads the account's history in this command's unit of work.
        return await self._best_time.best_free_time(uow, account, times, now, self._horizon)

    # --- cancel ---------------------------------------------------------------

    async def cancel(self, principal: Principal, post_id: UUID, user_id: str) -> Post:
        """SCHEDULED -> CANCELLED; cancelling a cancelled post returns it unchanged."""
        principal.ensure_can_act_for(user_id)

        async def cancel(run: AsyncCommand) -> Post:
            post = run.track(await load_own_post(run.uow, post_id, user_id, for_update=True))
            reason = f"cancelled by {principal.role}:{principal.subject}"
            if post.cancel(reason, self._clock.now()):
                await run.save(post, "post.cancel")
            return post

        return await self._commands.run(principal, cancel)

    # --- free slots -----------------------------------------------------------

    async def free_slots(
        self,
        principal: Principal,
        account_id: UUID,
        user_id: str = "",
        after: datetime | None = None,
        count: int = 0,
    ) -> FreeSlots:
        """The account's next free times; each counts as taken before the next."""
        if user_id:
            principal.ensure_can_act_for(user_id)
        if count < 0:
            raise InvalidArgument.for_field("count", "must not be negative")
        wanted = min(count or DEFAULT_FREE_SLOTS, MAX_FREE_SLOTS)
        async with self._uow() as uow:
            account = await uow.accounts.get(account_id)
            if account is None:
                raise account_not_found(account_id)
            if user_id and account.user_id != user_id:
                raise foreign_error("account", account_id)
            principal.ensure_can_act_for(account.user_id)
            now = self._clock.now()
            start = max(after or now, now)
            # No slot lies beyond the horizon; refusing here also keeps the slot
            # arithmetic near year 9999 from overflowing.
            if start > now + self._horizon:
                raise InvalidArgument.for_field(
                    "after",
                    f"{start.isoformat()} is beyond the scheduling horizon "
                    f"({(now + self._horizon).isoformat()})",
                    reason=Reason.AFTER_TOO_FAR,
                )
            taken = await uow.schedule.taken_times(account.id, start - LOOKBACK)
        zone = load_zone(account.timezone, "account.timezone")
        slots = free_slots(
            account_rules(account),
            zone,
            [entry.at for entry in taken],
            start,
            wanted,
            window=self._horizon - (start - now),
        )
        return FreeSlots(slots, account.timezone)
