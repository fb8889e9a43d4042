"""The mixed drill: three worker processes (one with its clock a minute fast), X's
timeline lagging, faults injected all along and a worker SIGKILLed while it holds
claims and faults are still being injected: every post is on X exactly once, with
the id the service stored, one `post.published` event each, on time
(docs/reliability.md)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from post_management.adapters.db.schema import posts
from tests.conftest import MACHINE_PG, _fresh_database
from tests.faults.drills import (
    CLOCK_SKEW_S,
    LAG_BOUND_S,
    TIMELINE_LAG_S,
    X_TIMEOUT_S,
    Seeded,
    Seeder,
    Worker,
    duplicate_report,
    pending_faults,
    states,
    verdict,
    worker_env,
)
from tests.fixtures.emulator import Emulator
from x_emulator import EmulatorControl
from x_emulator.server import EmulatorThread

ACCOUNTS = 200
POSTS = 2000
DEADLINE_S = 240
# 2,000 posts of 200 accounts leave one per account at a time; with the faults'
# look-agains (lag bound) and the killed worker's leases, the last is out by then.
LATE_BOUND = timedelta(seconds=120)
# X stores these after the caller gave up; the lag bound covers them plus the lag.
LATE_STORE_DELAY_S = X_TIMEOUT_S + 1
assert LATE_STORE_DELAY_S + TIMELINE_LAG_S < LAG_BOUND_S


@pytest.fixture
def database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


def _seed(seeder: Seeder, due_at: datetime, posts_n: int, accounts_n: int) -> list[Seeded]:
    accounts = [seeder.account(f"acct{i}") for i in range(accounts_n)]
    now = seeder.db_now()
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": accounts[i % accounts_n].user_id,
            "account_id": accounts[i % accounts_n].id,
            "text": f"fault-tolerant post {i}",
            "state": "SCHEDULED",
            "priority": 1 + i % 4,
            "due_at": due_at,
            "timezone": "UTC",
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(posts_n)
    ]
    with seeder.engine.begin() as connection:
        connection.execute(insert(posts), rows)
    return [
        Seeded(
            row["id"], row["account_id"], accounts[i % accounts_n].x_user_id, (row["text"],), due_at
        )
        for i, row in enumerate(rows)
    ]


class Injector(threading.Thread):
    """Arms a round of X faults whenever the last one has been used up (checked every
    half second) until stopped, then disarms what is left: the faults keep coming
    before, during and after the kill, without piling up."""

    ROUND: tuple[dict[str, Any], ...] = (
        {"kind": "status", "status": 503, "count": 2},  # X stored nothing
        {"kind": "accept_then_drop", "count": 2},  # stored, answer lost
        {"kind": "timeout", "accept": True},  # stored, the caller times out
        {"kind": "late_store", "delay_seconds": LATE_STORE_DELAY_S},  # stored after the timeout
    )

    def __init__(self, control: EmulatorControl, base_url: str) -> None:
        super().__init__(daemon=True)
        self._control = control
        self._base_url = base_url
        self._halt = threading.Event()
        self.rounds = 0

    def run(self) -> None:
        while not self._halt.wait(0.5):
            if not pending_faults(self._base_url):
                self.arm()

    def arm(self) -> None:
        for fault in self.ROUND:
            self._control.inject_fault("POST", "/2/tweets", **fault)
        self.rounds += 1

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)
        self._control.clear_faults()


def _claims(
    seeder: Seeder, *, live: bool, started_after: datetime | None = None
) -> dict[uuid.UUID, tuple[Any, Any]]:
    """Claims in a publisher's hands (not parked for the reconciler), with their holder
    and lease; `live`: only those whose lease has not run out; `started_after`: only
    posts claimed for publishing after that time."""
    query = (
        "SELECT id, attempt_id, lease_expires_at FROM posts WHERE state = 'PUBLISHING' "
        "AND reconcile_after IS NULL"
    )
    if live:
        query += " AND lease_expires_at > now()"
    if started_after is not None:
        query += " AND publish_started_at > :started_after"
    with seeder.engine.connect() as connection:
        rows = connection.execute(text(query), {"started_after": started_after}).all()
    return {row.id: (row.attempt_id, row.lease_expires_at) for row in rows}


def _kill_holding_a_claim(
    seeder: Seeder, victim: Worker, others: list[Worker]
) -> tuple[dict[uuid.UUID, tuple[Any, Any]], uuid.UUID]:
    """SIGKILL `victim` at a moment it holds a publishing claim of its own, and return
    the live claims at the kill with one post the victim claimed. The others are
    paused meanwhile, and only a claim started after they stopped counts (on the
    database's clock, which stamps every claim): a commit they sent before their stop
    may land later, but its claim started before. The victim is paused the moment such
    a claim appears and killed if it still holds it once what it sent before its stop
    has landed, else resumed to try again."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            for worker in others:
                worker.pause()
            paused_at = seeder.db_now()
            window = time.monotonic() + 2  # inside a lease: the paused keep most of theirs
            while time.monotonic() < window:
                fresh = _claims(seeder, live=True, started_after=paused_at)
                if fresh:
                    victim.pause()
                    # A settlement the victim sent before its stop may still land:
                    # read the claims once it has.
                    victim.wait_sent_statements_run(seeder.engine)
                    held = _claims(seeder, live=True)
                    still = [
                        post_id for post_id, claim in fresh.items() if held.get(post_id) == claim
                    ]
                    if still:
                        victim.kill()
                        return held, still[0]
                    victim.resume()
                    break
                time.sleep(0.02)
        finally:
            for worker in others:
                worker.resume()
        time.sleep(0.3)
    raise AssertionError("the worker to be killed never held a claim for a minute")


def _diagnose(seeder: Seeder, workers: list[Worker]) -> str:
    """What the unfinished posts and the workers were doing, for a failing run."""
    with seeder.engine.connect() as connection:
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
    lines = [str(states(seeder.engine)), *map(str, stuck)]
    for worker in workers:
        lines += worker.process.lines[-15:]
    return "\n".join(lines)


def test_every_post_is_published_exactly_once(
    database: str,
    emulator: Emulator,
    emulator_server: EmulatorThread,
    tmp_path: Path,
) -> None:
    posts_n, accounts_n = POSTS, ACCOUNTS
    # Two 503s and two lost answers per round: 3 of each per 100 posts at least.
    rounds_needed = posts_n * 3 // 200
    control = emulator.control
    control.set_behaviour(timeline_lag_seconds=TIMELINE_LAG_S)
    seeder = Seeder(database, control)
    env = worker_env(database, seeder.key, emulator_server.base_url, LOG_LEVEL="ERROR")
    env["RETRY_MAX_ATTEMPTS"] = "50"
    # The one to be killed, one whose clock is a minute fast, and a plain one.
    workers = [
        Worker(env, tmp_path),
        Worker(env, tmp_path, clock_skew_s=CLOCK_SKEW_S),
        Worker(env, tmp_path),
    ]
    injector = Injector(control, emulator_server.base_url)
    try:
        for worker in workers:
            worker.wait_ready()
        seeded = _seed(seeder, seeder.db_now() + timedelta(seconds=3), posts_n, accounts_n)
        injector.start()
        deadline = time.monotonic() + 60
        while states(seeder.engine)["PUBLISHED"] < posts_n // 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        # Kill one mid-batch, faults still armed and still coming.
        # Workers may use a round up before it is read back: arm until one is pending.
        armed: list[Any] = []
        for _ in range(20):
            injector.arm()
            armed = pending_faults(emulator_server.base_url)
            if armed:
                break
        rounds_at_kill = injector.rounds
        held, victims_claim = _kill_holding_a_claim(seeder, workers[0], workers[1:])
        # Within one X call the live workers settle, park or renew each claim they
        # hold; the dead one's stay as they were until the reconciler takes them
        # (not before their lease ends, more than this after the kill).
        time.sleep(X_TIMEOUT_S + 0.5)
        orphaned = {
            post_id: claim
            for post_id, claim in _claims(seeder, live=False).items()
            if held.get(post_id) == claim
        }
        workers.append(Worker(env, tmp_path))
        workers[-1].wait_ready()
        rounds_after_kill = injector.rounds - rounds_at_kill
        deadline = time.monotonic() + 60  # the kill may have waited for its moment
        # Enough rounds for the counts asserted below: a round is armed only once the
        # one before it was used up, so one more than needed has been armed when the
        # needed ones all happened (stop() clears the round still armed).
        while (
            states(seeder.engine)["PUBLISHED"] < posts_n * 3 // 5
            or injector.rounds <= rounds_needed
        ) and time.monotonic() < deadline + 30:
            time.sleep(0.1)
        injector.stop()

        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if states(seeder.engine)["PUBLISHED"] == posts_n:
                break
            time.sleep(0.5)
        assert states(seeder.engine) == Counter({"PUBLISHED": posts_n}), _diagnose(seeder, workers)
        for worker in workers[1:]:
            worker.stop()
        result = verdict(seeder.engine, control, seeded, late_bound=LATE_BOUND)
    finally:
        injector.stop()
        for worker in workers:
            worker.kill()
    print(
        f"DRILL mixed run: {posts_n} posts, {len(orphaned)} claims held by the killed worker, "
        f"{len(armed)} faults armed at the kill, {rounds_after_kill} fault rounds after it, "
        f"last post on X {result.worst_late_s():.1f} s after due"
    )
    # The kill landed inside the faults and took claims with it.
    assert armed and rounds_after_kill > 0
    assert victims_claim in orphaned, "the killed worker's claim was taken before its lease ended"
    assert result, "\n".join(result.problems[:30])

    # No create-post was ever sent for a post already on X (the emulator would have
    # refused it as a duplicate, which alone could hide a repost).
    refused = control.counters().get("POST /2/tweets duplicate", 0)
    assert refused == 0, duplicate_report(seeder.engine, control)
    with seeder.engine.connect() as connection:
        outcomes = dict(
            connection.execute(
                text("SELECT outcome, count(*) FROM post_attempts GROUP BY outcome")
            ).all()
        )
    seeder.close()
    # The faults really happened: retries after 5xx, adoptions after lost answers.
    assert control.counters()["POST /2/tweets"] >= posts_n + 2 * rounds_needed
    assert outcomes.get("retry", 0) >= 2 * rounds_needed
    assert outcomes.get("adopted", 0) >= 2 * rounds_needed
