"""Three worker processes, injected X faults and a SIGKILL mid-batch: every post is
published exactly once (DESIGN section 4)."""

# ruff: noqa: F811
from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, text

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.schema import posts
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.emulator.server import EmulatorThread
from post_management.domain.account import Account, Credentials
from post_management.domain.privacy import Pseudonyms
from tests.conftest import MACHINE_PG, _fresh_database
from tests.fixtures.emulator import Emulator, emulator, emulator_server  # noqa: F401
from tests.support.process import ServiceProcess

ACCOUNTS = 200
POSTS = 2000
DEADLINE_S = 150


@pytest.fixture
def database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


def _seed(url: str, key: str, emulator: Emulator) -> None:
    engine = make_engine(url)
    uow = SqlUnitOfWorkFactory(engine, FernetBox([key]), Pseudonyms(secrets.token_bytes(32)))
    now = datetime.now(UTC)
    account_ids = []
    with uow() as work:
        for i in range(ACCOUNTS):
            x_user_id = str(900_000 + i)
            emulator.control.register_user(f"tok-{x_user_id}", user_id=x_user_id)
            account = Account(
                id=uuid.uuid4(),
                user_id=f"user-{i % 20}",
                handle=f"acct{i}",
                x_user_id=x_user_id,
                created_at=now,
                updated_at=now,
                credentials=Credentials(f"tok-{x_user_id}", "secret"),
            )
            work.accounts.add(account)
            account_ids.append(account.id)
        work.commit()
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": f"user-{(i % ACCOUNTS) % 20}",
            "account_id": account_ids[i % ACCOUNTS],
            "text": f"fault-tolerant post {i}",
            "state": "SCHEDULED",
            "priority": 1 + i % 4,
            "due_at": now,
            "timezone": "UTC",
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(POSTS)
    ]
    with engine.begin() as connection:
        connection.execute(insert(posts), rows)
    engine.dispose()


def _states(url: str) -> Counter[str]:
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT state, count(*) FROM posts GROUP BY state")).all()
    engine.dispose()
    return Counter({state: count for state, count in rows})


def _diagnose(url: str, workers: list[ServiceProcess]) -> str:
    """What the unfinished posts and the workers were doing, for a failing run."""
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        stuck = connection.execute(
            text(
                "SELECT p.state, p.attempt_count, p.last_error, p.unknown_cause, "
                "p.due_at - now() AS due_in, p.reconcile_after - now() AS reconcile_in, "
                "p.lease_expires_at - now() AS lease_in, a.state AS account, "
                "a.rate_limited_until - now() AS limited_for "
                "FROM posts p JOIN accounts a ON a.id = p.account_id "
                "WHERE p.state <> 'PUBLISHED' LIMIT 15"
            )
        ).all()
    engine.dispose()
    lines = [str(_states(url)), *map(str, stuck)]
    for worker in workers:
        lines += worker.lines[-15:]
    return "\n".join(lines)


def test_every_post_is_published_exactly_once(
    database: str, emulator: Emulator, emulator_server: EmulatorThread, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    _seed(database, key, emulator)
    env = {
        "DATABASE_URL": database,
        "ENCRYPTION_KEYS": key,
        "JWT_SECRET": "j" * 40,
        "X_MODE": "emulator",
        "X_API_BASE_URL": emulator_server.base_url,
        "X_TIMEOUT_SECONDS": "1",
        "PUBLISH_LEASE_SECONDS": "5",
        "PUBLISH_SETTLE_SECONDS": "1",
        # This emulator lists posts at once: the lag bound only covers the 1 s calls.
        "X_TIMELINE_LAG_SECONDS": "2",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_CAP_SECONDS": "1",
        "RETRY_MAX_ATTEMPTS": "50",
        "DISPATCH_INTERVAL_SECONDS": "0.2",
        "RECONCILE_INTERVAL_SECONDS": "0.3",
        "LOG_LEVEL": "ERROR",
    }
    control = emulator.control
    control.inject_fault("POST", "/2/tweets", "status", status=503, count=60)
    control.inject_fault("POST", "/2/tweets", "accept_then_drop", count=60)
    control.inject_fault("POST", "/2/tweets", "timeout", accept=True, count=20)

    workers = [ServiceProcess(dict(env), tmp_path, command="worker") for _ in range(3)]
    try:
        for worker in workers:
            worker.wait_ready()
        # Kill one mid-batch: its claims stay PUBLISHING until their lease ends.
        deadline = time.monotonic() + 30
        while _states(database)["PUBLISHED"] < POSTS // 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers[0].kill()
        workers.append(ServiceProcess(dict(env), tmp_path, command="worker"))
        workers[-1].wait_ready()

        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            states = _states(database)
            if states["PUBLISHED"] == POSTS:
                break
            time.sleep(0.5)
        assert _states(database) == Counter({"PUBLISHED": POSTS}), _diagnose(database, workers)
    finally:
        for worker in workers:
            worker.kill()

    # No create-post was ever sent for a post already on X (the emulator would have
    # refused it as a duplicate, which alone could hide a repost).
    assert control.counters().get("POST /2/tweets duplicate", 0) == 0
    on_x = Counter(p["text"] for p in control.posts())
    doubled = {t: n for t, n in on_x.items() if n > 1}
    assert doubled == {}
    assert set(on_x) == {f"fault-tolerant post {i}" for i in range(POSTS)}
    engine = make_engine(database, pool_size=1)
    with engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT text, x_post_id FROM posts")).all())
        outcomes = dict(
            connection.execute(
                text("SELECT outcome, count(*) FROM post_attempts GROUP BY outcome")
            ).all()
        )
    engine.dispose()
    assert stored == {p["text"]: p["id"] for p in control.posts()}
    # The faults really happened: retries after 5xx, adoptions after lost answers.
    assert control.counters()["POST /2/tweets"] >= POSTS + 60
    assert outcomes.get("retry", 0) >= 60
    assert outcomes.get("adopted", 0) >= 60
