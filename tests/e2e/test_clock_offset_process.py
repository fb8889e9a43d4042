"""A service process started with the test-only clock offset runs on a shifted clock,
and the database's clock stays where it is (the knob for clock-skew drills)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import text
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    account_service_pb2_grpc,
    post_pb2,
    post_service_pb2,
    post_service_pb2_grpc,
)

from post_management.adapters.clock import TEST_CLOCK_OFFSET_ENV
from post_management.adapters.db.engine import make_engine
from post_management.domain.auth import Role
from post_management.entrypoints.grpc.tokens import TokenCodec
from tests.conftest import MACHINE_PG, _fresh_database
from tests.support.process import running_service

OFFSET_S = -3600  # far beyond any drift between this host and its PostgreSQL
TOLERANCE = timedelta(seconds=30)
JWT_SECRET = "clock-offset-test-secret-" + "x" * 20


@pytest.fixture
def database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


def test_the_offset_shifts_the_service_clock_and_not_the_database_clock(
    database: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database,
        "LOG_LEVEL": "WARNING",
        "DISPATCHER_ENABLED": "false",
        "JWT_SECRET": JWT_SECRET,
        "X_MODE": "emulator",
        TEST_CLOCK_OFFSET_ENV: str(OFFSET_S),
    }
    with running_service(env, tmp_path) as service:
        codec = TokenCodec(JWT_SECRET, issuer="post-management", audience="post-management")
        metadata = (("authorization", f"Bearer {codec.mint('local-user', Role.USER)}"),)
        with grpc.insecure_channel(service.address) as channel:
            account = account_service_pb2_grpc.AccountServiceStub(channel).CreateAccount(
                account_service_pb2.CreateAccountRequest(
                    account=account_pb2.Account(user_id="local-user", handle="skew", x_user_id="7")
                ),
                metadata=metadata,
                timeout=10,
            )
            created = post_service_pb2_grpc.PostServiceStub(channel).CreatePost(
                post_service_pb2.CreatePostRequest(
                    post=post_pb2.Post(user_id="local-user", account_id=account.id, text="when?")
                ),
                metadata=metadata,
                timeout=10,
            )
        warned = [line for line in service.lines if "test-only clock offset" in line]
    engine = make_engine(database)
    with engine.connect() as connection:
        database_now = connection.execute(text("SELECT now()")).scalar_one()
    engine.dispose()
    service_time = created.create_time.ToDatetime(UTC)
    expected = database_now + timedelta(seconds=OFFSET_S)
    assert abs(service_time - expected) < TOLERANCE, (service_time, database_now)
    assert abs(database_now - datetime.now(UTC)) < TOLERANCE  # PostgreSQL's clock is real
    assert warned, "the process did not say that its clock is shifted"
