"""Two drills against a real worker process (docs/reliability.md): posts that look
alike to a loose matcher are never taken for one another, and one account's
backlog never makes another account's post late."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from tests.faults.drills import (
    CLOCK_SKEW_S,
    LATE_BOUND,
    TIMELINE_LAG_S,
    Seeded,
    Seeder,
    Worker,
    pending_faults,
    verdict,
    wait_until_settled,
    worker_env,
)
from tests.fixtures.emulator import Emulator
from x_emulator.server import EmulatorThread

BACKLOG = 150
OTHERS = 40
# Every other account's post leaves this soon after its due time, backlog or not.
FAIR_BOUND = timedelta(seconds=2)


def test_a_lookalike_post_is_never_adopted_for_one_that_met_a_503(
    drill_database: str, emulator: Emulator, emulator_server: EmulatorThread, tmp_path: Path
) -> None:
    control = emulator.control
    control.set_behaviour(timeline_lag_seconds=TIMELINE_LAG_S)
    seeder = Seeder(drill_database, control)
    worker = Worker(
        worker_env(drill_database, seeder.key, emulator_server.base_url),
        tmp_path,
        clock_skew_s=CLOCK_SKEW_S,
    )
    try:
        worker.wait_ready()
        account = seeder.account()
        first = seeder.post(account, "Deal at shop-a.com today", seeder.db_now())
        wait_until_settled(seeder.engine, [first.post_id], timeout=LATE_BOUND.total_seconds())
        # A plain 503: X stored nothing, so the service cannot know and must look.
        control.inject_fault("POST", "/2/tweets", "status", status=503)
        second = seeder.post(account, "Deal at shop-b.com today", seeder.db_now())
        wait_until_settled(seeder.engine, [second.post_id], timeout=LATE_BOUND.total_seconds())
        worker.stop()
        result = verdict(seeder.engine, control, [first, second])
    finally:
        worker.kill()
        seeder.close()
    assert pending_faults(emulator_server.base_url) == []  # the 503 happened
    assert result, "\n".join(result.problems)


def test_one_accounts_backlog_delays_no_other_account(
    drill_database: str, emulator: Emulator, emulator_server: EmulatorThread, tmp_path: Path
) -> None:
    control = emulator.control
    seeder = Seeder(drill_database, control)
    # The default tick: fairness is owed per tick.
    env = worker_env(drill_database, seeder.key, emulator_server.base_url)
    env["DISPATCH_INTERVAL_SECONDS"] = "1"
    # Fewer slots than due posts: the rest must not wait a whole tick for a claim.
    env["PUBLISH_MAX_IN_FLIGHT"] = "32"
    worker = Worker(env, tmp_path)
    try:
        worker.wait_ready()
        busy = seeder.account()
        others = [seeder.account() for _ in range(OTHERS)]
        due = seeder.db_now() + timedelta(seconds=3)
        backlog = [seeder.post(busy, f"backlog post {i}", due) for i in range(BACKLOG)]
        later = due + timedelta(seconds=2)
        punctual = [seeder.post(a, f"on time for {a.handle}", later) for a in others]
        wait_until_settled(
            seeder.engine, [s.post_id for s in punctual], timeout=LATE_BOUND.total_seconds()
        )
        worker.stop()  # drains what is in flight
        result = verdict(seeder.engine, control, punctual, late_bound=FAIR_BOUND)
        published = _published(seeder, backlog)
        # The backlog keeps going meanwhile, each post once: no bound, it is a backlog.
        backlog_result = verdict(seeder.engine, control, published, late_bound=timedelta(hours=1))
    finally:
        worker.kill()
        seeder.close()
    print(
        f"DRILL backlog fairness: {OTHERS} others on X at most "
        f"{result.worst_late_s():.2f} s after due; {len(published)} of {BACKLOG} backlog posts out"
    )
    assert result, "\n".join(result.problems)
    assert backlog_result, "\n".join(backlog_result.problems)
    assert published, "the backlog account published nothing"


def _published(seeder: Seeder, seeded: list[Seeded]) -> list[Seeded]:
    with seeder.engine.connect() as connection:
        ids = set(
            connection.execute(
                text("SELECT id FROM posts WHERE id = ANY(:ids) AND state = 'PUBLISHED'"),
                {"ids": [s.post_id for s in seeded]},
            ).scalars()
        )
    return [s for s in seeded if s.post_id in ids]
