"""The publishing engine: publish a claimed post once, dispatch due posts, and
reconcile posts whose outcome on X is unknown."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from functools import partial
from uuid import UUID

from post_management.domain.media import X_MEDIA_REUSE_WINDOW
from post_management.domain.post import PostState
from post_management.domain.publishing import Claim, Settlement, Timing, outcomes
from post_management.domain.x_matching import same_media, same_post
from post_management.domain.x_spend import (
    CallKind,
    Metered,
    Outcome,
    Purpose,
    over_budget,
    publish_cost,
    refused_read,
)
from post_management.observability import crash_points as crash
from post_management.ports.media import MediaUploads
from post_management.ports.publishing import PublishQueue, RateLimiter, Taken
from post_management.ports.support import Clock
from post_management.ports.x_api import (
    AccountSuspended,
    Interrupted,
    MediaUploaded,
    NewPost,
    PermanentFailure,
    Published,
    RateLimited,
    RateLimitInfo,
    Timeline,
    Unauthorized,
    UnknownOutcome,
    XApi,
    XCredentials,
    XPost,
    XPoster,
)
from post_management.ports.x_spend import BudgetState, SpendMeter
from post_management.services.publishing import telemetry
from post_management.services.publishing.budget import BudgetSettings, PostBudgets
from post_management.services.publishing.pipeline import (
    BatchedSteps,
    DirectSteps,
    InlinePoster,
    LoopThread,
    Steps,
    run_inline,
)
from post_management.services.publishing.spend import metered_create, metered_upload

log = logging.getLogger(__name__)

# X's documented limits for POST /2/tweets.
USER_POSTS_PER_WINDOW = 100
USER_WINDOW = timedelta(minutes=15)
APP_POSTS_PER_DAY = 10_000
APP_WINDOW = timedelta(hours=24)
# Search the timeline from a little before the send: X's clock is not ours.
CLOCK_MARGIN = timedelta(minutes=2)
# The shortest wait before the reconciler looks at a post again.
MIN_LOOK = timedelta(seconds=1)
# How far behind the database's clock the dispatcher's carried time is kept.
CARRIED_CLOCK_MARGIN = timedelta(seconds=1)
# How often a send is noted again when each note went stale before the call left.
NOTE_TRIES = 3
# The latest a create-post call may leave after its note (less when the lease leaves
# less room): the reconciler adds it to the proof when the holder never came back.
MAX_SEND_DELAY = timedelta(seconds=5)
STALE_NOTES = "X not called: every note of the send went stale before the call"


class Note(Enum):
    """What noting a send came to."""

    FRESH = "fresh"  # the call may leave now
    LOST = "lost"  # another holder has the post
    STALE = "stale"  # each note aged past the send window: X was not called


TimelineFailure = PermanentFailure | UnknownOutcome | AccountSuspended | Unauthorized


@dataclass(frozen=True)
class EngineSettings:
    timing: Timing
    lease: timedelta = timedelta(seconds=90)  # longer than any X call can take
    # The longest one X call may take (X_TIMEOUT_SECONDS plus the connect timeout).
    x_call: timedelta = timedelta(seconds=25)
    batch_size: int = 100
    max_in_flight: int = 256
    user_limit: int = USER_POSTS_PER_WINDOW
    app_limit: int = APP_POSTS_PER_DAY
    user_window: timedelta = USER_WINDOW
    app_window: timedelta = APP_WINDOW

    def __post_init__(self) -> None:
        if self.x_call >= self.lease:
            # No note could stay fresh: nothing would ever be sent.
            raise ValueError(f"the lease ({self.lease}) must outlast one X call ({self.x_call})")

    @property
    def send_window(self) -> timedelta:
        """How long after its note a create-post call may still leave: the lease the
        note renewed must outlast the call, or the reconciler could look at X while
        the call may still land; and at most MAX_SEND_DELAY, which the reconciler's
        proof allows for."""
        return min(self.lease - self.x_call, MAX_SEND_DELAY)


class Publisher:
    """Makes the create-post call of each unpublished segment of a claim (one for a
    post without a thread) and settles the result."""

    def __init__(
        self,
        queue: PublishQueue,
        x_api: XApi,
        limiter: RateLimiter,
        clock: Clock,
        settings: EngineSettings,
        media: MediaUploads | None = None,
        meter: SpendMeter | None = None,
        *,
        poster: XPoster | None = None,
        limiter_blocks: bool = False,
    ) -> None:
        self._queue = telemetry.observed(queue)
        # What X charges: each call recorded with its outcome, budgets checked first.
        self._meter = meter
        self._x = x_api
        # The dispatcher's create-post calls, on its event loop.
        self._poster = poster or InlinePoster(x_api)
        self._limiter_blocks = limiter_blocks
        self._budgets = PostBudgets(
            limiter,
            BudgetSettings(
                settings.user_limit, settings.user_window, settings.app_limit, settings.app_window
            ),
        )
        # The posting budgets' windows run on it (the database's clock in the service,
        # so every worker counts alike); due times and leases never do.
        self._clock = clock
        self._settings = settings
        self._media = media
        self._direct = DirectSteps(self._queue, x_api, clock, meter)

    def publish(self, claim: Claim) -> PostState:
        """Publish on the calling thread, each step in its own transaction."""
        return run_inline(self.run(claim, self._direct))

    def batched(self, executor: Executor, commits: Executor) -> BatchedSteps:
        """Steps for the dispatcher's event loop (pipeline.py): `commits` runs the
        batched queue writes and budget reads, `executor` the other blocking steps."""
        return BatchedSteps(
            self._queue,
            self._poster,
            self._meter,
            executor,
            commits=commits,
            limiter_blocks=self._limiter_blocks,
        )

    async def close(self) -> None:
        """Close the dispatcher's X connections (on its loop)."""
        await self._poster.aclose()

    def x_budgets(self, claims: Sequence[Claim]) -> dict[UUID, BudgetState | None]:
        """The X budget state of each claim's account, read at once (None: no budget);
        empty without a meter, or when the read fails (each publish reads its own)."""
        if self._meter is None:
            return {}
        accounts = [claim.account_id for claim in claims]
        try:
            found = self._meter.budgets(accounts)
        except Exception:
            log.exception("reading the X budgets of %d claims failed", len(claims))
            return {}
        return {account: found.get(account) for account in accounts}

    @telemetry.publishing
    async def run(self, claim: Claim, steps: Steps) -> PostState:
        crash.crash_point(crash.AFTER_CLAIM)
        now = claim.now()
        if claim.credentials_problem:
            settlement = outcomes.parked(claim, claim.credentials_problem, now)
            await self._settle(steps, claim, settlement)
            return settlement.state
        if claim.credentials is None:
            settlement = outcomes.failed(
                claim, "NO_CREDENTIALS", "the account has no X credentials", now
            )
            await self._settle(steps, claim, settlement)
            return settlement.state
        held = await self._over_x_budget(steps, claim, now)
        if held is not None:
            await self._settle(steps, claim, held)
            return held.state
        spent: list[Metered] = []
        taken = await self._take_budget(steps, claim, spent)
        if isinstance(taken, Settlement):
            return taken.state
        uploaded: tuple[str, ...] = ()
        if claim.attachment_ids and not claim.segment_x_post_ids:
            media = await steps.call(partial(self._upload_media, claim, spent))
            if media is None or isinstance(media, Settlement):
                await self._give_back(steps, taken)  # no create-post call was made
            if isinstance(media, Settlement):
                await self._settle(steps, claim, media, spent)
                return media.state
            if media is None:
                await self._meter_alone(steps, spent)
                return PostState.PUBLISHING
            uploaded = media
        return await self._publish_segments(steps, claim, uploaded, taken, spent)

    async def _over_x_budget(self, steps: Steps, claim: Claim, now: datetime) -> Settlement | None:
        """The post waits when its calls would take the month's X spend above the
        account's budget (docs/x-spend.md)."""
        if self._meter is None:
            return None
        state = await steps.x_budget(claim.account_id)
        if state is None or state.budget_micros is None:
            return None
        remaining = claim.segments[len(claim.segment_x_post_ids) :]
        uploads = 0 if claim.segment_x_post_ids else len(claim.attachment_ids)
        needed = publish_cost(remaining, uploads, self._meter.prices, now)
        if not over_budget(state.spent_micros, needed, state.budget_micros):
            return None
        return outcomes.budget_wait(claim, state.budget_micros, state.spent_micros, needed, now)

    async def _meter_alone(self, steps: Steps, spent: Sequence[Metered]) -> None:
        """Calls whose outcome this attempt could not settle (its claim was lost)."""
        if self._meter is not None and spent:
            await steps.call(partial(self._meter.record, spent))

    async def _give_back(self, steps: Steps, taken: Taken) -> None:
        await steps.limit(partial(self._budgets.give_back, taken))

    async def _publish_segments(
        self,
        steps: Steps,
        claim: Claim,
        uploaded: tuple[str, ...],
        taken: Taken,
        spent: list[Metered],
    ) -> PostState:
        """From the first segment not yet on X to the last, each replying to the one
        before; each id is recorded before the next call so a retry never repeats one."""
        segments = claim.segments
        published = list(claim.segment_x_post_ids)
        rate_limit: RateLimitInfo | None = None
        lease = self._settings.lease
        for index in range(len(published), len(segments)):
            if index > len(claim.segment_x_post_ids):
                crash.crash_point(crash.BETWEEN_SEGMENTS)
                next_taken = await self._take_budget(steps, claim, spent)
                if isinstance(next_taken, Settlement):
                    return next_taken.state
                taken = next_taken
            post = NewPost(
                text=segments[index],
                media_ids=(*claim.media_ids, *uploaded) if index == 0 else (),
                in_reply_to=published[-1] if published else claim.reply_to_x_post_id or None,
            )
            # A lost claim never calls X: another holder may be deciding this post.
            sent_media = post.media_ids if index == 0 else None
            noted = await self._note_send(steps, claim, sent_media)
            if noted is not Note.FRESH:
                await self._give_back(steps, taken)
                if noted is Note.STALE:
                    timing = self._settings.timing
                    retry = outcomes.not_sent(claim, STALE_NOTES, claim.now(), timing)
                    await self._settle(steps, claim, retry, spent)
                    return retry.state
                log.warning("lost the claim on post %s before segment %d", claim.post_id, index)
                await self._meter_alone(steps, spent)
                return PostState.PUBLISHING
            result = await steps.create_post(_x_credentials(claim), post)
            now = claim.now()
            spent.extend(metered_create(claim, post.text, result, now))
            if isinstance(result, UnknownOutcome) and not result.request_sent:
                await self._give_back(steps, taken)  # the call never reached X
            if not isinstance(result, Published):
                settlement = outcomes.settle_publish(claim, result, now, self._settings.timing)
                await self._settle(steps, claim, settlement, spent)
                return settlement.state
            crash.crash_point(crash.AFTER_X_STORED)
            x_post_id = result.x_post_id
            if len(segments) > 1 and not await steps.call(
                partial(self._queue.record_segment, claim, index, x_post_id, lease)
            ):
                # The reconciler holds the post now: X's answer is kept for it to adopt.
                log.warning("lost the claim on post %s in segment %d", claim.post_id, index)
                await steps.call(partial(self._queue.record_answer, claim, index, x_post_id))
                await self._meter_alone(steps, spent)
                return PostState.PUBLISHING
            published.append(x_post_id)
            rate_limit = result.rate_limit
        settlement = outcomes.published(claim, published[0], claim.now(), "published", rate_limit)
        if not await self._settle(steps, claim, settlement, spent) and len(segments) == 1:
            # X's answer is kept for whoever holds the post now (each segment of a
            # thread is recorded already).
            await steps.call(partial(self._queue.record_answer, claim, 0, published[0]))
            return PostState.PUBLISHING
        return settlement.state

    async def _note_send(
        self, steps: Steps, claim: Claim, sent_media: Sequence[str] | None
    ) -> Note:
        """Note the send and renew the lease, in a commit before the call. A stall
        since (a paused process, a crowded loop, a slow commit) must not let the
        call leave later than the send window after the note: the note is made
        again, up to NOTE_TRIES times. (A stall after this check, before the
        request is written, is not seen here: the reconciler's proof counts from
        the give-up when the publisher came back.)"""
        window = self._settings.send_window.total_seconds()
        for _ in range(NOTE_TRIES):
            asked = time.monotonic()
            if not await steps.sending(claim, self._settings.lease, sent_media):
                return Note.LOST
            if time.monotonic() - asked <= window:
                return Note.FRESH
        log.warning("post %s: every note of the send went stale before the call", claim.post_id)
        return Note.STALE

    def _upload_media(
        self, claim: Claim, spent: list[Metered]
    ) -> tuple[str, ...] | Settlement | None:
        """X media ids of the claim's attachments, uploading those without a fresh one
        for this account; each new id is stored the moment X returns it. None when
        the claim was lost meanwhile. Blocking: the dispatcher runs it off its loop."""
        now = claim.now()
        if self._media is None:
            return outcomes.failed(claim, "MEDIA_UNAVAILABLE", "no media store configured", now)
        known = self._media.uploaded(
            claim.account_id, claim.attachment_ids, now - X_MEDIA_REUSE_WINDOW
        )
        x_media_ids: list[str] = []
        for media_id in claim.attachment_ids:
            x_media_id = known.get(media_id)
            if x_media_id is None:
                content = self._media.content(media_id)
                if content is None:
                    return outcomes.failed(
                        claim, "MEDIA_MISSING", f"media {media_id} no longer exists", now
                    )
                data, mime_type = content
                # Each media command only while the claim holds, each renewing it: an
                # upload may take longer than a lease.
                result = self._x.upload_media(
                    _x_credentials(claim),
                    data,
                    mime_type,
                    before_call=lambda: self._queue.renew(claim, self._settings.lease),
                )
                now = claim.now()
                spent.extend(metered_upload(claim, result, now))
                if isinstance(result, Interrupted):
                    log.warning("lost the claim on post %s while uploading media", claim.post_id)
                    return None
                if not isinstance(result, MediaUploaded):
                    return outcomes.settle_media_failure(claim, result, now, self._settings.timing)
                x_media_id = result.media_id
                self._media.record(media_id, claim.account_id, x_media_id, now)
            x_media_ids.append(x_media_id)
        return tuple(x_media_ids)

    async def _take_budget(
        self, steps: Steps, claim: Claim, spent: Sequence[Metered]
    ) -> Taken | Settlement:
        """Units for one create-post call (services/publishing/budget.py); a refusal is
        settled here and returned."""
        now = steps.budget_time(claim)
        taken = await steps.limit(partial(self._budgets.take, claim, now))
        if isinstance(taken, Taken):
            return taken
        settlement = self._budgets.refused(claim, taken, now)
        await self._settle(steps, claim, settlement, spent)
        return settlement

    def app_room(self, now: datetime) -> int:
        """Create-post calls the app's budget allows now."""
        return self._budgets.app_room(now)

    async def _settle(
        self, steps: Steps, claim: Claim, settlement: Settlement, spent: Sequence[Metered] = ()
    ) -> bool:
        """Applies the settlement, with the X calls of this attempt (`spent`)."""
        if await steps.settle(claim, replace(settlement, spent=tuple(spent))):
            return True
        await self._meter_alone(steps, spent)
        # Our lease ran out and the reconciler holds the post now: it will find the
        # post on X (or the answer kept for it) if this attempt published it.
        log.warning("lost the claim on post %s before settling it", claim.post_id)
        return False


# Threads for the blocking steps of the posts in flight (media uploads, thread
# segments, catch-up claims); the batched commits have three of their own.
UPLOAD_THREADS = 8


class Dispatcher:
    """One tick: claim what is due and hand it to the publishing loop, never waiting
    for X. The loop is one event loop in a thread of its own where every claimed post
    is a task: X is called asynchronously, and the queue steps of the posts in flight
    are committed in batches (pipeline.py). At most `max_in_flight` posts at once."""

    def __init__(
        self,
        queue: PublishQueue,
        publisher: Publisher,
        clock: Clock,
        settings: EngineSettings,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        self._queue = telemetry.observed(queue)
        self._publisher = publisher
        self._clock = clock  # for the budgets' windows only; claims use the database's now()
        self._settings = settings
        self._loop = LoopThread("publishing", loop_factory)
        # Media uploads and catch-up claims: off the loop.
        self._executor = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="publish-io")
        # The batched commits (sends, settlements, budget reads: one writer each) have
        # threads of their own, so uploads filling the others never hold back a send
        # or a settlement while leases run.
        self._commits = ThreadPoolExecutor(3, thread_name_prefix="publish-commit")
        self._steps = publisher.batched(self._executor, self._commits)
        self._tasks: set[asyncio.Task[PostState]] = set()  # on the loop only
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0  # under _lock, as the next three
        self._catch_ups = 0  # catch-up claims scheduled and not yet done
        # The last tick filled every free slot, so more posts may be due.
        self._more_due = False
        # One tick at a time: the timer's, or a catch-up after a full batch.
        self._ticking = threading.Lock()
        self._draining = False  # under _ticking: no tick starts anything while set
        # The database's time at the last read and the monotonic clock then (_app_room).
        self._clock_read: tuple[datetime, float] | None = None

    @telemetry.dispatch_tick
    def tick(self) -> int:
        """Claim and start publishing due posts; returns how many were claimed."""
        if not self._ticking.acquire(blocking=False):
            return 0
        try:
            return 0 if self._draining else self._claim_and_start()
        finally:
            self._ticking.release()

    def _claim_and_start(self) -> int:
        with self._lock:
            free = self._settings.max_in_flight - self._in_flight
        if free <= 0:
            return 0
        # Claim no more than the app's budget lets leave: the rest wait in the queue,
        # in priority order, with no account marked as waiting.
        room = self._app_room(min(free, self._settings.batch_size))
        wanted = min(free, room, self._settings.batch_size)
        if wanted <= 0:
            telemetry.app_budget_spent()
            return 0
        claims = self._queue.claim_due(wanted, self._settings.lease)
        with self._lock:
            # Slots, not the app's budget, cut this claim short: the rest of a burst
            # is claimed when half the slots are free again, not a whole tick later.
            self._more_due = len(claims) == wanted < room
            self._in_flight += len(claims)
        if claims:
            # One read of the batch's X budgets instead of one per post.
            budgets = self._publisher.x_budgets(claims)
            self._loop.call_soon(partial(self._start, claims, budgets))
        return len(claims)

    def _app_room(self, wanted: int) -> int:
        """The app budget's room now. A tick that finds plenty of it needs no read of
        the database's clock: on the time carried from the last read on the monotonic
        clock, a second early, the windows can only hold more uses than they do, so a
        room above `wanted` is above it on the database's clock too, and the tick
        decides alike. Read afresh when the room might be what limits the claim."""
        if self._clock_read is not None:
            then, at = self._clock_read
            carried = then + timedelta(seconds=time.monotonic() - at) - CARRIED_CLOCK_MARGIN
            room = self._publisher.app_room(carried)
            if room > wanted:
                return room
        now = self._clock.now()
        self._clock_read = (now, time.monotonic())
        return self._publisher.app_room(now)

    def _start(self, claims: list[Claim], budgets: dict[UUID, BudgetState | None]) -> None:
        """On the loop: one task per claim."""
        self._steps.know_budgets(budgets)
        loop = asyncio.get_running_loop()
        for claim in claims:
            task = loop.create_task(self._publisher.run(claim, self._steps))
            self._tasks.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(partial(self._done, claim))

    def _done(self, claim: Claim, task: asyncio.Task[PostState]) -> None:
        self._tasks.discard(task)
        self._steps.forget(claim.account_id)
        with self._lock:
            self._in_flight -= 1
            catch_up = self._more_due and self._in_flight <= self._settings.max_in_flight // 2
            if catch_up:
                self._more_due = False
                self._catch_ups += 1
            self._idle.notify_all()
        if not task.cancelled() and (error := task.exception()) is not None:
            # The claim stays PUBLISHING; when its lease ends the reconciler decides.
            log.error("publishing failed unexpectedly: %r", error)
        if catch_up:
            self._executor.submit(self._catch_up)

    def _catch_up(self) -> None:
        try:
            self.tick()
        except Exception:
            log.exception("catch-up dispatch tick failed; the next tick claims instead")
        finally:
            with self._lock:
                self._catch_ups -= 1
                self._idle.notify_all()

    def drain(self) -> None:
        """Wait for in-flight publishes (shutdown, tests)."""
        # A tick under way finishes first; none starts anything until all are done.
        with self._ticking:
            self._draining = True
        try:
            with self._lock:
                while self._in_flight or self._catch_ups:
                    self._idle.wait()
                self._more_due = False
        finally:
            with self._ticking:
                self._draining = False

    def close(self) -> None:
        """Drain, then close the loop's X connections and stop its thread."""
        self.drain()
        self._loop.close(self._publisher.close)
        self._executor.shutdown(wait=True)
        self._commits.shutdown(wait=True)


class Reconciler:
    """Resolves PUBLISHING posts whose answer from X was lost, by looking at X.

    It is the only path that may lead to a second create-post call for a post,
    and only after the account's timeline shows the post is not there.
    """

    def __init__(
        self,
        queue: PublishQueue,
        x_api: XApi,
        settings: EngineSettings,
        meter: SpendMeter | None = None,
    ) -> None:
        self._queue = telemetry.observed(queue)
        self._x = x_api
        self._settings = settings
        self._meter = meter  # timeline reads are billed per post returned

    def tick(self, limit: int = 50) -> int:
        claims = self._queue.claim_for_reconcile(limit, self._settings.lease)
        for claim in claims:
            # Each claim on its own: one that breaks is looked at again later, and
            # the others are still decided.
            try:
                self.reconcile(claim)
            except Exception as error:
                log.exception("reconciling post %s failed; looking again later", claim.post_id)
                self._retry_later(claim, error)
        return len(claims)

    def _retry_later(self, claim: Claim, error: Exception) -> None:
        reason = f"looking again after an error: {type(error).__name__}"
        try:
            self._queue.look_again(claim, self._settings.timing.settle_delay, reason=reason)
        except Exception:
            # The claim's lease runs out instead; the next holder looks again.
            log.exception("could not postpone post %s", claim.post_id)

    @telemetry.reconciling
    def reconcile(self, claim: Claim) -> None:
        now = claim.now()
        # Only the first segment not recorded can be in doubt: each earlier one was
        # recorded before the next was sent.
        segments, index = claim.segments, len(claim.segment_x_post_ids)
        if index >= len(segments):
            # Every segment is on X; only the settlement was lost.
            first = claim.segment_x_post_ids[0]
            self._queue.settle(claim, outcomes.published(claim, first, now, "adopted"))
            return
        if claim.known_x_post_id:
            # X answered with this id but the publisher had lost its claim: adopt it.
            self._adopt(claim, index, claim.known_x_post_id, now)
            return
        if claim.sent_at is None:
            # The send is noted before every create-post call, in its own commit:
            # without it this attempt never called X, so nothing of it can be there.
            reason = "the publisher stopped before calling X"
            self._queue.settle(claim, outcomes.not_sent(claim, reason, now, self._settings.timing))
            return
        if claim.credentials is None:
            # X cannot be asked; the credentials may come back (new keys, a new token).
            why = claim.credentials_problem or "the account has no X credentials"
            self._look_again(claim, now, why)
            return
        self._search(claim, index, claim.sent_at, now)

    def _search(self, claim: Claim, index: int, sent_at: datetime, now: datetime) -> None:
        """Look for segment `index` on the account's timeline; conclude "not on X" only
        when a complete read finds nothing and the lag bound has passed since the send."""
        timing = self._settings.timing
        # A duplicate refusal points back to an earlier attempt: search from the first.
        anchor = sent_at
        if claim.unknown_cause == "duplicate" and claim.first_sent_at is not None:
            anchor = min(claim.first_sent_at, sent_at)
        # The timeline behind the credentials (the adapter asks /2/users/me once per
        # token): the stored x_user_id is what the client typed, never verified.
        timeline = self._x.recent_posts(_x_credentials(claim), anchor - CLOCK_MARGIN)
        self._meter_read(claim, timeline, now)
        if isinstance(timeline, RateLimited):
            self._queue.look_again(claim, timing.settle_delay, not_before=timeline.reset_at)
            return
        if not isinstance(timeline, Timeline):
            # X cannot tell us now; ask again later rather than guess.
            self._look_again(claim, now, timeline)
            return
        found = self._find(claim, index, timeline.posts)
        if found is not None:
            self._adopt(claim, index, found, now)
            return
        if not timeline.complete:
            self._look_again(claim, now, "the timeline was cut short by its page limit")
            return
        proven_at = _may_have_reached_x_until(claim, sent_at, self._settings) + timing.lag_bound
        if now < proven_at:
            # X may still list it: its timeline lags, and X may finish a request after
            # the caller gave up. Look again; absence counts only after the bound.
            self._queue.look_again(claim, max(min(timing.settle_delay, proven_at - now), MIN_LOOK))
            return
        if claim.unknown_cause == "duplicate":
            settlement = outcomes.failed(
                claim,
                "DUPLICATE_CONTENT",
                "X refused the text as a duplicate of an earlier post",
                now,
            )
        else:
            reason = f"not on X after an unknown outcome ({claim.unknown_cause})"
            settlement = outcomes.retry_or_dead_letter(claim, "X_UNKNOWN", reason, now, timing)
        self._queue.settle(claim, settlement)

    def _meter_read(self, claim: Claim, timeline: object, now: datetime) -> None:
        if self._meter is None:
            return
        kind, purpose = CallKind.POST_READ, Purpose.RECONCILE
        read = refused_read(now, kind, purpose, claim.user_id, claim.account_id, claim.post_id)
        if isinstance(timeline, Timeline):
            ids = tuple(post.id for post in timeline.posts)
            read = replace(read, units=len(ids), outcome=Outcome.CHARGED, resources=ids)
        self._meter.record([read])

    def _find(self, claim: Claim, index: int, posts: tuple[XPost, ...]) -> str | None:
        """X's id of segment `index`: the post replying to the recorded parent (or to
        nothing), with exactly the media this attempt attached, whose text is the
        segment's as X rewrites it (domain.x_matching), and whose id no post or
        segment of the account holds already. Newest first: the post in doubt is the
        account's latest, one being in flight."""
        parent = claim.segment_x_post_ids[index - 1] if index else claim.reply_to_x_post_id
        media: tuple[str, ...] = ()
        media_count = 0
        if index == 0:
            media = claim.sent_media_ids or claim.media_ids
            media_count = len(claim.media_ids) + len(claim.attachment_ids)
        # An attempt from before sends were noted: its uploads' ids are unknown, so
        # only their number can be compared.
        ids_known = not claim.attachment_ids or bool(claim.sent_media_ids)
        candidates = [
            p
            for p in posts
            if (p.in_reply_to or "") == (parent or "")
            and (not ids_known or same_media(media, p.media_keys))
        ]
        taken = self._queue.stored_x_post_ids(claim.account_id, [p.id for p in candidates])
        for x_post in candidates:
            if x_post.id in taken:
                continue
            if same_post(
                claim.segments[index],
                media_count,
                x_post.text,
                x_media_count=None if x_post.media_keys is None else len(x_post.media_keys),
                x_urls=x_post.urls,
                reply=bool(parent),
            ):
                return x_post.id
        return None

    def _look_again(self, claim: Claim, now: datetime, answer: TimelineFailure | str) -> None:
        """X could not say whether the post is there: look again after the settle
        delay, until the give-up bound; the post blocks its account's queue meanwhile."""
        timing = self._settings.timing
        since = claim.started_at
        if claim.sent_at is not None:
            since = _may_have_reached_x_until(claim, claim.sent_at, self._settings)
        waited = now - since
        why = answer if isinstance(answer, str) else answer.reason
        if waited < timing.give_up:
            self._queue.look_again(claim, timing.settle_delay, reason=f"looking again: {why}")
            return
        reason = f"X's timeline gave no answer for {waited} ({why})"
        suspend: str | None = None
        if isinstance(answer, Unauthorized):
            suspend = f"tokens revoked: {answer.reason}"
        elif isinstance(answer, AccountSuspended):
            suspend = f"account suspended: {answer.reason}"
        self._queue.settle(claim, outcomes.outcome_unknown(claim, reason, now, suspend))

    def _adopt(self, claim: Claim, index: int, x_post_id: str, now: datetime) -> None:
        """Segment `index` is on X: record it; the post is published when it was the
        last, else it goes back to the queue to publish the rest."""
        crash.crash_point(crash.BEFORE_ADOPT)
        segments = claim.segments
        if len(segments) > 1 and not self._queue.record_segment(
            claim, index, x_post_id, self._settings.lease
        ):
            return
        if index + 1 < len(segments):
            self._queue.settle(claim, outcomes.resume())
            return
        first = claim.segment_x_post_ids[0] if claim.segment_x_post_ids else x_post_id
        self._queue.settle(claim, outcomes.published(claim, first, now, "adopted"))


def _may_have_reached_x_until(
    claim: Claim, sent_at: datetime, settings: EngineSettings
) -> datetime:
    """The latest the call in doubt may have reached X: when its publisher gave up
    waiting for the answer (later than the note when the call left late), or, when
    the publisher never came back, the latest a call leaves after its note."""
    if claim.gave_up_at is not None:
        return max(sent_at, claim.gave_up_at)
    return sent_at + settings.send_window


def _x_credentials(claim: Claim) -> XCredentials:
    assert claim.credentials is not None
    return XCredentials(claim.credentials.access_token, claim.credentials.access_token_secret)
