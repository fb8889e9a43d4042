"""The edge authenticates unary calls only, so a streaming method that is not public
must be refused rather than run for anyone. The service's own server (every
interceptor) gets a streaming service of each shape added before it starts; health's
Watch and reflection, public streams, keep working."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from post_management import bootstrap
from post_management.domain.auth import Role
from post_management.entrypoints.grpc.server import GrpcServer
from tests.integration.grpc_fixtures import error_details
from tests.support.harness import auth, settings_for

SERVICE = "xmp.posts.v1.InternalStreams"
CALLS: list[str] = []


async def _numbers(request: bytes, context: Any) -> AsyncIterator[bytes]:
    CALLS.append("numbers")
    for number in range(3):
        yield bytes([number])


async def _sum(requests: AsyncIterator[bytes], context: Any) -> bytes:
    CALLS.append("sum")
    return bytes([sum([len(r) async for r in requests]) % 256])


async def _echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    CALLS.append("echo")
    async for request in requests:
        yield request


def _streams() -> grpc.GenericRpcHandler:
    identity = {"request_deserializer": None, "response_serializer": None}
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Numbers": grpc.unary_stream_rpc_method_handler(_numbers, **identity),
            "Sum": grpc.stream_unary_rpc_method_handler(_sum, **identity),
            "Echo": grpc.stream_stream_rpc_method_handler(_echo, **identity),
        },
    )


class StreamingServer:
    """The service's GrpcServer with the streaming service added, on a free port."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.container = bootstrap.build(
            settings_for(database_url, data_dir, dispatcher_enabled=False)
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self._run(self._start())

    async def _start(self) -> GrpcServer:
        server = GrpcServer(self.container.services, "127.0.0.1", 0)
        server._server.add_generic_rpc_handlers((_streams(),))
        await server.start()
        return server

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def stop(self) -> None:
        self._run(self.server.stop(1.0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        asyncio.run(self.container.close())


@pytest.fixture(scope="module")
def streaming(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StreamingServer]:
    server = StreamingServer(machine_database, tmp_path_factory.mktemp("data"))
    yield server
    server.stop()


@pytest.fixture
def channel(streaming: StreamingServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{streaming.server.port}") as channel:
        yield channel


def _calls(channel: grpc.Channel, metadata: Any) -> dict[str, Any]:
    path = f"/{SERVICE}/"
    return {
        "unary-stream": lambda: list(
            channel.unary_stream(path + "Numbers")(b"", metadata=metadata, timeout=10)
        ),
        "stream-unary": lambda: channel.stream_unary(path + "Sum")(
            iter([b"a", b"bc"]), metadata=metadata, timeout=10
        ),
        "stream-stream": lambda: list(
            channel.stream_stream(path + "Echo")(iter([b"x"]), metadata=metadata, timeout=10)
        ),
    }


@pytest.mark.parametrize("shape", ["unary-stream", "stream-unary", "stream-stream"])
@pytest.mark.parametrize("with_token", [False, True])
def test_non_public_streams_are_refused(
    streaming: StreamingServer, channel: grpc.Channel, shape: str, with_token: bool
) -> None:
    CALLS.clear()
    token = streaming.container.tokens.mint("alice", Role.ADMIN, timedelta(minutes=5))
    metadata = auth(token) if with_token else ()
    with pytest.raises(grpc.RpcError) as caught:
        _calls(channel, metadata)[shape]()
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error_details(caught.value)[0] == "STREAMING_NOT_SERVED"
    assert CALLS == []  # the method never ran


def test_public_streams_still_work(channel: grpc.Channel) -> None:
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=""), timeout=10
    )
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    names = {s.name for s in next(answers).list_services_response.service}
    assert "xmp.posts.v1.PostService" in names
