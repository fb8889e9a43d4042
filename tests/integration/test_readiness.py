"""Readiness follows the database: NOT_SERVING and UNAVAILABLE while it refuses us."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from xmp.posts.v1 import service_info_service_pb2 as info_pb2
from xmp.posts.v1 import service_info_service_pb2_grpc as info_grpc

from tests.conftest import MACHINE_PG, _fresh_database
from tests.integration.grpc_fixtures import error_details
from tests.support.harness import RunningServer, settings_for


@pytest.fixture
def database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


def _rename(old: str, new: str) -> None:
    """Take the database away (or give it back) under the server's feet."""
    admin = create_engine(
        make_url(MACHINE_PG).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": old},
        )
        connection.execute(text(f'ALTER DATABASE "{old}" RENAME TO "{new}"'))
    admin.dispose()


def _refresh(server: RunningServer) -> None:
    server._call(server.server.refresh_health())  # type: ignore[arg-type]


def test_ready_follows_the_database(database: str, tmp_path: Path) -> None:
    name = str(make_url(database).database)
    away = name + "_away"
    server = RunningServer(settings_for(database, tmp_path))
    gone = False
    try:
        with server.channel() as channel:
            info = info_grpc.ServiceInfoServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            assert info.GetReadiness(info_pb2.GetReadinessRequest()).ready

            _rename(name, away)
            gone = True
            # Readiness answers from the health monitor's last check: run one now.
            _refresh(server)
            with pytest.raises(grpc.RpcError) as caught:
                info.GetReadiness(info_pb2.GetReadinessRequest(), timeout=15)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_details(caught.value)[0] == "NOT_READY"
            status = health.Check(health_pb2.HealthCheckRequest()).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING

            _rename(away, name)
            gone = False
            _refresh(server)
            assert info.GetReadiness(info_pb2.GetReadinessRequest(), timeout=15).ready
            status = health.Check(health_pb2.HealthCheckRequest()).status
            assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        if gone:
            _rename(away, name)
        server.stop()
