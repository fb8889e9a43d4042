"""Processes the test suite started and left running.

A process counts as the suite's when it still carries the run's marker in its
environment (every child inherits it, also one that detached into its own session,
as pgserver's PostgreSQL does), or when its working directory or command line points
into the run's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterable
from pathlib import Path

import psutil

MARK = "POST_MANAGEMENT_TEST_RUN"
STOP_WAIT_S = 5.0


def mark_environment() -> str:
    """Give every process started from now on a new marker of this run; return it."""
    # Always new: a run started from inside another must not claim the outer's processes.
    token = uuid.uuid4().hex
    os.environ[MARK] = token
    return token


def _points_into(process: psutil.Process, roots: tuple[str, ...]) -> bool:
    if not roots:
        return False
    try:
        places = [process.cwd(), *process.cmdline()]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    # Inside a root, not merely sharing its prefix (pytest-5 is not pytest-50).
    return any(
        place in roots or place.startswith(tuple(r + os.sep for r in roots)) for place in places
    )


def _carries(process: psutil.Process, token: str) -> bool:
    try:
        return process.environ().get(MARK) == token
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def leftovers(token: str, roots: Iterable[Path] = ()) -> list[psutil.Process]:
    """Live processes (not this one nor its ancestors) started by the run `token`."""
    me = psutil.Process()
    spared = {me.pid, *(parent.pid for parent in me.parents())}
    prefixes = tuple(str(root) for root in roots)
    found = []
    for process in psutil.process_iter():
        if process.pid in spared:
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue  # already dead, only waiting for its parent to reap it
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if _carries(process, token) or _points_into(process, prefixes):
            found.append(process)
    return found


def describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline())[:200]}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return f"pid {process.pid}: (gone)"


def stop(processes: list[psutil.Process]) -> None:
    """SIGTERM, then SIGKILL whatever is still alive after STOP_WAIT_S."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=STOP_WAIT_S)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=STOP_WAIT_S)


def settle(token: str, roots: Iterable[Path] = ()) -> list[psutil.Process]:
    """Leftovers that are still alive after giving exiting ones STOP_WAIT_S to finish."""
    found = leftovers(token, roots)
    if not found:
        return []
    _, alive = psutil.wait_procs(found, timeout=STOP_WAIT_S)
    return list(alive)
