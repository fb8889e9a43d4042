"""Migrations produce exactly the schema the code declares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from post_management.adapters.db.engine import is_current, make_engine, migrate
from post_management.adapters.db.schema import metadata
from tests.conftest import MACHINE_PG, _fresh_database


@pytest.fixture
def empty_database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


def test_migrated_schema_equals_the_models(machine_database: str) -> None:
    engine = make_engine(machine_database)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_migrate_is_idempotent_and_current(machine_database: str) -> None:
    engine = make_engine(machine_database)
    migrate(engine)
    migrate(engine)
    assert is_current(engine)
    engine.dispose()


def test_claim_index_is_partial_and_matches_the_dispatch_order(machine_database: str) -> None:
    engine = make_engine(machine_database)
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("posts")}
    claim = indexes["ix_posts_due_scheduled"]
    assert claim["column_names"] == ["priority", "due_at"]
    with engine.connect() as connection:
        definition = connection.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_posts_due_scheduled'")
        ).scalar_one()
    assert "WHERE" in definition and "SCHEDULED" in definition
    engine.dispose()


def test_a_database_that_is_behind_is_not_current(empty_database: str) -> None:
    engine = make_engine(empty_database)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
    assert not is_current(engine)
    engine.dispose()
