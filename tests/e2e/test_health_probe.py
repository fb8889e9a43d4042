"""`post-management health-probe` against the real server process: every exit code."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import MACHINE_PG, _fresh_database
from tests.deploy.test_helm_chart import REPO_ROOT, only, render, with_required
from tests.support.ports import free_port
from tests.support.process import CLI, ServiceProcess

# The server re-checks its components this often (entrypoints/grpc/server.py).
HEALTH_FLIP_DEADLINE_S = 20


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    yield from _fresh_database(MACHINE_PG)


@pytest.fixture(scope="module")
def service(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        {
            "DATABASE_URL": database,
            "X_MODE": "emulator",
            "DISPATCHER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "SHUTDOWN_GRACE_SECONDS": "5",
        },
        Path(tmp_path_factory.mktemp("probe")),
        args=("--no-envoy",),
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.terminate()


def probe(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "health-probe", *flags], capture_output=True, text=True, timeout=30)


def test_serving_exits_0(service: ServiceProcess) -> None:
    result = probe(f"-addr={service.address}")
    assert (result.returncode, result.stderr.strip()) == (0, "status: SERVING")
    named = probe("-addr", service.address, "-service", "xmp.posts.v1.PostService", "-v")
    assert named.returncode == 0, named.stderr
    assert "time elapsed" in named.stderr


def test_bad_arguments_exit_1(service: ServiceProcess) -> None:
    result = probe(f"-addr={service.address}", "-rpc-timeout=0s")
    assert result.returncode == 1
    assert "-rpc-timeout must be greater than zero" in result.stderr
    tls = probe(f"-addr={service.address}", "-tls")
    assert tls.returncode == 1
    assert "plaintext gRPC only" in tls.stderr


def test_nothing_listening_exits_2() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = probe(f"-addr={address}", "-connect-timeout=300ms")
    assert result.returncode == 2
    assert f'timeout: failed to connect service "{address}" within 300ms' in result.stderr
    assert time.monotonic() - started < 10


def test_a_failing_health_rpc_exits_3(service: ServiceProcess) -> None:
    # The health service answers NOT_FOUND for a name it does not know.
    result = probe(f"-addr={service.address}", "-service=no.such.Service")
    assert result.returncode == 3
    assert "error: health rpc failed" in result.stderr and "NOT_FOUND" in result.stderr


def _rename(old: str, new: str) -> None:
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


def _until(address: str, code: int) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + HEALTH_FLIP_DEADLINE_S
    while True:
        result = probe(f"-addr={address}")
        if result.returncode == code or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_not_serving_exits_4_while_the_database_is_away(
    service: ServiceProcess, database: str
) -> None:
    name = str(make_url(database).database)
    _rename(name, name + "_away")
    try:
        result = _until(service.address, 4)
        assert result.returncode == 4, result.stderr
        assert 'service unhealthy (responded with "NOT_SERVING")' in result.stderr
    finally:
        _rename(name + "_away", name)
    assert _until(service.address, 0).returncode == 0


def test_the_charts_exec_probe_runs_against_the_server(service: ServiceProcess) -> None:
    docs = render(
        with_required({"app": {"probes": {"mode": "exec"}}, "ports": {"grpc": service.grpc_port}})
    )
    app = next(
        c
        for c in only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
        if c["name"] == "app"
    )
    for name in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = app[name]["exec"]["command"]
        assert command[:2] == ["post-management", "health-probe"]
        result = subprocess.run(
            [CLI, *command[1:]],
            capture_output=True,
            text=True,
            timeout=app[name]["timeoutSeconds"] + 5,
        )
        assert result.returncode == 0, (name, result.stderr)


def test_the_dockerfile_healthcheck_runs_against_the_server(service: ServiceProcess) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    instruction = dockerfile.split("\nHEALTHCHECK ", 1)[1].split("\n\n", 1)[0]
    argv = json.loads(instruction.split(" CMD ", 1)[1].split("\n", 1)[0])
    assert argv[:2] == ["sh", "-c"]
    env = {"PATH": f"{Path(CLI).parent}:/usr/bin:/bin", "GRPC_PORT": str(service.grpc_port)}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "status: SERVING" in result.stderr


def test_the_compose_healthcheck_runs_against_the_server(service: ServiceProcess) -> None:
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    check = compose["services"]["post-management"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "post-management"]
    port = compose["services"]["post-management"]["environment"]["GRPC_PORT"]
    argv = [arg.replace(f"127.0.0.1:{port}", service.address) for arg in check[2:]]
    result = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
