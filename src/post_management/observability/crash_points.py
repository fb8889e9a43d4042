"""Test-only crash points: SIGKILL this process at a named place of the engine.

The crash-point drills (tests/faults, docs/reliability.md) start a worker with
`PM_CRASH_AT=<name>` or `PM_CRASH_AT=<name>@<n>` (the n-th time that place is
reached in the process) and restart it after the kill, to prove that no place in
the publishing path can lose or double a post. Unset in production, where each
`crash_point()` is one comparison; the process warns at start when it is set.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

CRASH_AT_ENV = "PM_CRASH_AT"

# The places marked in the engine, for the drills and the documentation.
AFTER_CLAIM = "after_claim"  # the claim committed, X not called yet
AFTER_X_STORED = "after_x_stored"  # X answered with the post's id, nothing settled yet
IN_SETTLE = "in_settle"  # inside the settle transaction, before it commits
BETWEEN_SEGMENTS = "between_segments"  # a thread segment recorded, the next not sent
MID_MEDIA_UPLOAD = "mid_media_upload"  # before each media upload request to X
BEFORE_ADOPT = "before_adopt"  # the reconciler found the post on X, not recorded yet
POINTS = (AFTER_CLAIM, AFTER_X_STORED, IN_SETTLE, BETWEEN_SEGMENTS, MID_MEDIA_UPLOAD, BEFORE_ADOPT)


def parse(raw: str) -> tuple[str, int] | None:
    """`name` or `name@n` (n >= 1) as (name, n); None when empty."""
    raw = raw.strip()
    if not raw:
        return None
    name, _, nth = raw.partition("@")
    if name not in POINTS:
        raise ValueError(f"{CRASH_AT_ENV}: unknown crash point {name!r} (one of {POINTS})")
    try:
        count = int(nth) if nth else 1
    except ValueError:
        raise ValueError(f"{CRASH_AT_ENV}: {raw!r} is not name@n") from None
    if count < 1:
        raise ValueError(f"{CRASH_AT_ENV}: n must be at least 1")
    return name, count


def _from_env() -> tuple[tuple[str, int] | None, str]:
    try:
        return parse(os.environ.get(CRASH_AT_ENV, "")), ""
    except ValueError as exc:
        return None, str(exc)


# Read once: the places are on the publishing path and must cost nothing.
_target, _invalid = _from_env()
_hits = 0
_lock = threading.Lock()


def armed() -> str | None:
    """The crash point this process will die at, if any (for the start-up warning);
    ValueError when the environment names no known place."""
    if _invalid:
        raise ValueError(_invalid)
    return None if _target is None else f"{_target[0]}@{_target[1]}"


def crash_point(name: str) -> None:
    """Die here, without any clean-up, when the environment names this place."""
    global _hits
    if _target is None or _target[0] != name:
        return
    with _lock:
        _hits += 1
        if _hits < _target[1]:
            return
    # Said on stderr first, so a drill can tell this kill from any other death.
    sys.stderr.write(f"crash point {name} reached (hit {_hits}): SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
