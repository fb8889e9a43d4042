"""Public probes cannot starve authenticated calls, nor the reverse: GetReadiness
answers from the health monitor's cached result (no database ping per call), and
RPC handlers run on their own bounded pool, so readiness and health keep
answering while every request thread is busy."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from xmp.posts.v1 import post_service_pb2, post_service_pb2_grpc
from xmp.posts.v1 import service_info_service_pb2 as info_pb2
from xmp.posts.v1 import service_info_service_pb2_grpc as info_grpc

from post_management import bootstrap
from post_management.domain.auth import Role
from post_management.entrypoints.grpc.info_servicer import ComponentCheck
from post_management.entrypoints.grpc.server import GrpcServer
from post_management.services.posts import media
from tests.support.harness import auth, settings_for

REQUEST_THREADS = 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000


class ProbedServer:
    """The service's server with its readiness checks counted."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.container = bootstrap.build(
            settings_for(
                database_url,
                data_dir,
                dispatcher_enabled=False,
                grpc_request_threads=REQUEST_THREADS,
            )
        )
        self.checks = 0
        checks = self.container.services.readiness

        def counted() -> list[ComponentCheck]:
            self.checks += 1
            return checks()

        self.container.services.readiness = counted
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server: GrpcServer = self._run(self._start())
        self.address = f"127.0.0.1:{self.server.port}"

    async def _start(self) -> GrpcServer:
        server = GrpcServer(self.container.services, "127.0.0.1", 0)
        await server.start()
        return server

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def refresh(self, timeout: float) -> None:
        future = asyncio.run_coroutine_threadsafe(self.server.refresh_health(), self._loop)
        future.result(timeout=timeout)

    def stop(self) -> None:
        self._run(self.server.stop(1.0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        asyncio.run(self.container.close())


@pytest.fixture(scope="module")
def probed(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProbedServer]:
    server = ProbedServer(machine_database, tmp_path_factory.mktemp("data"))
    yield server
    server.stop()


def test_readiness_is_served_from_the_cached_check(probed: ProbedServer) -> None:
    with grpc.insecure_channel(probed.address) as channel:
        info = info_grpc.ServiceInfoServiceStub(channel)
        before = probed.checks
        for _ in range(200):
            answer = info.GetReadiness(info_pb2.GetReadinessRequest(), timeout=5)
            assert answer.ready
            assert {c.name for c in answer.components} >= {"database"}
    # At most the monitor's own checks (every 5 s) ran meanwhile, not one per call.
    assert probed.checks - before <= 2


def test_probes_answer_while_every_request_thread_is_busy(
    probed: ProbedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    threads: list[str] = []
    # UploadMedia hashes the file on a request thread (asyncio.to_thread).
    original: Callable[[bytes], str] = media._sha256

    def stuck(data: bytes) -> str:
        threads.append(threading.current_thread().name)
        release.wait(30)
        return original(data)

    monkeypatch.setattr(media, "_sha256", stuck)
    token = probed.container.tokens.mint("alice", Role.USER, timedelta(minutes=5))
    calls = REQUEST_THREADS + 4
    try:
        with (
            grpc.insecure_channel(probed.address) as channel,
            ThreadPoolExecutor(calls) as callers,
        ):
            stub = post_service_pb2_grpc.PostServiceStub(channel)
            pending = [
                callers.submit(
                    _code,
                    lambda: stub.UploadMedia(
                        post_service_pb2.UploadMediaRequest(
                            user_id="alice", mime_type="image/png", data=PNG
                        ),
                        metadata=auth(token),
                        timeout=60,
                    ),
                )
                for _ in range(calls)
            ]
            _wait_for(lambda: len(threads) >= REQUEST_THREADS)
            # Every request thread is held; the probes still answer at once.
            info = info_grpc.ServiceInfoServiceStub(channel)
            assert info.GetReadiness(info_pb2.GetReadinessRequest(), timeout=2).ready
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
            assert status == health_pb2.HealthCheckResponse.SERVING
            # The monitor's own check does not wait for a request thread either.
            probed.refresh(timeout=5)
            assert len(threads) == REQUEST_THREADS  # the pool is bounded
            release.set()
            codes = [future.result(timeout=60) for future in pending]
    finally:
        release.set()
    assert codes == [grpc.StatusCode.OK] * calls
    # The handlers ran on the request pool, not on the loop's shared default threads.
    assert {name.split("_")[0] for name in threads} == {"rpc"}


def _code(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        failed: Any = error
        return failed.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError("the calls never reached the server's handlers")
