"""The drill harness: real worker processes against PostgreSQL and the X emulator,
killed at a named crash point (PM_CRASH_AT) and restarted, and the verdict on what
ended up on X, in the posts table and in the outbox (docs/reliability.md).

Every verdict is read from the emulator's stored posts, never only its counters.
"""

from __future__ import annotations

import secrets
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text

from post_management.adapters.clock import TEST_CLOCK_OFFSET_ENV
from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.domain.account import Account, Credentials
from post_management.domain.media import Media, kind_of
from post_management.domain.post import Post, PostState, Priority
from post_management.domain.privacy import Pseudonyms
from post_management.observability.crash_points import CRASH_AT_ENV
from tests.support.process import ServiceProcess
from x_emulator import EmulatorControl

# X's timeline lists a post this long after storing it (the emulator's lag) ...
TIMELINE_LAG_S = 7.0
# ... and the engine waits this long after a send before "not on X" counts.
LAG_BOUND_S = 11.0
LEASE_S = 5.0
SETTLE_S = 1.0
X_TIMEOUT_S = 2.0
# One worker of each drill runs with its clock this far ahead of the database's.
CLOCK_SKEW_S = 60.0
# A post never leaves before its due time (this slack covers the emulator's and
# PostgreSQL's clocks, both this host's) ...
EARLY_SLACK = timedelta(seconds=0.5)
# ... nor later than this after it, with a worker killed on its path: the lease
# runs out, the reconciler looks until the lag bound has passed since the send,
# then adopts or retries once (retry backoff, a fresh worker's start included).
LATE_BOUND = timedelta(seconds=LEASE_S + LAG_BOUND_S + SETTLE_S + 3 * X_TIMEOUT_S + 8)

# Over two of the client's 1 MiB chunks: INIT, three APPENDs, FINALIZE.
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x02" * (2 * 1024 * 1024 + 512)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048
# The third media command of a chunked upload: after INIT and the first APPEND.
MID_UPLOAD_HIT = 3

TERMINAL = {PostState.PUBLISHED.value, PostState.FAILED.value, PostState.DEAD_LETTERED.value}


def worker_env(database: str, key: str, x_base_url: str, **extra: str) -> dict[str, str]:
    """Short timings so that a drill takes seconds; every relation the settings
    check (lease > X call, give-up > lease + settle) still holds."""
    return {
        "DATABASE_URL": database,
        "ENCRYPTION_KEYS": key,
        "JWT_SECRET": "j" * 40,
        "X_MODE": "emulator",
        "X_API_BASE_URL": x_base_url,
        "X_TIMEOUT_SECONDS": str(X_TIMEOUT_S),
        "PUBLISH_LEASE_SECONDS": str(LEASE_S),
        "PUBLISH_SETTLE_SECONDS": str(SETTLE_S),
        "X_TIMELINE_LAG_SECONDS": str(LAG_BOUND_S),
        "RECONCILE_GIVE_UP_SECONDS": "120",
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_CAP_SECONDS": "1",
        "RETRY_MAX_ATTEMPTS": "20",
        "DISPATCH_INTERVAL_SECONDS": "0.2",
        "RECONCILE_INTERVAL_SECONDS": "0.3",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


class Worker:
    """`post-management worker` as a real process, optionally armed to die at a
    crash point and/or running with its clock skewed."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path,
        *,
        crash_at: str | None = None,
        clock_skew_s: float = 0.0,
    ) -> None:
        env = dict(env)
        if crash_at is not None:
            env[CRASH_AT_ENV] = crash_at
        if clock_skew_s:
            env[TEST_CLOCK_OFFSET_ENV] = str(clock_skew_s)
        self.crash_at = crash_at
        self.process = ServiceProcess(env, cwd, command="worker")

    def wait_ready(self) -> None:
        self.process.wait_ready()

    def crashed_at_point(self) -> bool:
        name = (self.crash_at or "").partition("@")[0]
        return self.process.process.returncode == -9 and any(
            line.startswith(f"crash point {name} reached") for line in self.process.lines
        )

    def wait_crashed(self, timeout: float) -> None:
        """The worker killed itself at its crash point within `timeout` seconds."""
        try:
            self.process.process.wait(timeout=timeout)
        except Exception:
            raise AssertionError(
                f"{self.crash_at} was never reached:\n" + "\n".join(self.process.lines[-20:])
            ) from None
        time.sleep(0.1)  # the reader thread takes the last lines
        assert self.crashed_at_point(), "\n".join(self.process.lines[-20:])

    def stop(self) -> None:
        if self.process.process.poll() is None:
            self.process.terminate(timeout=30)

    def kill(self) -> None:
        self.process.kill()

    def pause(self) -> None:
        """SIGSTOP: the worker holds what it holds, like a process the kernel stopped."""
        if self.process.process.poll() is None:
            self.process.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process.process.poll() is None:
            self.process.process.send_signal(signal.SIGCONT)

    def wait_sent_statements_run(self, engine: Engine, timeout: float = 2.0) -> None:
        """Once paused: until no statement the worker sent to `engine`'s database is
        still running there (its backends are not active), or `timeout`. One it had
        not finished sending waits for its resume; one waiting for a lock a paused
        process holds waits as long, hence the timeout."""
        server_port = engine.url.port or 5432
        ports = [
            c.laddr.port
            for c in psutil.Process(self.process.process.pid).net_connections("tcp")
            if c.raddr and c.raddr.port == server_port
        ]
        running = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE state = 'active' AND client_port = ANY(:ports)"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if connection.execute(running, {"ports": ports}).scalar_one() == 0:
                    return
            time.sleep(0.02)


@dataclass(frozen=True)
class Kind:
    """A post kind of the drills: what it carries besides its text."""

    name: str
    text: str
    thread: tuple[str, ...] = ()
    reply: bool = False
    video: bool = False


TEXT = Kind("text", "Drill text post")
MEDIA_ONLY = Kind("media-only", "", video=True)
REPLY = Kind("reply", "Drill reply")
THREAD = Kind("thread", "Drill thread 1/3", thread=("Drill thread 2/3", "Drill thread 3/3"))
KINDS = (TEXT, MEDIA_ONLY, REPLY, THREAD)


@dataclass
class Seeded:
    post_id: uuid.UUID
    account_id: uuid.UUID
    x_user_id: str
    segments: tuple[str, ...]
    due_at: datetime
    reply_to: str = ""
    attachments: tuple[uuid.UUID, ...] = ()
    # Posts the drill itself put on X (a reply's parent): not the service's.
    foreign_x_ids: set[str] = field(default_factory=set)


class Seeder:
    """Accounts, media and posts, written as the service writes them."""

    def __init__(self, database: str, control: EmulatorControl) -> None:
        self.key = Fernet.generate_key().decode()
        self.engine: Engine = make_engine(database)
        self.uow = SqlUnitOfWorkFactory(
            self.engine, FernetBox([self.key]), Pseudonyms(secrets.token_bytes(32))
        )
        self.control = control

    def close(self) -> None:
        self.engine.dispose()

    def db_now(self) -> datetime:
        with self.engine.connect() as connection:
            now: datetime = connection.execute(text("SELECT now()")).scalar_one()
        return now

    def account(self, handle: str | None = None) -> Account:
        x_user_id = str(uuid.uuid4().int % 10**12)
        token = f"tok-{x_user_id}"
        self.control.register_user(token, user_id=x_user_id, username=handle or f"u{x_user_id}")
        now = datetime.now(UTC)
        account = Account(
            id=uuid.uuid4(),
            user_id="drill-user",
            handle=handle or f"u{x_user_id}",
            x_user_id=x_user_id,
            created_at=now,
            updated_at=now,
            credentials=Credentials(token, f"secret-{x_user_id}"),
        )
        with self.uow() as uow:
            uow.accounts.add(account)
            uow.commit()
        return account

    def media(self, data: bytes, mime_type: str) -> uuid.UUID:
        item = Media(
            uuid.uuid4(), "drill-user", mime_type, kind_of(mime_type), len(data), datetime.now(UTC)
        )
        with self.uow() as uow:
            uow.media.add(item, data)
            uow.commit()
        return item.id

    def post(
        self,
        account: Account,
        body: str,
        due_at: datetime,
        *,
        thread: Sequence[str] = (),
        reply_to: str = "",
        attachments: Sequence[uuid.UUID] = (),
        priority: Priority = Priority.NORMAL,
    ) -> Seeded:
        now = datetime.now(UTC)
        post = Post(
            id=uuid.uuid4(),
            user_id=account.user_id,
            account_id=account.id,
            text=body,
            created_at=now,
            updated_at=now,
            state=PostState.SCHEDULED,
            priority=priority,
            scheduled_for=due_at,
            timezone="UTC",
            thread=list(thread),
            reply_to_x_post_id=reply_to,
            attachment_ids=list(attachments),
        )
        with self.uow() as uow:
            uow.posts.add(post)
            uow.commit()
        return Seeded(
            post.id,
            account.id,
            account.x_user_id,
            (body, *thread),
            due_at,
            reply_to=reply_to,
            attachments=tuple(attachments),
        )

    def kind(self, kind: Kind, due_at: datetime, *, with_video: bool = False) -> Seeded:
        """One post of `kind` on a fresh account; `with_video` attaches a video to a
        kind that has none (the mid-upload drill)."""
        account = self.account()
        parent = ""
        if kind.reply:
            parent = self.control.seed_post(account.x_user_id, "a post to answer")["id"]
        attachments = (self.media(VIDEO, "video/mp4"),) if kind.video or with_video else ()
        seeded = self.post(
            account, kind.text, due_at, thread=kind.thread, reply_to=parent, attachments=attachments
        )
        if parent:
            seeded.foreign_x_ids.add(parent)
        return seeded


# --- waiting -----------------------------------------------------------------


def states(engine: Engine, post_ids: Iterable[uuid.UUID] | None = None) -> Counter[str]:
    query = "SELECT state, count(*) FROM posts"
    params: dict[str, Any] = {}
    if post_ids is not None:
        query += " WHERE id = ANY(:ids)"
        params["ids"] = list(post_ids)
    with engine.connect() as connection:
        rows = connection.execute(text(query + " GROUP BY state"), params).all()
    return Counter({state: count for state, count in rows})


def wait_until_settled(
    engine: Engine, post_ids: Sequence[uuid.UUID], timeout: float, poll: float = 0.2
) -> float:
    """Seconds until every post is PUBLISHED, FAILED or DEAD_LETTERED (or the timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counted = states(engine, post_ids)
        if sum(n for s, n in counted.items() if s in TERMINAL) == len(post_ids):
            break
        time.sleep(poll)
    return time.monotonic() - started


def pending_faults(base_url: str) -> list[dict[str, Any]]:
    response = requests.get(f"{base_url.rstrip('/')}/_emulator/faults", timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


# --- the verdict ---------------------------------------------------------------


@dataclass
class Verdict:
    """What went wrong, one line per broken promise; empty when every post is fine."""

    late_bound: timedelta = LATE_BOUND
    problems: list[str] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def worst_late_s(self) -> float:
        return max(self.lateness, default=0.0)


def _rows(engine: Engine, post_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, state, x_post_id, segment_x_post_ids, due_at, published_at, "
                "last_error, attempt_count FROM posts WHERE id = ANY(:ids)"
            ),
            {"ids": list(post_ids)},
        ).mappings()
        return {row["id"]: row for row in rows}


def _published_events(engine: Engine, post_ids: Sequence[uuid.UUID]) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT aggregate_id, count(*) FROM outbox "
                "WHERE event_type = 'post.published' AND aggregate_id = ANY(:ids) "
                "GROUP BY aggregate_id"
            ),
            {"ids": [str(i) for i in post_ids]},
        ).all()
    return Counter({key: n for key, n in rows})


def _uploaded_x_media(engine: Engine, media_ids: Sequence[uuid.UUID]) -> set[str]:
    if not media_ids:
        return set()
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT x_media_id FROM media_uploads WHERE media_id = ANY(:ids)"),
            {"ids": list(media_ids)},
        ).all()
    return {row[0] for row in rows}


def verdict(
    engine: Engine,
    control: EmulatorControl,
    seeded: Sequence[Seeded],
    *,
    late_bound: timedelta = LATE_BOUND,
) -> Verdict:
    """Every post on X exactly once with the id the service stored, PUBLISHED (no
    drill post is one X refuses for good), one `post.published` event each, never
    early and never later than `late_bound` after its due time.

    Each account of `seeded` must carry only the drill's posts, so that anything
    else its author has on X is a double."""
    result = Verdict(late_bound)
    rows = _rows(engine, [s.post_id for s in seeded])
    published_events = _published_events(engine, [s.post_id for s in seeded])
    by_author: dict[str, list[dict[str, Any]]] = {}
    for x_post in control.posts(include_deleted=True):
        by_author.setdefault(x_post["author_id"], []).append(x_post)
    seeded_by_author: dict[str, list[Seeded]] = {}
    for s in seeded:
        seeded_by_author.setdefault(s.x_user_id, []).append(s)
    for author, posts_of_author in seeded_by_author.items():
        foreign = set().union(*(s.foreign_x_ids for s in posts_of_author))
        on_x = [p for p in by_author.get(author, []) if p["id"] not in foreign]
        claimed: set[str] = set()
        for s in posts_of_author:
            claimed |= _check_post(s, rows[s.post_id], on_x, engine, result)
            events = published_events.get(str(s.post_id), 0)
            expected_events = 1 if rows[s.post_id]["state"] == PostState.PUBLISHED.value else 0
            if events != expected_events:
                result.problems.append(
                    f"{s.post_id}: {events} post.published events, expected {expected_events}"
                )
        for extra in on_x:
            if extra["id"] not in claimed:
                result.problems.append(
                    f"account {author}: {extra['text']!r} ({extra['id']}) is on X and "
                    "belongs to no published post (a double or a lost id)"
                )
    return result


def _check_post(
    s: Seeded,
    row: Any,
    on_x: list[dict[str, Any]],
    engine: Engine,
    result: Verdict,
) -> set[str]:
    """Checks one post; returns the X ids it accounts for."""
    state = row["state"]
    if state != PostState.PUBLISHED.value:
        # None of the drills' posts is one X refuses for good: anything else is a miss.
        result.problems.append(f"{s.post_id}: ended {state} ({row['last_error']!r})")
        return set()
    stored = list(row["segment_x_post_ids"]) or [row["x_post_id"]]
    if stored[0] != row["x_post_id"]:
        result.problems.append(f"{s.post_id}: x_post_id {row['x_post_id']} is not segment 0")
    if len(stored) != len(s.segments):
        result.problems.append(f"{s.post_id}: {len(stored)} ids stored for {len(s.segments)}")
    by_id = {p["id"]: p for p in on_x}
    previous = s.reply_to or None
    for index, segment in enumerate(s.segments):
        same_text = [p for p in on_x if p["text"] == segment and _media_fits(p, s, index)]
        if len(same_text) != 1:
            result.problems.append(
                f"{s.post_id}: segment {index} ({segment!r}) is on X {len(same_text)} times"
            )
        if index >= len(stored):
            continue
        x_post = by_id.get(stored[index])
        if x_post is None:
            result.problems.append(f"{s.post_id}: stored id {stored[index]} is not on X")
            continue
        if x_post["text"] != segment:
            result.problems.append(
                f"{s.post_id}: stored id {stored[index]} is {x_post['text']!r}, not {segment!r}"
            )
        if x_post.get("deleted"):
            result.problems.append(f"{s.post_id}: stored id {stored[index]} was deleted on X")
        if x_post.get("in_reply_to_tweet_id") != previous:
            result.problems.append(
                f"{s.post_id}: segment {index} answers {x_post.get('in_reply_to_tweet_id')}, "
                f"not {previous}"
            )
        previous = x_post["id"]
        if index == 0:
            _check_media(s, x_post, engine, result)
            _check_timing(s, x_post, result)
    return set(stored)


def _media_fits(x_post: dict[str, Any], s: Seeded, index: int) -> bool:
    """A media-only post has no text to tell it apart: it is one with media."""
    return bool(x_post["media_ids"]) == (index == 0 and bool(s.attachments))


def _check_media(s: Seeded, x_post: dict[str, Any], engine: Engine, result: Verdict) -> None:
    if not s.attachments:
        if x_post["media_ids"]:
            result.problems.append(f"{s.post_id}: media {x_post['media_ids']} on a text post")
        return
    uploaded = _uploaded_x_media(engine, s.attachments)
    if len(x_post["media_ids"]) != len(s.attachments) or not set(x_post["media_ids"]) <= uploaded:
        result.problems.append(
            f"{s.post_id}: X shows media {x_post['media_ids']}, the service uploaded {uploaded}"
        )


def _check_timing(s: Seeded, x_post: dict[str, Any], result: Verdict) -> None:
    on_x_at = datetime.fromtimestamp(x_post["created_at"], UTC)
    late = on_x_at - s.due_at
    result.lateness.append(late.total_seconds())
    if late < -EARLY_SLACK:
        result.problems.append(f"{s.post_id}: on X {-late.total_seconds():.1f} s before due")
    elif late > result.late_bound:
        result.problems.append(f"{s.post_id}: on X {late.total_seconds():.1f} s after due")


def duplicate_report(engine: Engine, control: EmulatorControl) -> str:
    """For a run where X refused a create-post as a duplicate: each such post's
    attempts (database times) beside the X post it duplicated (stored and listed,
    on the emulator's clock, this host's too), to tell a send that left late from
    a look that came early."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT p.id, p.text, pa.number, pa.started_at, pa.sent_at, pa.finished_at, "
                "pa.outcome, pa.detail FROM post_attempts pa JOIN posts p ON p.id = pa.post_id "
                "WHERE pa.post_id IN (SELECT post_id FROM post_attempts "
                "WHERE detail ILIKE '%duplicate%') ORDER BY p.id, pa.number"
            )
        ).all()
    on_x: dict[str, list[dict[str, Any]]] = {}
    for x_post in control.posts(include_deleted=True):
        on_x.setdefault(x_post["text"], []).append(x_post)

    def at(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).time().isoformat()

    lines: list[str] = []
    for row in rows:
        times = (row.started_at, row.sent_at, row.finished_at)
        shown = [t.astimezone(UTC).time().isoformat() if t else "-" for t in times]
        lines.append(
            f"{row.id} #{row.number} started {shown[0]} sent {shown[1]} finished {shown[2]} "
            f"{row.outcome}: {row.detail[:80]}"
        )
        if row.number == 1:
            lines += [
                f"  on X {x['id']}: stored {at(x['created_at'])} listed {at(x['visible_at'])}"
                for x in on_x.get(row.text, [])
            ]
    return "\n".join(lines) or "no attempt says duplicate"
