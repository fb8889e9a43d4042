"""The integration tier's fixtures: a running server per module on the machine's
PostgreSQL (with the X emulator as X: `x_server`), and an emptied database engine.

The root conftest adds the fixtures shared with other tiers (the X emulator, Envoy,
the Kafka-protocol broker, the publishing engine, the callers `clean`, `alice` and
`bob` on `server`). The embedded PostgreSQL is proven once, by
test_embedded_postgres_smoke.py, which gives its module its own `server`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from post_management.adapters.db.engine import make_engine
from tests.conftest import truncate
from tests.support.harness import RunningServer, running_server, settings_for
from x_emulator.server import EmulatorThread


@pytest.fixture(scope="module")
def server(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A running server on the machine's PostgreSQL, one per module."""
    with running_server(settings_for(machine_database, tmp_path_factory.mktemp("data"))) as running:
        yield running


@pytest.fixture(scope="module")
def x_server(
    machine_database: str,
    emulator_server: EmulatorThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """A running server whose X is the session's emulator (tests control its faults)."""
    settings = settings_for(
        machine_database,
        tmp_path_factory.mktemp("data"),
        x_api_base_url=emulator_server.base_url,
        x_timeout_seconds=2,
    )
    with running_server(settings) as running:
        yield running


@pytest.fixture
def engine(machine_database: str) -> Iterator[Engine]:
    """An engine on the machine's database, emptied first."""
    truncate(machine_database)
    engine = make_engine(machine_database, pool_size=4)
    yield engine
    engine.dispose()
