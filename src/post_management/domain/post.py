"""The Post aggregate: its state machine (README: "A post's life") and the methods of
its life that requests call (schedule, reschedule, cancel, queue now, requeue, edit).
Each method checks the rules, changes the post and records the domain events of the
change; the repository that saves the post hands them to its unit of work, which
writes them to the outbox when it commits. The publishing engine's moves are the
claims and settlements of domain/publishing/."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict
from uuid import UUID

from post_management.domain import events
from post_management.domain.content import content_violations
from post_management.domain.content_rules import Screening
from post_management.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from post_management.domain.reasons import Reason
from post_management.domain.threads import (
    ensure_account_kept,
    ensure_published_segments_kept,
    thread_violations,
)


class PostState(enum.StrEnum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    PUBLISHING = "PUBLISHING"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    DEAD_LETTERED = "DEAD_LETTERED"


class Priority(enum.IntEnum):
    """Lower values are published first."""

    URGENT = 1
    HIGH = 2
    NORMAL = 3
    LOW = 4


# The transitions requests make, by action; anything else raises. The publishing
# engine's own moves (claim, settle, retry, dead-letter) are decided in
# domain/publishing/ and applied by the publish queue, guarded by the state and the
# claim's holder token.
TRANSITIONS: dict[str, dict[PostState, PostState]] = {
    "schedule": {
        PostState.DRAFT: PostState.SCHEDULED,
        PostState.SCHEDULED: PostState.SCHEDULED,
        PostState.FAILED: PostState.SCHEDULED,
    },
    "cancel": {PostState.SCHEDULED: PostState.CANCELLED},
    "requeue": {
        PostState.DEAD_LETTERED: PostState.SCHEDULED,
        PostState.FAILED: PostState.SCHEDULED,
    },
}

EDITABLE_STATES = frozenset(
    {PostState.DRAFT, PostState.SCHEDULED, PostState.FAILED, PostState.CANCELLED}
)
DELETABLE_STATES = frozenset(
    {
        PostState.DRAFT,
        PostState.SCHEDULED,
        PostState.FAILED,
        PostState.CANCELLED,
        PostState.DEAD_LETTERED,
    }
)
# What PublishPost may publish now.
PUBLISHABLE_STATES = frozenset({PostState.DRAFT, PostState.SCHEDULED, PostState.FAILED})
# On the way to X, its outcome not known yet: queued, or being published.
UNDECIDED_STATES = frozenset({PostState.SCHEDULED, PostState.PUBLISHING})

# A post queued now goes ahead of the others of its priority by this much.
FRONT_OF_QUEUE = timedelta(microseconds=1)

# PostEdit.campaign_id that takes the post out of its campaign.
NO_CAMPAIGN = UUID(int=0)


class _PostIds(TypedDict):
    post_id: UUID
    account_id: UUID
    user_id: str


@dataclass(frozen=True)
class PostEdit:
    """Fields to change; None leaves a field as it is."""

    text: str | None = None
    media_ids: list[str] | None = None
    reply_to_x_post_id: str | None = None
    account_id: UUID | None = None
    priority: Priority | None = None
    attachment_ids: list[UUID] | None = None
    thread: list[str] | None = None
    # NO_CAMPAIGN takes the post out of its campaign.
    campaign_id: UUID | None = None

    def updates(self) -> dict[str, Any]:
        """The post's fields to set, by name (lists copied)."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None:
                values[item.name] = list(value) if isinstance(value, list) else value
        if values.get("campaign_id") == NO_CAMPAIGN:
            values["campaign_id"] = None
        return values


def content_problems(
    text: str, media_ids: list[str], reply_to: str, attachment_ids: list[UUID], thread: list[str]
) -> list[FieldViolation]:
    """What X would refuse in a post's content: its text and media, and its thread."""
    problems = content_violations(text, media_ids, reply_to, attachments=len(attachment_ids))
    return problems + thread_violations(text, thread)


def ensure_valid_content(
    text: str, media_ids: list[str], reply_to: str, attachment_ids: list[UUID], thread: list[str]
) -> None:
    problems = content_problems(text, media_ids, reply_to, attachment_ids, thread)
    if problems:
        raise InvalidArgument("the post's content is invalid", violations=problems)


@dataclass
class Post:
    id: UUID
    user_id: str
    account_id: UUID
    text: str
    created_at: datetime
    updated_at: datetime
    media_ids: list[str] = field(default_factory=list)
    reply_to_x_post_id: str = ""
    # Media uploaded to this service (domain/media.py), sent to X with segment 0.
    attachment_ids: list[UUID] = field(default_factory=list)
    # Follow-up segments after `text`, published as a reply chain (domain/threads.py).
    thread: list[str] = field(default_factory=list)
    # X ids of the thread's segments recorded so far, in order; x_post_id is the first.
    segment_x_post_ids: list[str] = field(default_factory=list)
    state: PostState = PostState.DRAFT
    priority: Priority = Priority.NORMAL
    scheduled_for: datetime | None = None
    timezone: str = ""
    published_at: datetime | None = None
    x_post_id: str = ""
    attempt_count: int = 0
    last_error: str = ""
    # Optimistic concurrency: bumped by every write; the etag on the wire.
    version: int = 1
    # The user's campaign (domain/campaigns.py) the post belongs to.
    campaign_id: UUID | None = None
    # What the content rules found in the texts when they were last screened
    # (services/content_screening.py); None: not screened. Never shown to callers.
    screening: Screening | None = None

    @property
    def segments(self) -> list[str]:
        """Every text published for this post, in order: the post, then its thread."""
        return [self.text, *self.thread]

    @property
    def published_segment_ids(self) -> list[str]:
        """X ids of the segments on X; a post without a thread has at most x_post_id."""
        if self.segment_x_post_ids:
            return list(self.segment_x_post_ids)
        return [self.x_post_id] if self.x_post_id else []

    @property
    def etag(self) -> str:
        return etag_for(self.version)

    def __post_init__(self) -> None:
        # Recorded by the methods below, until the repository that saves the post
        # hands them to its unit of work. Not a field: never stored nor compared.
        self._events = events.EventLog()

    def pull_events(self) -> list[events.DomainEvent]:
        """The events recorded since the last pull, in the order they happened."""
        return self._events.drain()

    # --- the life of a post --------------------------------------------------------

    def ensure_can(self, action: str) -> None:
        """Raise FailedPrecondition naming the state unless `action` may run now."""
        if self.state not in TRANSITIONS[action]:
            raise FailedPrecondition(
                f"cannot {action.replace('_', ' ')} a post in state {self.state}",
                reason=Reason.INVALID_POST_STATE,
                metadata={"state": str(self.state), "action": action},
            )

    def transition(self, action: str) -> PostState:
        """Apply `action` or raise FailedPrecondition naming the current state."""
        self.ensure_can(action)
        self.state = TRANSITIONS[action][self.state]
        return self.state

    def schedule(self, at: datetime, timezone: str, priority: Priority, now: datetime) -> bool:
        """DRAFT, SCHEDULED or FAILED -> SCHEDULED, due at `at`. Records post.scheduled
        (with the time it had, when it was scheduled already) and post.queue_added.
        True: it was a reschedule."""
        previous = self.scheduled_for if self.state is PostState.SCHEDULED else None
        self.transition("schedule")
        self.scheduled_for, self.timezone, self.priority = at, timezone, priority
        self.updated_at = now
        self._record(
            events.PostScheduled(
                **self._ids(),
                scheduled_for=at,
                timezone=timezone,
                priority=priority,
                previous_scheduled_for=previous,
                occurred_at=now,
            ),
        )
        self._queued(now)
        return previous is not None

    def cancel(self, reason: str, now: datetime) -> bool:
        """SCHEDULED -> CANCELLED, recording post.cancelled with `reason`. A cancelled
        post stays as it is: False, nothing changed."""
        if self.state is PostState.CANCELLED:
            return False
        self.transition("cancel")
        self.updated_at = now
        self._record(
            events.PostCancelled(
                **self._ids(), reason=reason, scheduled_for=self.scheduled_for, occurred_at=now
            )
        )
        return True

    def ensure_publishable(self, now: datetime, override_schedule: bool) -> None:
        """PublishPost's rules: a post scheduled for later only with the override, and
        only a DRAFT, SCHEDULED or FAILED post."""
        later = self.scheduled_for is not None and self.scheduled_for > now
        if self.state is PostState.SCHEDULED and later and not override_schedule:
            raise FailedPrecondition(
                "the post is scheduled for later; set overrideSchedule to publish it now",
                reason=Reason.SCHEDULED_FOR_LATER,
                metadata={"scheduled_for": str(self.scheduled_for)},
            )
        if self.state not in PUBLISHABLE_STATES:
            raise FailedPrecondition(
                f"a post in state {self.state} cannot be published",
                reason=Reason.INVALID_POST_STATE,
                metadata={"state": str(self.state)},
            )

    def queue_now(
        self, now: datetime, *, override_schedule: bool = False, account_id: UUID | None = None
    ) -> None:
        """Publish as soon as the engine can: SCHEDULED and due just before now, ahead
        of the other due posts of its priority, from `account_id` if given. Records
        post.queue_added."""
        self.ensure_publishable(now, override_schedule)
        if account_id is not None:
            self.move_to(account_id)
        self.transition("schedule")
        self.scheduled_for = now - FRONT_OF_QUEUE
        self.timezone = self.timezone or "UTC"
        self.updated_at = now
        self._queued(now)

    def requeue(self, now: datetime) -> None:
        """DEAD_LETTERED or FAILED -> SCHEDULED, due now with its attempts counted from
        zero again. Records post.queue_added."""
        self.transition("requeue")
        self.scheduled_for = now
        self.attempt_count = 0
        self.updated_at = now
        self._queued(now)

    def ensure_can_move(self, account_id: UUID) -> None:
        """A thread partly on X stays with its account (domain/threads.py)."""
        ensure_account_kept(len(self.segment_x_post_ids), self.account_id, account_id)

    def move_to(self, account_id: UUID) -> None:
        self.ensure_can_move(account_id)
        self.account_id = account_id

    def edit(self, changes: PostEdit, now: datetime) -> None:
        """Apply `changes` to an editable post, all or nothing. Refused: a post past
        editing, a thread partly on X that would change account or what is on X
        (FailedPrecondition), content X would refuse (InvalidArgument). Whether a new
        account, campaign or media belongs to the user is the use case's to check."""
        self.ensure_editable()
        updates = changes.updates()
        if "account_id" in updates:
            self.ensure_can_move(updates["account_id"])
        edited = dataclasses.replace(self, **updates)
        published = len(self.segment_x_post_ids)
        ensure_published_segments_kept(published, self._first_segment(), edited._first_segment())
        ensure_valid_content(
            edited.text,
            edited.media_ids,
            edited.reply_to_x_post_id,
            edited.attachment_ids,
            edited.thread,
        )
        for name, value in updates.items():
            setattr(self, name, value)
        self.updated_at = now

    def _first_segment(self) -> tuple[list[str], str, list[str], list[str]]:
        """What a resumed publish replies to: the texts, and the first post's reply
        target and media."""
        return (
            self.segments,
            self.reply_to_x_post_id,
            list(self.media_ids),
            [str(media_id) for media_id in self.attachment_ids],
        )

    def _queued(self, now: datetime) -> None:
        assert self.scheduled_for is not None
        self._record(
            events.PostQueueAdded(
                **self._ids(), due_at=self.scheduled_for, priority=self.priority, occurred_at=now
            )
        )

    def _ids(self) -> _PostIds:
        return {"post_id": self.id, "account_id": self.account_id, "user_id": self.user_id}

    def _record(self, *recorded: events.DomainEvent) -> None:
        self._events.add(*recorded)

    def ensure_editable(self) -> None:
        if self.state not in EDITABLE_STATES:
            raise FailedPrecondition(
                f"a post in state {self.state} cannot be edited",
                reason=Reason.POST_NOT_EDITABLE,
                metadata={"state": str(self.state)},
            )

    def ensure_deletable(self) -> None:
        if self.state not in DELETABLE_STATES:
            raise FailedPrecondition(
                f"a post in state {self.state} cannot be deleted",
                reason=Reason.POST_NOT_DELETABLE,
                metadata={"state": str(self.state)},
            )


def etag_for(version: int) -> str:
    return f'"{version}"'


def post_not_found(post_id: UUID) -> NotFound:
    """The one NOT_FOUND a missing post is answered with (reason and post_id metadata)."""
    return NotFound(
        f"post {post_id} does not exist",
        reason=Reason.POST_NOT_FOUND,
        metadata={"post_id": str(post_id)},
    )
