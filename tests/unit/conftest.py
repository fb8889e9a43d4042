"""The unit tier runs without scikit-learn: its use cases fit the engagement model with
the memory learner (adapters/memory/learner.py). A run of this tier alone (`make unit`)
fails when anything it ran imported scikit-learn, which takes seconds to import; a run
that also collects other tiers, which need the real learner, is not checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parent


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    items = getattr(session, "items", [])
    if not items or not all(UNIT in Path(item.path).parents for item in items):
        return
    if "sklearn" in sys.modules:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(
                "tests/unit imported scikit-learn: the unit tier runs on the memory learner",
                red=True,
            )
