"""The real process on embedded defaults: start, use, restart, SIGTERM under load."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    account_service_pb2_grpc,
    post_pb2,
    post_service_pb2,
    post_service_pb2_grpc,
)

from tests.support.process import CLI, ServiceProcess

EMBEDDED_ENV = {"LOG_LEVEL": "WARNING", "SHUTDOWN_GRACE_SECONDS": "10"}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def service(workdir: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(dict(EMBEDDED_ENV), workdir)
    try:
        process.wait_ready()
        yield process
    finally:
        process.kill()


def _metadata(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def _new_account(channel: grpc.Channel, metadata: tuple[tuple[str, str]]) -> str:
    accounts = account_service_pb2_grpc.AccountServiceStub(channel)
    account = accounts.CreateAccount(
        account_service_pb2.CreateAccountRequest(
            account=account_pb2.Account(user_id="local-user", handle="brand", x_user_id="77")
        ),
        metadata=metadata,
    )
    return str(account.id)


def test_embedded_defaults_serve_and_survive_a_restart(
    service: ServiceProcess, workdir: Path
) -> None:
    token = service.printed_token()
    metadata = _metadata(token)
    with grpc.insecure_channel(service.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        account_id = _new_account(channel, metadata)
        posts = post_service_pb2_grpc.PostServiceStub(channel)
        created = posts.CreatePost(
            post_service_pb2.CreatePostRequest(
                post=post_pb2.Post(user_id="local-user", account_id=account_id, text="kept")
            ),
            metadata=metadata,
        )
    assert service.terminate() == 0
    assert (workdir / "var" / "secrets.json").exists()

    again = ServiceProcess(dict(EMBEDDED_ENV), workdir)
    try:
        again.wait_ready()
        # Secrets were kept too: the first run's token still verifies.
        with grpc.insecure_channel(again.address) as channel:
            posts = post_service_pb2_grpc.PostServiceStub(channel)
            fetched = posts.GetPost(
                post_service_pb2.GetPostRequest(post_id=created.id), metadata=metadata
            )
        assert fetched.text == "kept"
    finally:
        again.kill()


def test_sigterm_during_a_burst_loses_no_acknowledged_write(
    service: ServiceProcess, workdir: Path
) -> None:
    metadata = _metadata(service.printed_token())
    with grpc.insecure_channel(service.address) as channel:
        account_id = _new_account(channel, metadata)
    acknowledged: list[str] = []
    failures: list[grpc.StatusCode] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        with grpc.insecure_channel(service.address) as channel:
            posts = post_service_pb2_grpc.PostServiceStub(channel)
            for i in range(2000):
                if stop.is_set():
                    return
                try:
                    created = posts.CreatePost(
                        post_service_pb2.CreatePostRequest(
                            post=post_pb2.Post(
                                user_id="local-user", account_id=account_id, text=f"{worker}-{i}"
                            )
                        ),
                        metadata=metadata,
                        timeout=5,
                    )
                    acknowledged.append(created.id)
                except grpc.RpcError as error:
                    failures.append(error.code())
                    if error.code() == grpc.StatusCode.UNAVAILABLE:
                        return

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    assert service.terminate() == 0
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    assert len(acknowledged) > 20, "the burst never got going"
    # Only refusals after shutdown began; nothing failed half-way.
    assert set(failures) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}

    again = ServiceProcess(dict(EMBEDDED_ENV), workdir)
    try:
        again.wait_ready()
        with grpc.insecure_channel(again.address) as channel:
            posts = post_service_pb2_grpc.PostServiceStub(channel)
            stored: set[str] = set()
            token = ""
            while True:
                page = posts.ListPosts(
                    post_service_pb2.ListPostsRequest(page_size=100, page_token=token),
                    metadata=metadata,
                )
                stored |= {p.id for p in page.posts}
                token = page.next_page_token
                if not token:
                    break
        assert set(acknowledged) <= stored
    finally:
        again.kill()


def test_bad_configuration_stops_start_up_naming_the_variable(workdir: Path) -> None:
    result = subprocess.run(
        [CLI, "serve"],
        cwd=workdir,
        env={"PATH": "/usr/bin:/bin", "JWT_SECRET": "too-short", "GRPC_PORT": "http"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr and "32 characters" in result.stderr
    assert "GRPC_PORT" in result.stderr
    assert "too-short" not in result.stderr  # values are never echoed


def test_token_command_mints_a_verifiable_token(service: ServiceProcess, workdir: Path) -> None:
    result = subprocess.run(
        [CLI, "token", "--subject", "crm-service", "--role", "service"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    metadata = _metadata(result.stdout.strip())
    with grpc.insecure_channel(service.address) as channel:
        posts = post_service_pb2_grpc.PostServiceStub(channel)
        listed = posts.ListPosts(
            post_service_pb2.ListPostsRequest(user_id="anyone"), metadata=metadata
        )
    assert list(listed.posts) == []


def test_a_killed_service_leaves_neither_envoy_nor_postgres(
    service: ServiceProcess, workdir: Path
) -> None:
    started = psutil.Process(service.process.pid).children(recursive=True)
    assert any("envoy" in p.name() for p in started)
    postmaster = int((workdir / "var" / "postgres" / "postmaster.pid").read_text().split()[0])
    assert postmaster not in {p.pid for p in started}  # detached: not reached through the tree
    service.kill()
    for pid in [postmaster, *(p.pid for p in started)]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", pid


def test_a_deployment_prints_no_token_and_needs_an_x_mode(workdir: Path) -> None:
    """As the chart runs it by default: embedded database, but secrets configured.
    Only the embedded local defaults print a token; X is an explicit choice."""
    deployed = {
        **EMBEDDED_ENV,
        "JWT_SECRET": "deployment-jwt-secret-0123456789abcdef",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    refused = subprocess.run(
        [CLI, "serve", "--no-envoy"],
        cwd=workdir,
        env={**os.environ, **deployed},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "X_MODE" in refused.stderr
    assert not (workdir / "var" / "postgres").exists()  # refused before starting anything

    process = ServiceProcess({**deployed, "X_MODE": "emulator"}, workdir, args=("--no-envoy",))
    try:
        process.wait_ready()
        with grpc.insecure_channel(process.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
    finally:
        process.terminate()
    output = "\n".join(process.lines)
    assert "embedded PostgreSQL" in output
    assert "token" not in output.lower() and "eyJ" not in output
