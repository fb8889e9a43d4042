"""The Post aggregate and its state machine (README: "A post's life")."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from post_management.domain.content_rules import Screening
from post_management.domain.errors import FailedPrecondition
from post_management.domain.reasons import Reason


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
# engine's own moves (claim, settle, retry, dead-letter) are single guarded SQL
# statements in adapters/db/publish_queue.py, checked against the state and the
# claim's holder token in their WHERE clause.
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

    def transition(self, action: str) -> PostState:
        """Apply `action` or raise FailedPrecondition naming the current state."""
        target = TRANSITIONS[action].get(self.state)
        if target is None:
            raise FailedPrecondition(
                f"cannot {action.replace('_', ' ')} a post in state {self.state}",
                reason=Reason.INVALID_POST_STATE,
                metadata={"state": str(self.state), "action": action},
            )
        self.state = target
        return target

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
