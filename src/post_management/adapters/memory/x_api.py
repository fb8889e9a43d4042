"""The X API in memory (ports/x_api.py): X's answers as the emulator gives them, plus
outcomes a test queues for the next calls.

Each token is a user of its own (as on the emulator); a post is on its author's
timeline the moment it is accepted. `script_create` queues what the next create-post
calls answer: a Failure or Duplicate answers instead of posting, ANSWER_LOST posts
and answers UnknownOutcome (X acted, the answer was lost), AS_X lets X answer itself
(to script a later call of a thread).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from post_management.ports.support import Clock
from post_management.ports.x_api import (
    MAX_LOOKUP_IDS,
    AccountSuspended,
    Deleted,
    DeleteOutcome,
    Duplicate,
    Failure,
    Interrupted,
    LookupOutcome,
    MediaOutcome,
    MediaUploaded,
    MeOutcome,
    NewPost,
    PermanentFailure,
    PostsFound,
    Published,
    PublishOutcome,
    Timeline,
    TimelineOutcome,
    Unauthorized,
    UnknownOutcome,
    XCredentials,
    XPost,
    XUser,
)

# X's limit on a post's (weighted) length; the memory X counts characters.
MAX_TEXT = 280


@dataclass(frozen=True)
class AnswerLost:
    """The post is created, the caller gets UnknownOutcome (a timeout after X acted)."""

    reason: str = "timeout: the answer was lost"


@dataclass(frozen=True)
class AsX:
    """X answers this call itself, as it does once the script is used up."""


ANSWER_LOST = AnswerLost()
AS_X = AsX()
CreateStep = Failure | Duplicate | AnswerLost | AsX


@dataclass
class _User:
    id: str
    username: str
    suspended: bool = False


@dataclass
class _Post:
    post: XPost
    deleted: bool = False


class _WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Call:
    """One create-post call as X received it."""

    access_token: str
    post: NewPost
    at: datetime


@dataclass
class _Script:
    create: list[CreateStep] = field(default_factory=list)
    timeline: list[Failure | Timeline] = field(default_factory=list)
    upload: list[Failure] = field(default_factory=list)


class MemoryXApi:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or _WallClock()
        self._lock = threading.Lock()
        self._users: dict[str, _User] = {}
        self._revoked: set[str] = set()
        self._posts: dict[str, _Post] = {}
        self._ids = itertools.count(1_800_000_000_000_000_000)
        self._script = _Script()
        self.calls: list[Call] = []
        # The media ids of every successful upload, in order.
        self.uploads: list[str] = []

    # --- what a test sets up --------------------------------------------------------

    def register_user(self, access_token: str, user_id: str, username: str = "") -> None:
        with self._lock:
            self._users[access_token] = _User(user_id, username or f"u{user_id}")

    def suspend(self, user_id: str) -> None:
        with self._lock:
            for user in self._users.values():
                if user.id == user_id:
                    user.suspended = True

    def revoke(self, access_token: str) -> None:
        with self._lock:
            self._revoked.add(access_token)

    def script_create(self, *steps: CreateStep) -> None:
        """The answers of the next create-post calls, in order; then X answers itself."""
        with self._lock:
            self._script.create.extend(steps)

    def script_timeline(self, *answers: Failure | Timeline) -> None:
        with self._lock:
            self._script.timeline.extend(answers)

    def script_upload(self, *failures: Failure) -> None:
        with self._lock:
            self._script.upload.extend(failures)

    def posts(self, author_id: str | None = None) -> list[XPost]:
        """Every post on X (not deleted), oldest first."""
        with self._lock:
            return [
                p.post
                for p in self._posts.values()
                if not p.deleted and (author_id is None or p.post.author_id == author_id)
            ]

    # --- the port -------------------------------------------------------------------

    def _user(self, creds: XCredentials) -> _User | Unauthorized:
        if creds.access_token in self._revoked:
            return Unauthorized("the access token was revoked")
        user = self._users.get(creds.access_token)
        if user is None:
            # A token seen first is a user of its own, as on the emulator.
            digest = hashlib.sha256(creds.access_token.encode()).hexdigest()
            number = str(int(digest[:12], 16))
            user = self._users.setdefault(creds.access_token, _User(number, f"u{number}"))
        return user

    def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        with self._lock:
            now = self._clock.now()
            self.calls.append(Call(creds.access_token, post, now))
            step = self._script.create.pop(0) if self._script.create else None
            if step is not None and not isinstance(step, AnswerLost | AsX):
                return step
            user = self._user(creds)
            if isinstance(user, Unauthorized):
                return user
            if user.suspended:
                return AccountSuspended("the account is suspended")
            if len(post.text) > MAX_TEXT or not (post.text or post.media_ids):
                return PermanentFailure(f"text must be 1 to {MAX_TEXT} characters", status=400)
            if any(
                not p.deleted and p.post.author_id == user.id and p.post.text == post.text
                for p in self._posts.values()
            ):
                return Duplicate()
            x_post = XPost(
                id=str(next(self._ids)),
                text=post.text,
                author_id=user.id,
                created_at=now,
                media_keys=tuple(f"3_{m}" for m in post.media_ids),
                urls=(),
                in_reply_to=post.in_reply_to,
            )
            self._posts[x_post.id] = _Post(x_post)
            if isinstance(step, AnswerLost):
                return UnknownOutcome(step.reason)
            return Published(x_post.id)

    def delete_post(self, creds: XCredentials, x_post_id: str) -> DeleteOutcome:
        with self._lock:
            user = self._user(creds)
            if isinstance(user, Unauthorized):
                return user
            found = self._posts.get(x_post_id)
            if found is None or found.deleted:
                return Deleted(existed=False)
            if found.post.author_id != user.id:
                return PermanentFailure("you may only delete your own posts", status=403)
            found.deleted = True
            return Deleted(existed=True)

    def lookup_posts(self, creds: XCredentials | None, ids: Sequence[str]) -> LookupOutcome:
        if len(ids) > MAX_LOOKUP_IDS:
            raise ValueError(f"at most {MAX_LOOKUP_IDS} ids per lookup")
        with self._lock:
            if creds is not None:
                user = self._user(creds)
                if isinstance(user, Unauthorized):
                    return user
            found = [self._posts.get(i) for i in ids]
            return PostsFound(
                posts=tuple(p.post for p in found if p is not None and not p.deleted),
                missing=tuple(i for i, p in zip(ids, found, strict=True) if p is None or p.deleted),
            )

    def recent_posts(
        self,
        creds: XCredentials,
        since: datetime,
        *,
        user_id: str | None = None,
        since_id: str | None = None,
    ) -> TimelineOutcome:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        with self._lock:
            if self._script.timeline:
                return self._script.timeline.pop(0)
            user = self._user(creds)
            if isinstance(user, Unauthorized):
                return user
            mine = [
                p.post
                for p in self._posts.values()
                if not p.deleted
                and p.post.author_id == user.id
                and p.post.created_at is not None
                and p.post.created_at >= since
                and (since_id is None or int(p.post.id) > int(since_id))
            ]
            mine.sort(key=lambda post: int(post.id), reverse=True)
            return Timeline(tuple(mine))

    def me(self, creds: XCredentials) -> MeOutcome:
        with self._lock:
            user = self._user(creds)
            if isinstance(user, Unauthorized):
                return user
            return XUser(user.id, user.username, user.username)

    def upload_media(
        self,
        creds: XCredentials,
        data: bytes,
        mime_type: str,
        *,
        chunked: bool | None = None,
        media_category: str | None = None,
        before_call: Callable[[], bool] | None = None,
    ) -> MediaOutcome:
        # One simple upload: one command, checked before it is sent.
        if before_call is not None and not before_call():
            return Interrupted()
        with self._lock:
            if self._script.upload:
                return self._script.upload.pop(0)
            user = self._user(creds)
            if isinstance(user, Unauthorized):
                return user
            if not data:
                return PermanentFailure("media is empty", status=400)
            media_id = str(next(self._ids))
            self.uploads.append(media_id)
            return MediaUploaded(media_id)
