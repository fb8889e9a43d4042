"""A database for the drills: created once per module, emptied before each drill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import MACHINE_PG, _fresh_database, truncate


@pytest.fixture(scope="module")
def _drills_database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


@pytest.fixture
def drill_database(_drills_database: str) -> str:
    # Nothing of an earlier drill (a post left PUBLISHING, an account) may act in this one.
    truncate(_drills_database)
    return _drills_database
