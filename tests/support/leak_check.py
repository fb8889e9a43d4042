"""pytest plugin: the run fails when a process it started is still alive at its end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import leaks

_RUN_TOKEN = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # Before any fixture starts a process: everything started from here carries it.
    config.stash[_RUN_TOKEN] = leaks.mark_environment()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a process the suite started is still alive; then stop it."""
    token = session.config.stash.get(_RUN_TOKEN, None)
    if token is None:
        return
    roots: list[Path] = []
    factory = getattr(session.config, "_tmp_path_factory", None)
    # Only a folder the run made: creating one now would touch pytest's shared root.
    if factory is not None and (basetemp := getattr(factory, "_basetemp", None)) is not None:
        roots.append(basetemp)
    alive = leaks.settle(token, roots)
    if not alive:
        return
    report = "\n".join(f"  {leaks.describe(process)}" for process in alive)
    leaks.stop(alive)
    message = f"processes started by the test suite were still running (now stopped):\n{report}"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "leftover processes", red=True)
        reporter.write_line(message)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
