"""The security tier's fixtures: one running server per module on the machine's
PostgreSQL, without background publishing, for the tests that time the server's CPU
(the server runs in this process, so `time.process_time()` counts its work and nothing
else's much), and callers on it. The root conftest adds the shared ones (Envoy, the X
emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import truncate
from tests.integration.grpc_fixtures import Client
from tests.support.harness import RunningServer, settings_for


@pytest.fixture(scope="module")
def quiet_server(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    settings = settings_for(
        machine_database, Path(tmp_path_factory.mktemp("data")), dispatcher_enabled=False
    )
    running = RunningServer(settings)
    yield running
    running.stop()


@pytest.fixture
def fresh(quiet_server: RunningServer) -> RunningServer:
    truncate(quiet_server.settings.database.database_url.get_secret_value())  # type: ignore[union-attr]
    return quiet_server


@pytest.fixture
def alice(fresh: RunningServer) -> Iterator[Client]:
    client = Client(fresh, "alice")
    yield client
    client.channel.close()


@pytest.fixture
def bob(fresh: RunningServer) -> Iterator[Client]:
    client = Client(fresh, "bob")
    yield client
    client.channel.close()
