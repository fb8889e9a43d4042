"""The security tier's fixtures: one running server per module on the machine's
PostgreSQL, without background publishing, for the tests that time the server's CPU
(the server runs in this process, so `time.process_time()` counts its work and nothing
else's much). The root conftest adds the shared ones (Envoy, the X emulator, and the
callers `clean`, `alice` and `bob` on this `server`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.harness import RunningServer, running_server, settings_for


@pytest.fixture(scope="module")
def server(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    settings = settings_for(
        machine_database, tmp_path_factory.mktemp("data"), dispatcher_enabled=False
    )
    with running_server(settings) as running:
        yield running
