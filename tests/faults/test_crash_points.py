"""Crash-point drills: a worker SIGKILLs itself at a named place of the publishing
path (PM_CRASH_AT), a fresh worker takes over, and the post is on X exactly once,
on time, with the id the service stored (docs/reliability.md has the table).

X's timeline lags behind each post (the emulator's timeline lag) and the killed
worker's clock runs a minute ahead of the database's. `make test` runs one post
kind per crash point; `make drills` runs every kind.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from post_management.observability import crash_points as crash
from tests.faults.drills import (
    CLOCK_SKEW_S,
    KINDS,
    LATE_BOUND,
    MEDIA_ONLY,
    MID_UPLOAD_HIT,
    REPLY,
    TEXT,
    THREAD,
    TIMELINE_LAG_S,
    Kind,
    Seeder,
    Worker,
    verdict,
    wait_until_settled,
    worker_env,
)
from tests.fixtures.emulator import Emulator
from x_emulator.server import EmulatorThread

# The kinds each place is on the path of: only a thread has a second segment,
# and a text post uploads nothing (the reply and the thread carry a video there).
APPLIES: dict[str, tuple[Kind, ...]] = {
    crash.AFTER_CLAIM: KINDS,
    crash.AFTER_X_STORED: KINDS,
    crash.IN_SETTLE: KINDS,
    crash.BETWEEN_SEGMENTS: (THREAD,),
    crash.MID_MEDIA_UPLOAD: (MEDIA_ONLY, REPLY, THREAD),
    crash.BEFORE_ADOPT: KINDS,
}
# The representative subset of `make test`: every place once, every kind at least once.
DEFAULT: dict[str, Kind] = {
    crash.AFTER_CLAIM: TEXT,
    crash.AFTER_X_STORED: MEDIA_ONLY,
    crash.IN_SETTLE: REPLY,
    crash.BETWEEN_SEGMENTS: THREAD,
    crash.MID_MEDIA_UPLOAD: MEDIA_ONLY,
    crash.BEFORE_ADOPT: TEXT,
}


def _cases() -> Iterator[object]:
    for point, kinds in APPLIES.items():
        for kind in kinds:
            marks = () if DEFAULT[point] is kind else (pytest.mark.drill,)
            yield pytest.param(point, kind, marks=marks, id=f"{point}-{kind.name}")


@pytest.mark.parametrize(("point", "kind"), list(_cases()))
def test_a_worker_killed_at_a_crash_point_loses_and_doubles_nothing(
    point: str,
    kind: Kind,
    drill_database: str,
    emulator: Emulator,
    emulator_server: EmulatorThread,
    tmp_path: Path,
) -> None:
    control = emulator.control
    control.set_behaviour(timeline_lag_seconds=TIMELINE_LAG_S)
    seeder = Seeder(drill_database, control)
    env = worker_env(drill_database, seeder.key, emulator_server.base_url)
    crash_at = f"{point}@{MID_UPLOAD_HIT}" if point == crash.MID_MEDIA_UPLOAD else point
    if point == crash.BEFORE_ADOPT:
        # X stores the post and the answer is lost: only the reconciler can settle it.
        control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    killed = Worker(env, tmp_path, crash_at=crash_at, clock_skew_s=CLOCK_SKEW_S)
    workers = [killed]
    try:
        killed.wait_ready()
        due = seeder.db_now() + timedelta(seconds=2)
        seeded = seeder.kind(kind, due, with_video=point == crash.MID_MEDIA_UPLOAD)
        killed.wait_crashed(timeout=LATE_BOUND.total_seconds() + 20)
        restarted = Worker(env, tmp_path)
        workers.append(restarted)
        restarted.wait_ready()
        waited = wait_until_settled(
            seeder.engine, [seeded.post_id], timeout=LATE_BOUND.total_seconds() + 30
        )
        restarted.stop()
        result = verdict(seeder.engine, control, [seeded])
    finally:
        for worker in workers:
            worker.kill()
        seeder.close()
    print(
        f"DRILL {point} {kind.name}: {'pass' if result else 'FAIL'}; "
        f"on X {result.worst_late_s():.1f} s after due; settled after {waited:.1f} s"
    )
    assert result, "\n".join(result.problems + restarted.process.lines[-15:])


def _crash_in_subprocess(value: str, hits: int) -> subprocess.CompletedProcess[str]:
    program = (
        "from post_management.observability.crash_points import crash_point\n"
        f"for _ in range({hits}):\n"
        "    crash_point('after_claim')\n"
        "    crash_point('in_settle')\n"
        "print('survived', flush=True)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", program],
        env={"PM_CRASH_AT": value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_crash_point_kills_the_process_at_its_nth_hit_and_only_there() -> None:
    third = _crash_in_subprocess("in_settle@3", hits=5)
    assert third.returncode == -9
    assert "crash point in_settle reached (hit 3): SIGKILL" in third.stderr
    assert "survived" not in third.stdout

    never = _crash_in_subprocess("in_settle@6", hits=5)
    assert never.returncode == 0 and "survived" in never.stdout
