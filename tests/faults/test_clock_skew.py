"""Worker processes whose own clock is two minutes off (the test-only clock offset)
against one PostgreSQL: the database's clock decides due times and leases, so a
fast worker neither publishes early nor takes a live claim, and a slow worker's
claim does not lapse the moment it is taken."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from post_management.adapters.clock import TEST_CLOCK_OFFSET_ENV
from post_management.domain.post import PostState
from tests.integration.publishing_fixtures import ENCRYPTION_KEY, Engine_
from tests.support.process import ServiceProcess

SKEW_S = 120
# Float rounding of the emulator's unix-seconds stamp; both clocks are this host's.
STAMP_RESOLUTION = timedelta(milliseconds=10)


@contextmanager
def _worker(
    engine: Engine_, tmp_path: Path, offset_s: float, **extra: str
) -> Iterator[ServiceProcess]:
    database = engine.engine.url.render_as_string(hide_password=False)
    env = {
        "DATABASE_URL": database,
        "ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "JWT_SECRET": "j" * 40,
        "X_MODE": "emulator",
        "X_API_BASE_URL": engine.emulator.base_url,
        "DISPATCH_INTERVAL_SECONDS": "0.2",
        "RECONCILE_INTERVAL_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
        TEST_CLOCK_OFFSET_ENV: str(offset_s),
        **extra,
    }
    worker = ServiceProcess(env, tmp_path, command="worker")
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.kill()


def _wait_for(condition: Callable[[], Any], timeout: float, why: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {why}")


def _row(engine: Engine_, post_id: object) -> Any:
    with engine.engine.connect() as connection:
        return (
            connection.execute(
                text(
                    "SELECT state, attempt_id, due_at, lease_expires_at - now() AS lease_left "
                    "FROM posts WHERE id = :id"
                ),
                {"id": post_id},
            )
            .mappings()
            .one()
        )


def test_a_fast_worker_neither_publishes_early_nor_takes_a_live_claim(
    engine_: Engine_, tmp_path: Path
) -> None:
    due_soon = engine_.post(engine_.account(), "due in six seconds", due_in=timedelta(seconds=6))
    held = engine_.post(engine_.account(), "held by another worker")
    (claim,) = engine_.queue.claim_due(10, timedelta(seconds=60))
    assert claim.post_id == held.id
    due_at = _row(engine_, due_soon.id)["due_at"]

    with _worker(engine_, tmp_path, +SKEW_S) as worker:
        _wait_for(
            lambda: engine_.load(due_soon.id).state is PostState.PUBLISHED,
            30,
            "the post due in six seconds",
        )
        # The fast worker's reconciler has ticked every 0.2 s meanwhile.
        still = _row(engine_, held.id)
        assert worker.process.poll() is None

    (on_x,) = engine_.emulator.control.posts(text="due in six seconds")
    sent_at = datetime.fromtimestamp(on_x["created_at"], due_at.tzinfo)
    assert sent_at >= due_at - STAMP_RESOLUTION, (sent_at, due_at)
    assert still["state"] == "PUBLISHING" and still["attempt_id"] == claim.holder
    assert engine_.emulator.control.posts(text="held by another worker") == []


def test_a_slow_workers_claim_holds_for_its_whole_lease(engine_: Engine_, tmp_path: Path) -> None:
    # Overdue even by the slow worker's clock: what is tested is the lease it writes.
    post = engine_.post(
        engine_.account(), "sent by a slow worker", due_in=-timedelta(seconds=SKEW_S + 60)
    )
    # X takes a while to answer: long enough to look at the claim meanwhile.
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "delay", delay_seconds=4)

    with _worker(engine_, tmp_path, -SKEW_S, X_TIMEOUT_SECONDS="10"):
        row = _wait_for(
            lambda: (r := _row(engine_, post.id))["state"] == "PUBLISHING" and r,
            30,
            "the slow worker's claim",
        )
        # Ninety seconds from the database's now, not from the worker's clock.
        assert row["lease_left"] > timedelta(seconds=60), row["lease_left"]
        assert engine_.reconciler.tick() == 0  # nobody else may take it
        _wait_for(lambda: engine_.load(post.id).state is PostState.PUBLISHED, 30, "the publish")

    assert len(engine_.emulator.control.posts(text="sent by a slow worker")) == 1
    assert [outcome for _, outcome in engine_.attempts(post.id)] == ["published"]
