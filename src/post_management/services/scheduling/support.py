"""Requests, results and helpers of the scheduling use cases."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from post_management.domain.account import Account
from post_management.domain.conflicts import ConflictPolicy
from post_management.domain.content_rules import Finding
from post_management.domain.duplicates import DUPLICATE_WINDOW, find_duplicate
from post_management.domain.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from post_management.domain.post import Post, Priority, post_not_found
from post_management.domain.posting_calendar import describe
from post_management.domain.posting_rules import (
    MAX_MIN_INTERVAL_MINUTES,
    PostingRules,
    posting_rules_from_json,
)
from post_management.domain.priority import priority_name
from post_management.domain.reasons import Reason
from post_management.domain.requested_time import RequestedTime, resolve_requested_time
from post_management.domain.slots import SlotPolicy
from post_management.domain.timezones import AmbiguousTimePolicy, NonexistentTimePolicy, load_zone
from post_management.ports.async_unit_of_work import AsyncUnitOfWork
from post_management.ports.schedule_queries import TakenTime
from post_management.services.shared import idempotency
from post_management.services.shared.commands import RequestKey

# Other posts older than this cannot affect a new time: the longest rule
# (min interval, at most a week) and the duplicate window both fit inside it.
LOOKBACK = max(timedelta(minutes=MAX_MIN_INTERVAL_MINUTES), DUPLICATE_WINDOW) + timedelta(days=1)
# A replayed request re-reads its time without the past/horizon check.
_REPLAY_SLACK = timedelta(days=3660)


@dataclass(frozen=True)
class ScheduleRequest:
    """SchedulePost, read completely at the edge."""

    post_id: UUID
    user_id: str
    # None: the next free slot (or the best one, by slot_policy).
    scheduled_for: RequestedTime | None = None
    # None: the account's zone.
    timezone: ZoneInfo | None = None
    # None keeps the post's priority (NORMAL unless it was created otherwise).
    priority: Priority | None = None
    conflict_policy: ConflictPolicy = ConflictPolicy.REJECT
    nonexistent: NonexistentTimePolicy = NonexistentTimePolicy.REJECT
    ambiguous: AmbiguousTimePolicy = AmbiguousTimePolicy.EARLIER
    request_id: str = ""
    slot_policy: SlotPolicy = SlotPolicy.NEXT


@dataclass(frozen=True)
class ScheduleResult:
    post: Post
    moved: bool = False
    move_reason: str = ""
    # What the account's content policy found in the text (a warning policy).
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class BatchItem:
    """One item of a per-item batch: a result or the error that refused it."""

    post_id: UUID
    result: ScheduleResult | None = None
    error: DomainError | None = None


@dataclass(frozen=True)
class RefusedItem:
    """A batch item whose priority, zone or time could not be read: its own error in
    a per-item batch, the batch's in an all-or-nothing one."""

    post_id: UUID
    user_id: str
    error: DomainError


@dataclass(frozen=True)
class FreeSlots:
    slots: list[datetime]
    timezone: str


def check_request(request: ScheduleRequest) -> None:
    """What can be checked before touching the database."""
    idempotency.check_request_id(request.request_id)
    if request.slot_policy is SlotPolicy.BEST and request.scheduled_for is not None:
        raise InvalidArgument.for_field(
            "slot_policy",
            "applies only when scheduled_for is empty",
            reason=Reason.SLOT_POLICY_WITH_TIME,
        )


def request_key(request: ScheduleRequest) -> RequestKey:
    """Scheduling's request ids are unique per user."""
    return RequestKey(
        f"SchedulePost:{request.user_id}", request.request_id, request_digest(request)
    )


def request_digest(request: ScheduleRequest) -> str:
    """The request as the caller spelled it (the time as written, the zone's name, the
    priority's wire name), so digests stored before requests were typed still match."""
    fields: dict[str, object] = {
        "post_id": request.post_id,
        "user_id": request.user_id,
        "scheduled_for": request.scheduled_for.text if request.scheduled_for else "",
        "timezone": request.timezone.key if request.timezone else "",
        "priority": priority_name(request.priority) if request.priority is not None else "",
        "conflict_policy": request.conflict_policy,
        "nonexistent": request.nonexistent,
        "ambiguous": request.ambiguous,
        "request_id": request.request_id,
        "slot_policy": request.slot_policy,
    }
    if request.slot_policy is SlotPolicy.NEXT:
        del fields["slot_policy"]  # the default: digests stored before it existed still match
    return idempotency.request_hash(fields)


async def load_own_post(
    uow: AsyncUnitOfWork, post_id: UUID, user_id: str, *, for_update: bool = False
) -> Post:
    post = await uow.posts.get(post_id, for_update=for_update)
    if post is None:
        raise post_not_found(post_id)
    if post.user_id != user_id:
        raise foreign_error("post", post_id)
    return post


def foreign_error(kind: str, resource_id: UUID) -> PermissionDenied:
    return PermissionDenied(
        f"the {kind} {resource_id} belongs to another user", reason=Reason.FOREIGN_RESOURCE
    )


class RulesMemo:
    """Each account's stored rules parsed once per request (a batch schedules many
    posts of one account); a changed account (new version) is parsed again."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[UUID, int], PostingRules] = {}

    def rules_of(self, account: Account) -> PostingRules:
        key = (account.id, account.version)
        if key not in self._parsed:
            self._parsed[key] = account_rules(account)
        return self._parsed[key]


def account_rules(account: Account) -> PostingRules:
    try:
        return posting_rules_from_json(account.posting_rules)
    except InvalidArgument as error:
        # Stored before rules were validated: the account must be fixed first.
        raise FailedPrecondition(
            f"the account's posting rules are invalid; update the account: {error.message}",
            reason=Reason.INVALID_ACCOUNT_RULES,
            metadata={"account_id": str(account.id)},
        ) from None


def ensure_not_duplicate(
    post: Post, instant: datetime, taken: list[TakenTime], zone: ZoneInfo
) -> None:
    at = find_duplicate(post.text, instant, [(entry.text, entry.at) for entry in taken])
    if at is None:
        return
    other = next(entry for entry in taken if entry.at == at)
    hours = int(DUPLICATE_WINDOW.total_seconds() // 3600)
    raise FailedPrecondition(
        f"the same text is already on this account at {describe(at, zone)}; X refuses "
        f"duplicate posts less than {hours} hours apart",
        reason=Reason.DUPLICATE_CONTENT,
        metadata={"duplicate_post_id": str(other.post_id), "duplicate_time": iso_time(at)},
    )


async def replayed(uow: AsyncUnitOfWork, post_id: UUID, request: ScheduleRequest) -> ScheduleResult:
    """The answer to a repeated request: the post as it is now, and whether the
    first call moved it off the requested time (recomputed, since only the
    post is remembered)."""
    post = await load_own_post(uow, post_id, request.user_id)
    if request.scheduled_for is None or post.scheduled_for is None or not post.timezone:
        return ScheduleResult(post)
    try:
        requested = resolve_requested_time(
            request.scheduled_for,
            request.timezone or load_zone(post.timezone),
            post.scheduled_for,
            nonexistent=request.nonexistent,
            ambiguous=request.ambiguous,
            past_grace=_REPLAY_SLACK,
            horizon=_REPLAY_SLACK,
        )
    except DomainError:
        return ScheduleResult(post)
    if requested.instant == post.scheduled_for:
        return ScheduleResult(post)
    zone = ZoneInfo(post.timezone)
    reason = (
        f"moved from {describe(requested.instant, zone)} to "
        f"{describe(post.scheduled_for, zone)} by the conflict policy"
    )
    return ScheduleResult(post, True, reason)


def at_index(error: DomainError, index: int, post_id: UUID) -> DomainError:
    """The same error, naming the batch item it came from."""
    prefix = f"requests[{index}]"
    changes: dict[str, object] = {
        "message": f"{prefix} (post {post_id}): {error.message}",
        "metadata": {**error.metadata, "index": str(index), "post_id": str(post_id)},
    }
    if isinstance(error, InvalidArgument):
        changes["violations"] = [
            FieldViolation(f"{prefix}.{v.field}", v.description) for v in error.violations
        ]
    return dataclasses.replace(error, **changes)  # type: ignore[arg-type]


def iso_time(value: datetime) -> str:
    """RFC 3339 in UTC ("...Z") with 0, 3 or 6 fraction digits, like the API's times."""
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond == 0:
        return text + "Z"
    if utc.microsecond % 1000 == 0:
        return f"{text}.{utc.microsecond // 1000:03d}Z"
    return f"{text}.{utc.microsecond:06d}Z"
