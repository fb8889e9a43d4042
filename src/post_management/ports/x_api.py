"""The X API port: what the service needs from X, with typed outcomes.

Every call returns a value instead of raising for X-side conditions, so the
dispatcher can branch on the outcome (docs/reliability.md) without knowing
the HTTP library. Only programming errors raise. The answers the publishing engine
decides on are domain values (domain/x_answers.py), named here too as part of the port.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from post_management.domain.analytics import PublicCounts
from post_management.domain.x_answers import (
    AccountSuspended as AccountSuspended,
)
from post_management.domain.x_answers import (
    Duplicate as Duplicate,
)
from post_management.domain.x_answers import (
    Failure as Failure,
)
from post_management.domain.x_answers import (
    PermanentFailure as PermanentFailure,
)
from post_management.domain.x_answers import (
    Published as Published,
)
from post_management.domain.x_answers import (
    PublishOutcome as PublishOutcome,
)
from post_management.domain.x_answers import (
    Quota as Quota,
)
from post_management.domain.x_answers import (
    RateLimited as RateLimited,
)
from post_management.domain.x_answers import (
    RateLimitInfo as RateLimitInfo,
)
from post_management.domain.x_answers import (
    Unauthorized as Unauthorized,
)
from post_management.domain.x_answers import (
    UnknownOutcome as UnknownOutcome,
)

MAX_LOOKUP_IDS = 100  # GET /2/tweets accepts at most 100 ids per request


@dataclass(frozen=True)
class XCredentials:
    """OAuth 1.0a user-context access token of one X account.

    The values are excluded from repr so they never reach a log line.
    """

    access_token: str = field(repr=False)
    access_token_secret: str = field(repr=False)


# --- requests -----------------------------------------------------------------


@dataclass(frozen=True)
class NewPost:
    text: str
    media_ids: tuple[str, ...] = ()
    in_reply_to: str | None = None


# --- delete -------------------------------------------------------------------


@dataclass(frozen=True)
class Deleted:
    existed: bool  # False when X no longer knew the post; the result is the same


DeleteOutcome = Deleted | Failure


# --- reads --------------------------------------------------------------------


@dataclass(frozen=True)
class PostMetrics(PublicCounts):
    """A post's counts as X returned them: the public ones, and the private ones too
    when its author asked."""

    # Private metrics: only for the author, and only for posts under 30 days old.
    url_link_clicks: int | None = None
    user_profile_clicks: int | None = None
    engagements: int | None = None


@dataclass(frozen=True)
class XPost:
    id: str
    text: str
    author_id: str | None = None
    created_at: datetime | None = None
    metrics: PostMetrics | None = None
    # None when not asked for; otherwise X's media keys and its links' expanded URLs,
    # so the reconciler can match a post whose text X rewrote.
    media_keys: tuple[str, ...] | None = None
    urls: tuple[str, ...] | None = None
    # The post this one replies to (X's referenced_tweets, type replied_to), if any.
    in_reply_to: str | None = None


@dataclass(frozen=True)
class PostsFound:
    posts: tuple[XPost, ...]
    missing: tuple[str, ...] = ()  # ids X reported as not found (deleted or unknown)
    rate_limit: RateLimitInfo | None = None


LookupOutcome = PostsFound | Failure


@dataclass(frozen=True)
class Timeline:
    posts: tuple[XPost, ...]  # newest first
    rate_limit: RateLimitInfo | None = None
    # False when the page limit stopped the read early: absence proves nothing then.
    complete: bool = True


TimelineOutcome = Timeline | Failure


@dataclass(frozen=True)
class UserMetrics:
    """X's public counts of a user (`user.fields=public_metrics`)."""

    followers: int
    following: int
    posts: int
    listed: int


@dataclass(frozen=True)
class XUser:
    id: str
    username: str
    name: str
    metrics: UserMetrics | None = None  # None when X did not return public_metrics


MeOutcome = XUser | Failure


@dataclass(frozen=True)
class MediaUploaded:
    media_id: str


@dataclass(frozen=True)
class Interrupted:
    """The caller's check before a call to X said stop (e.g. its claim on the post is
    lost): nothing further was sent."""

    reason: str = "stopped before the next call to X"


MediaOutcome = MediaUploaded | Failure | Interrupted


class XApi(Protocol):
    """The X API as the service uses it. Implementations never raise for
    network or X errors; they return one of the outcome types."""

    def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome: ...

    def delete_post(self, creds: XCredentials, x_post_id: str) -> DeleteOutcome: ...

    def lookup_posts(self, creds: XCredentials | None, ids: Sequence[str]) -> LookupOutcome:
        """Up to MAX_LOOKUP_IDS ids in one request, with metrics.

        With `creds` (the author's) private metrics are included; with None
        the app's bearer token is used and only public metrics come back.
        """
        ...

    def recent_posts(
        self,
        creds: XCredentials,
        since: datetime,
        *,
        user_id: str | None = None,
        since_id: str | None = None,
    ) -> TimelineOutcome:
        """The account's own posts created at or after `since`, newest first.

        `user_id` saves a /2/users/me round trip when the caller knows it.
        """
        ...

    def me(self, creds: XCredentials) -> MeOutcome: ...

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
        """Upload and wait until X has processed the media.

        `chunked=None` picks chunked upload for video and large files. `before_call`
        runs before each command (INIT, every APPEND, FINALIZE, each STATUS poll, or
        the one simple upload); when it returns False the upload stops there with
        Interrupted.
        """
        ...


class XPoster(Protocol):
    """Create-post calls on an event loop (the dispatcher's): every account's calls
    share one connection pool. Like XApi, it returns outcomes instead of raising."""

    async def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome: ...

    async def aclose(self) -> None:
        """Close the connections, on the loop that made the calls."""
        ...
