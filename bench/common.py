"""Shared pieces: result rows, percentiles, databases, seeding, child processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from tests.support.ports import free_port, free_ports

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.engine import make_engine, migrate
from x_emulator.control import EmulatorControl

REPO = Path(__file__).resolve().parents[1]
ADMIN_PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BIN = Path(sys.executable).parent
JWT_SECRET = "bench-jwt-secret-" + "x" * 32


@dataclass
class Row:
    """One line of the results table."""

    section: str
    name: str
    value: float
    unit: str
    goal: str = ""
    met: bool | None = None  # None: informational, no goal
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def to_json(self) -> dict[str, Any]:
        return {"rows": [asdict(r) for r in self.rows], "details": self.details}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


@contextlib.contextmanager
def fresh_database(prefix: str = "pm_bench") -> Iterator[str]:
    """A new migrated database on the machine's PostgreSQL, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_engine(ADMIN_PG).url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=1)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def new_key() -> str:
    return Fernet.generate_key().decode()


def service_env(url: str, key: str, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": url,
        "ENCRYPTION_KEYS": key,
        "JWT_SECRET": JWT_SECRET,
        "X_MODE": "emulator",
        "METRICS_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        # Analytics collection is not what is measured; keep it out of the way.
        "METRICS_INTERVAL_SECONDS": "3600",
        # The per-caller budget (6,000 calls a minute for a service) would answer
        # RESOURCE_EXHAUSTED under load; raised, so it is still checked on every call.
        "RPC_RATE_LIMIT_SERVICE_PER_MINUTE": "1000000",
    }
    env.update(extra)
    return env


def mint_token(subject: str = "bench", role: str = "service") -> str:
    from post_management.domain.auth import Role
    from post_management.entrypoints.grpc.tokens import TokenCodec

    codec = TokenCodec(JWT_SECRET, issuer="post-management", audience="post-management")
    return codec.mint(subject, Role(role), timedelta(hours=2))


def copy_rows(
    engine: Engine, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    """COPY rows in (about 200,000 rows/s here, versus 2,500/s row by row)."""
    count = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        raw.commit()
    finally:
        raw.close()
    return count


ACCOUNT_COLUMNS = (
    "id",
    "user_id",
    "handle",
    "x_user_id",
    "timezone",
    "state",
    "posting_rules",
    "credentials_encrypted",
    "version",
    "created_at",
    "updated_at",
)


def seed_accounts(engine: Engine, key: str, count: int, users: int, prefix: str) -> list[uuid.UUID]:
    """`count` active accounts spread over `users` users, each with its own X token
    (the emulator turns unknown tokens into new users)."""
    box = FernetBox([key])
    now = datetime.now().astimezone()
    ids = [uuid.uuid4() for _ in range(count)]

    def rows() -> Iterator[tuple[Any, ...]]:
        for i, account_id in enumerate(ids):
            secret = json.dumps(
                {"access_token": f"tok-{prefix}-{i}", "access_token_secret": "secret"}
            ).encode()
            yield (
                account_id,
                f"{prefix}-user-{i % users}",
                f"{prefix}{i}",
                str(10_000_000 + i),
                "UTC",
                "ACTIVE",
                "{}",
                box.encrypt(secret),
                1,
                now,
                now,
            )

    copy_rows(engine, "accounts", ACCOUNT_COLUMNS, rows())
    return ids


POST_COLUMNS = (
    "id",
    "user_id",
    "account_id",
    "text",
    "state",
    "priority",
    "due_at",
    "published_at",
    "timezone",
    "version",
    "created_at",
    "updated_at",
)


def post_row(
    user_id: str,
    account_id: uuid.UUID,
    body: str,
    state: str,
    due_at: datetime | None,
    now: datetime,
    priority: int = 2,
    published_at: datetime | None = None,
) -> tuple[Any, ...]:
    return (
        uuid.uuid4(),
        user_id,
        account_id,
        body,
        state,
        priority,
        due_at,
        published_at,
        "UTC",
        1,
        now,
        now,
    )


class Child:
    """A child process whose output is kept; started in its own process group."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, ready: str = "") -> None:
        self.lines: list[str] = []
        self._ready_text = ready
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self._ready_text and self._ready_text in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.process.args!r} did not start:\n" + self.tail())

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)


def start_service(
    env: dict[str, str], command: str = "serve", args: tuple[str, ...] = ()
) -> tuple[Child, int, int]:
    """`post-management serve|worker`; returns the child, its gRPC and REST ports."""
    grpc_port, http_port, admin_port = free_ports(3)
    full = {
        "GRPC_PORT": str(grpc_port),
        "HTTP_PORT": str(http_port),
        "ENVOY_ADMIN_PORT": str(admin_port),
        **env,
    }
    child = Child([str(BIN / "post-management"), command, *args], full, ready="ready")
    try:
        child.wait_ready(90)
    except BaseException:
        child.stop()
        raise
    return child, grpc_port, http_port


class EmulatorProcess:
    """The bundled X API emulator in its own process, so it does not share our GIL."""

    def __init__(self) -> None:
        self.port = free_port()
        self.child = Child(
            [sys.executable, "-m", "x_emulator", "--port", str(self.port)],
            ready="listening",
        )
        try:
            self.child.wait_ready(30)
        except BaseException:
            self.child.stop()
            raise
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.control = EmulatorControl(self.base_url, timeout=60)
        # Our own budget already stops at X's; the emulator's must not cut a run short.
        self.control.set_limits(app_posts_per_day=10_000_000, user_posts_per_day=100_000)

    def stop(self) -> None:
        self.child.stop()


def run_json(args: list[str], stdin: str, timeout: float) -> Any:
    """Run a child that reads a JSON spec on stdin and prints a JSON answer last."""
    result = subprocess.run(
        args,
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
