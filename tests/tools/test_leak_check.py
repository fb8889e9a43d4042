"""The end-of-run check finds processes the suite left running, detached ones too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import leaks

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _sleeper(env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    # Its own session, like pgserver's PostgreSQL: no process group reaches it.
    return subprocess.Popen(["sleep", "60"], env=env, cwd=cwd, start_new_session=True)


def test_a_detached_process_carrying_the_marker_is_found_and_stopped(
    started: list[subprocess.Popen[bytes]],
) -> None:
    token = "marker-under-test"
    started.append(_sleeper({**os.environ, leaks.MARK: token}))
    found = leaks.leftovers(token)
    assert [p.pid for p in found] == [started[0].pid]
    leaks.stop(found)
    assert not _alive(started[0].pid)
    assert leaks.leftovers(token) == []


def test_a_process_working_in_the_runs_temporary_directory_is_found(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    clean_env = {"PATH": os.environ["PATH"]}  # no marker at all
    started.append(_sleeper(clean_env, cwd=tmp_path))
    started.append(_sleeper(clean_env))  # elsewhere: not the run's
    neighbour = Path(f"{tmp_path}0")  # another run's folder that shares the prefix
    neighbour.mkdir()
    started.append(_sleeper(clean_env, cwd=neighbour))
    found = leaks.leftovers("another-run", roots=[tmp_path])
    assert [p.pid for p in found] == [started[0].pid]
    assert psutil.pid_exists(started[1].pid)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _inner_run(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(textwrap.dedent(body))
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("-p", "tests.support.leak_check", "--rootdir", str(tmp_path)),
            *("-c", os.devnull, "--basetemp", str(tmp_path / "inner-tmp"), str(test_file)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_run_that_leaves_a_process_behind_fails_and_stops_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "leaked.pids"
    result = _inner_run(
        tmp_path,
        f"""
        import os, subprocess
        def test_starts_and_forgets(tmp_path):
            marked = subprocess.Popen(["sleep", "60"], start_new_session=True)
            # No marker in its environment: found because it works in the run's folder.
            unmarked = subprocess.Popen(
                ["sleep", "61"], start_new_session=True, cwd=tmp_path,
                env={{"PATH": os.environ["PATH"]}},
            )
            open({str(pid_file)!r}, "w").write(f"{{marked.pid}} {{unmarked.pid}}")
        """,
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "leftover processes" in result.stdout
    marked, unmarked = (int(pid) for pid in pid_file.read_text().split())
    assert f"pid {marked}: sleep 60" in result.stdout
    assert f"pid {unmarked}: sleep 61" in result.stdout
    assert not _alive(marked) and not _alive(unmarked)


def test_a_run_that_stops_what_it_started_passes(tmp_path: Path) -> None:
    result = _inner_run(
        tmp_path,
        """
        import subprocess
        def test_starts_and_stops():
            child = subprocess.Popen(["sleep", "60"], start_new_session=True)
            child.kill()
            child.wait()
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leftover processes" not in result.stdout
