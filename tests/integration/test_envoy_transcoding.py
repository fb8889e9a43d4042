"""REST and plain gRPC through a real Envoy, rendered from the production template,
in front of a real grpc.aio server that implements ServiceInfoService with canned
answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from xmp.posts.v1 import service_info_service_pb2 as pb
from xmp.posts.v1 import service_info_service_pb2_grpc as pb_grpc

from post_management.entrypoints.envoy_config import MAX_REQUEST_BYTES
from tests.fixtures.envoy import DESCRIPTOR_PATH, EnvoyFactory, EnvoyProcess
from tests.support.ports import free_port

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
GRPC_TIMEOUT_S = 10.0
# Straight to 127.0.0.1 even where an http_proxy is set in the environment.
NO_PROXY = [("grpc.enable_http_proxy", 0)]


class CannedServiceInfo(pb_grpc.ServiceInfoServiceServicer):
    """GetHealth and GetInfo answer; GetReadiness fails with NOT_FOUND and an ErrorInfo."""

    def __init__(self) -> None:
        self.health_calls = 0
        # GetHealth answers UNAVAILABLE this many times first (to see Envoy retry GETs).
        self.unavailable_budget = 0

    async def GetHealth(
        self,
        request: pb.GetHealthRequest,
        context: grpc.aio.ServicerContext[pb.GetHealthRequest, pb.HealthStatus],
    ) -> pb.HealthStatus:
        self.health_calls += 1
        if self.unavailable_budget > 0:
            self.unavailable_budget -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return pb.HealthStatus(status="SERVING")

    async def GetReadiness(
        self,
        request: pb.GetReadinessRequest,
        context: grpc.aio.ServicerContext[pb.GetReadinessRequest, pb.ReadinessStatus],
    ) -> pb.ReadinessStatus:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.ErrorInfo(
                reason="COMPONENT_NOT_FOUND",
                domain="posts.xmp",
                metadata={"component": "database"},
            )
        )
        status = status_pb2.Status(
            code=code_pb2.NOT_FOUND, message="no such component", details=[detail]
        )
        await context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("unreachable")

    async def GetInfo(
        self,
        request: pb.GetInfoRequest,
        context: grpc.aio.ServicerContext[pb.GetInfoRequest, pb.ServiceInfo],
    ) -> pb.ServiceInfo:
        return pb.ServiceInfo(
            name="post-management",
            version="",  # a zero value: printed anyway (always_print_primitive_fields)
            git_commit="abc123",
            start_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
            components={"database": "embedded"},
        )


@pytest.fixture(scope="module")
async def service_info() -> AsyncIterator[tuple[CannedServiceInfo, int]]:
    server = grpc.aio.server()
    servicer = CannedServiceInfo()
    pb_grpc.add_ServiceInfoServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, port
    finally:
        await server.stop(grace=1)


@pytest.fixture(scope="module")
def envoy(
    envoy_factory: EnvoyFactory,
    service_info: tuple[CannedServiceInfo, int],
) -> EnvoyProcess:
    return envoy_factory(grpc_port=service_info[1], descriptor_path=DESCRIPTOR_PATH)


async def http(
    envoy: EnvoyProcess, method: str, path: str, **kwargs: object
) -> tuple[int, str, object]:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.request(method, envoy.base_url + path, **kwargs) as resp,  # type: ignore[arg-type]
    ):
        text = await resp.text()
        body = json.loads(text) if text else None
        return resp.status, resp.headers.get("content-type", ""), body


async def test_health_is_json(envoy: EnvoyProcess) -> None:
    status, content_type, body = await http(envoy, "GET", "/health")
    assert status == 200
    assert content_type.startswith("application/json")
    assert body == {"status": "SERVING"}


async def test_output_is_camel_case_with_zero_values(envoy: EnvoyProcess) -> None:
    status, _, body = await http(envoy, "GET", "/info")
    assert status == 200
    assert isinstance(body, dict)
    assert body["gitCommit"] == "abc123"
    assert body["startTime"] == "2023-11-14T22:13:20Z"
    assert "git_commit" not in body
    assert body["version"] == ""
    assert body["components"] == {"database": "embedded"}


async def test_grpc_error_maps_to_http_status_with_json_details(envoy: EnvoyProcess) -> None:
    status, content_type, body = await http(envoy, "GET", "/ready")
    assert status == 404
    assert content_type.startswith("application/json")
    assert isinstance(body, dict)
    assert body["code"] == code_pb2.NOT_FOUND
    assert body["message"] == "no such component"
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "COMPONENT_NOT_FOUND",
            "domain": "posts.xmp",
            "metadata": {"component": "database"},
        }
    ]


async def test_unknown_path_is_404_json_not_503(envoy: EnvoyProcess) -> None:
    status, content_type, body = await http(envoy, "GET", "/no/such/path")
    assert status == 404
    assert content_type.startswith("application/json")
    assert isinstance(body, dict)
    assert body["code"] == code_pb2.NOT_FOUND
    assert body["message"]


async def test_known_path_with_wrong_method_is_404(envoy: EnvoyProcess) -> None:
    status, _, body = await http(envoy, "DELETE", "/health")
    assert status == 404
    assert isinstance(body, dict)


async def test_unknown_query_parameter_is_400(envoy: EnvoyProcess) -> None:
    status, content_type, body = await http(envoy, "GET", "/health?bogus=1")
    assert status == 400
    assert content_type.startswith("application/json")
    assert isinstance(body, dict)
    assert body["code"] == code_pb2.INVALID_ARGUMENT


async def test_oversized_body_is_413(envoy: EnvoyProcess) -> None:
    payload = json.dumps({"userId": "u", "timezone": "x" * (MAX_REQUEST_BYTES + 1)})
    status, content_type, body = await http(
        envoy,
        "POST",
        "/api/posts/p1/schedule",
        data=payload,
        headers={"content-type": "application/json"},
    )
    assert status == 413
    assert content_type.startswith("application/json")
    assert isinstance(body, dict)
    assert body["code"] == code_pb2.RESOURCE_EXHAUSTED


async def test_unimplemented_rest_method_maps_to_501(envoy: EnvoyProcess) -> None:
    # A known REST path whose service the upstream does not serve: gRPC UNIMPLEMENTED.
    status, _, body = await http(envoy, "GET", "/api/posts/p1/metrics")
    assert status == 501
    assert isinstance(body, dict)
    assert body["code"] == code_pb2.UNIMPLEMENTED


async def test_get_is_retried_on_unavailable(
    envoy: EnvoyProcess, service_info: tuple[CannedServiceInfo, int]
) -> None:
    servicer = service_info[0]
    servicer.unavailable_budget = 1
    calls_before = servicer.health_calls
    status, _, body = await http(envoy, "GET", "/health")
    assert status == 200
    assert body == {"status": "SERVING"}
    assert servicer.health_calls - calls_before == 2


async def test_plain_grpc_passes_through(envoy: EnvoyProcess) -> None:
    async with grpc.aio.insecure_channel(envoy.grpc_target, options=NO_PROXY) as channel:
        stub = pb_grpc.ServiceInfoServiceStub(channel)
        info = await stub.GetInfo(pb.GetInfoRequest(), timeout=GRPC_TIMEOUT_S)
        assert info.git_commit == "abc123"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetReadiness(pb.GetReadinessRequest(), timeout=GRPC_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info_detail = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info_detail)
    assert info_detail.reason == "COMPONENT_NOT_FOUND"


async def test_upstream_down_is_503_json(envoy_factory: EnvoyFactory) -> None:
    # Nothing listens on the upstream port: a local 503 reply, still JSON.
    lonely = envoy_factory(grpc_port=free_port())
    status, content_type, body = await http(lonely, "POST", "/api/posts/p1/schedule", json={})
    assert status == 503
    assert content_type.startswith("application/json")
    assert isinstance(body, dict)
    assert body["code"] == code_pb2.UNAVAILABLE
    # A plain gRPC caller gets a gRPC status, not a JSON body.
    async with grpc.aio.insecure_channel(lonely.grpc_target, options=NO_PROXY) as channel:
        stub = pb_grpc.ServiceInfoServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetInfo(pb.GetInfoRequest(), timeout=GRPC_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
