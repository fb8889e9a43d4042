"""Everything the emulator remembers. Touched only from its event loop."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from x_emulator.behaviour import Behaviour
from x_emulator.faults import FaultBook
from x_emulator.ratelimit import Windows

_POST_ID_BASE = 1_900_000_000_000_000_000  # snowflake-sized, increasing ids
_MEDIA_ID_BASE = 1_800_000_000_000_000_000
_USER_ID_BASE = 1_000_000_000
RECEIVED_KEPT = 200


@dataclass
class Limits:
    """X's published defaults; tests shrink them through the control API."""

    user_posts_per_window: int = 100
    post_window_seconds: float = 15 * 60
    user_posts_per_day: int = 2400
    app_posts_per_day: int = 10_000
    day_seconds: float = 24 * 60 * 60
    lookup_per_window: int = 5000
    tweet_per_window: int = 900  # GET /2/tweets/:id
    timeline_per_window: int = 900
    me_per_window: int = 75
    delete_per_window: int = 50
    media_per_window: int = 500
    read_window_seconds: float = 15 * 60
    media_processing_seconds: float = 1.0  # chunked video stays pending/in_progress this long
    hang_seconds: float = 30.0  # upper bound of a TIMEOUT fault when the client never leaves

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown limit: {name}")
            setattr(self, name, int(value) if known[name] == "int" else float(value))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class User:
    id: str
    username: str
    name: str
    created_at: float = 0.0  # emulator clock; follower counts grow from here
    suspended: bool = False


@dataclass
class StoredPost:
    id: str
    text: str
    author_id: str
    created_at: float  # unix seconds on the emulator clock
    media_ids: tuple[str, ...] = ()
    in_reply_to: str | None = None
    deleted: bool = False
    visible_at: float = 0.0  # when it shows up in the author's timeline (timeline lag)
    media_keys: tuple[str, ...] = ()  # X's keys of media_ids, in order

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "author_id": self.author_id,
            "created_at": self.created_at,
            "media_ids": list(self.media_ids),
            "media_keys": list(self.media_keys),
            "in_reply_to_tweet_id": self.in_reply_to,
            "deleted": self.deleted,
            "visible_at": self.visible_at,
        }


@dataclass
class StoredMedia:
    id: str
    owner_id: str
    media_type: str
    total_bytes: int
    chunked: bool
    width: int = 0  # images only, from the file's header
    height: int = 0
    received: dict[int, int] = field(default_factory=dict)  # segment index -> size
    finalized_at: float | None = None
    processing_seconds: float = 0.0

    def ready_at(self) -> float | None:
        if self.finalized_at is None:
            return None
        return self.finalized_at + self.processing_seconds

    @property
    def kind(self) -> str:
        """X's media type: photo, video or animated_gif."""
        if self.media_type.startswith("video/"):
            return "video"
        return "animated_gif" if self.media_type == "image/gif" and self.chunked else "photo"

    @property
    def key(self) -> str:
        """X's media key: a type prefix and the media id."""
        prefix = {"photo": "3", "video": "7", "animated_gif": "16"}[self.kind]
        return f"{prefix}_{self.id}"


class EmulatorState:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.closing = asyncio.Event()  # set on stop so hanging handlers return
        self.start_behaviour = behaviour or Behaviour()
        # Requests that act after their caller may have gone (late_store faults).
        self.background: set[asyncio.Task[Any]] = set()
        self.reset()

    def reset(self) -> None:
        for task in self.background:  # a late store must not land in the next test
            task.cancel()
        self.limits = Limits()
        self.behaviour = self.start_behaviour
        self.clock_offset = 0.0
        self.users_by_token: dict[str, User] = {}
        self.users: dict[str, User] = {}
        self.revoked_tokens: set[str] = set()
        self.posts: dict[str, StoredPost] = {}
        # Each user's posts by text: the duplicate check of every create reads it
        # instead of every post stored (a burst of 10,000 made that quadratic).
        self._by_text: dict[tuple[str, str], list[StoredPost]] = {}
        self.media: dict[str, StoredMedia] = {}
        self.windows = Windows()
        self.faults = FaultBook()
        self.counters: Counter[str] = Counter()
        # The newest X requests' method, path and traceparent, for tracing tests.
        self.received: deque[dict[str, str]] = deque(maxlen=RECEIVED_KEPT)
        self._next_post = 0
        self._next_media = 0
        self._next_user = 0

    def now(self) -> float:
        return time.time() + self.clock_offset

    def user_for_token(self, token: str) -> User:
        """The user behind an access token; unknown tokens become new users."""
        user = self.users_by_token.get(token)
        if user is None:
            user = self.register_user(token)
        return user

    def register_user(
        self, token: str, user_id: str | None = None, username: str | None = None
    ) -> User:
        if user_id is None:
            self._next_user += 1
            user_id = str(_USER_ID_BASE + self._next_user)
        user = self.users.get(user_id)
        if user is None:
            name = username or f"user_{user_id}"
            user = User(id=user_id, username=name, name=name, created_at=self.now())
            self.users[user_id] = user
        self.users_by_token[token] = user
        return user

    def store_post(
        self,
        author_id: str,
        text: str,
        created_at: float,
        media_ids: tuple[str, ...] = (),
        in_reply_to: str | None = None,
    ) -> StoredPost:
        post_id = self.new_post_id()
        post = StoredPost(
            id=post_id,
            text=text,
            author_id=author_id,
            created_at=created_at,
            media_ids=media_ids,
            in_reply_to=in_reply_to,
            visible_at=created_at + self.behaviour.lag_for(post_id),
            media_keys=tuple(self.media[m].key if m in self.media else f"3_{m}" for m in media_ids),
        )
        self.posts[post.id] = post
        self._by_text.setdefault((author_id, text), []).append(post)
        return post

    def is_duplicate(self, author_id: str, text: str, now: float) -> bool:
        """X refuses identical text of one user within the window; media-only never."""
        if not text:
            return False
        window = self.behaviour.duplicate_window_seconds
        return any(
            not p.deleted and (window is None or now - p.created_at < window)
            for p in self._by_text.get((author_id, text), ())
        )

    def new_post_id(self) -> str:
        self._next_post += 1
        return str(_POST_ID_BASE + self._next_post)

    def new_media_id(self) -> str:
        self._next_media += 1
        return str(_MEDIA_ID_BASE + self._next_media)
