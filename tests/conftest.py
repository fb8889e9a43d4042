"""Fixtures every tier may use: real PostgreSQL databases (the machine's and an embedded
one), and the fixture modules listed in `pytest_plugins`. A tier's own fixtures are
defined in its conftest.py (tests/<tier>/conftest.py); a test module never imports a
fixture to make it visible."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from post_management.adapters.db import analytics_schema  # noqa: F401 - registers its tables
from post_management.adapters.db.engine import make_engine, migrate
from post_management.adapters.db.schema import metadata
from post_management.adapters.local import EmbeddedPostgres

MACHINE_PG = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Fixture modules shared by several tiers, registered here because pytest reads
# `pytest_plugins` only in the root conftest.
pytest_plugins = [
    # Fails the run when a process the suite started outlives it.
    "tests.support.leak_check",
    # emulator_server, emulator, x_api: the X emulator (contract, integration, faults, ...).
    "tests.fixtures.emulator",
    # envoy_factory: a real Envoy in front of a gRPC server (integration, security).
    "tests.fixtures.envoy",
    # kafka_broker: a real Kafka-protocol broker (integration).
    "tests.fixtures.kafka",
    # clean, alice, bob: callers on the tier's `server` (integration, security).
    "tests.fixtures.callers",
    # engine_: the publishing engine on the machine's PostgreSQL (integration, faults).
    "tests.integration.publishing_fixtures",
]


def _fresh_database(admin_url: str) -> Iterator[str]:
    """A new database on the server behind admin_url, migrated, dropped afterwards."""
    name = f"pm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_engine(admin_url).url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def machine_database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


@pytest.fixture(scope="session")
def embedded_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedded_database(embedded_postgres: EmbeddedPostgres) -> Iterator[str]:
    yield from _fresh_database(embedded_postgres.url)


def truncate(url: str) -> None:
    """Empty every table the schema declares (the migration test keeps them equal)."""
    tables = ", ".join(sorted(metadata.tables))
    engine = make_engine(url, pool_size=1)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
