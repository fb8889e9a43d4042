"""Envoy's edge limits, observed through a real Envoy rendered from the production
template in front of a real gRPC server: the client address it believes, HTTP/2
stream and connection limits, the overload manager, the webhook token bucket and the
larger body limit of the upload route (docs/security.md)."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
import requests
from xmp.posts.v1 import analytics_service_pb2, analytics_service_pb2_grpc
from xmp.posts.v1 import service_info_service_pb2 as pb
from xmp.posts.v1 import service_info_service_pb2_grpc as pb_grpc

from post_management.entrypoints.envoy_config import EdgeLimits
from post_management.entrypoints.envoy_process import EnvoyProcess
from tests.fixtures.envoy import DESCRIPTOR_PATH, running_envoy

TIMEOUT_S = 10
KIB = 1024
NO_PROXY = [("grpc.enable_http_proxy", 0)]
TIGHT = EdgeLimits(
    max_request_bytes=64 * KIB,
    max_upload_bytes=256 * KIB,
    xff_num_trusted_hops=1,
    max_connections=3,
    max_concurrent_streams=7,
    webhook_burst=3,
    webhook_per_second=1,
)


class Health(pb_grpc.ServiceInfoServiceServicer):
    def GetHealth(self, request: pb.GetHealthRequest, context: Any) -> pb.HealthStatus:
        return pb.HealthStatus(status="SERVING")


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    """Serves only GetHealth: other services answer UNIMPLEMENTED (501 over REST),
    which shows a call went through Envoy."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_ServiceInfoServiceServicer_to_server(Health(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=1)


@pytest.fixture(scope="module")
def default_envoy(upstream: int) -> Iterator[EnvoyProcess]:
    with running_envoy(grpc_port=upstream, descriptor_path=DESCRIPTOR_PATH) as envoy:
        yield envoy


@pytest.fixture(scope="module")
def tight_envoy(upstream: int) -> Iterator[EnvoyProcess]:
    with running_envoy(grpc_port=upstream, descriptor_path=DESCRIPTOR_PATH, edge=TIGHT) as envoy:
        yield envoy


def get(envoy: EnvoyProcess, path: str, **kwargs: Any) -> requests.Response:
    # A one-off session: its connection closes, so the connection limit is not held.
    with requests.Session() as session:
        session.trust_env = False
        return session.get(envoy.base_url + path, timeout=TIMEOUT_S, **kwargs)


def access_log_client(envoy: EnvoyProcess, marker: str) -> str:
    """The client address Envoy logged for the request whose path carries marker."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        for line in envoy.log().splitlines():
            if line.startswith("{") and marker in line:
                return str(json.loads(line)["client"])
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {marker}:\n{envoy.log()}")


def test_a_clients_own_forwarded_for_is_not_believed(default_envoy: EnvoyProcess) -> None:
    response = get(
        default_envoy, "/health?marker-direct", headers={"x-forwarded-for": "203.0.113.7"}
    )
    assert response.status_code in (200, 400)  # the unknown parameter is refused; logged
    assert access_log_client(default_envoy, "marker-direct") == "127.0.0.1"


def test_a_trusted_proxys_forwarded_for_names_the_client(tight_envoy: EnvoyProcess) -> None:
    get(tight_envoy, "/health?marker-proxied", headers={"x-forwarded-for": "203.0.113.7"})
    assert access_log_client(tight_envoy, "marker-proxied") == "203.0.113.7"


def http2_settings(envoy: EnvoyProcess) -> dict[int, int]:
    """The SETTINGS Envoy sends a prior-knowledge HTTP/2 client (RFC 9113, 6.5)."""
    with socket.create_connection(("127.0.0.1", envoy.http_port), timeout=TIMEOUT_S) as conn:
        conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        data = b""
        while True:
            while len(data) < 9:
                chunk = conn.recv(65536)
                assert chunk, "Envoy closed the connection before its SETTINGS"
                data += chunk
            length = int.from_bytes(data[:3], "big")
            kind, flags = data[3], data[4]
            while len(data) < 9 + length:
                data += conn.recv(65536)
            payload, data = data[9 : 9 + length], data[9 + length :]
            if kind == 4 and not flags & 1:  # SETTINGS, not an ACK
                pairs = (struct.unpack(">HI", payload[i : i + 6]) for i in range(0, length, 6))
                return dict(pairs)


def test_http2_streams_per_connection_are_limited(
    default_envoy: EnvoyProcess, tight_envoy: EnvoyProcess
) -> None:
    max_concurrent_streams, initial_window_size = 0x3, 0x4
    settings = http2_settings(default_envoy)
    assert settings[max_concurrent_streams] == EdgeLimits().max_concurrent_streams == 100
    assert settings[initial_window_size] == 65536
    assert http2_settings(tight_envoy)[max_concurrent_streams] == 7


def wait_for_active_connections(envoy: EnvoyProcess, count: int) -> None:
    """Until Envoy has accepted and counted this many client connections."""
    stat = f"listener.127.0.0.1_{envoy.http_port}.downstream_cx_active"
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        stats = requests.get(f"{envoy.admin_url}/stats?filter=^{stat}$", timeout=TIMEOUT_S)
        if f"{stat}: {count}" in stats.text:
            return
        assert time.monotonic() < deadline, stats.text
        time.sleep(0.05)


def closed_by_peer(conn: socket.socket, wait_s: float) -> bool:
    conn.settimeout(wait_s)
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_connections_beyond_the_limit_are_refused(tight_envoy: EnvoyProcess) -> None:
    address = ("127.0.0.1", tight_envoy.http_port)
    # Earlier tests' connections must be gone from Envoy's count before the limit is
    # filled, or one of ours is the one refused.
    wait_for_active_connections(tight_envoy, 0)
    held = [socket.create_connection(address, timeout=TIMEOUT_S) for _ in range(3)]
    try:
        wait_for_active_connections(tight_envoy, 3)
        with socket.create_connection(address, timeout=TIMEOUT_S) as extra:
            assert closed_by_peer(extra, wait_s=5)
        assert not closed_by_peer(held[0], wait_s=0.5)  # the ones within the limit stay open
        # The admin port is not counted: probes and the drain call still get in.
        ready = requests.get(f"{tight_envoy.admin_url}/ready", timeout=TIMEOUT_S)
        assert ready.status_code == 200
    finally:
        for conn in held:
            conn.close()
    # Once Envoy has counted the closes, it takes connections again. (A request sent
    # before that is still refused: a loaded machine showed it as a reset.)
    wait_for_active_connections(tight_envoy, 0)
    assert get(tight_envoy, "/health").status_code == 200


def test_the_overload_manager_watches_heap_and_connections(default_envoy: EnvoyProcess) -> None:
    stats = requests.get(f"{default_envoy.admin_url}/stats?filter=overload", timeout=TIMEOUT_S)
    names = {line.split(":")[0] for line in stats.text.splitlines()}
    for action in ("shrink_heap", "stop_accepting_requests", "disable_http_keepalive"):
        assert f"overload.envoy.overload_actions.{action}.active" in names, stats.text
    assert "overload.envoy.resource_monitors.fixed_heap.pressure" in names, stats.text


def test_webhook_routes_share_a_token_bucket(tight_envoy: EnvoyProcess) -> None:
    statuses = [get(tight_envoy, "/v1/webhooks/x?crc_token=abc").status_code for _ in range(5)]
    # The burst reaches the server (which lacks AnalyticsService: 501); within the
    # same second at most one token is added back.
    assert statuses[:3] == [501, 501, 501]
    assert statuses.count(429) >= 1
    refused = get(tight_envoy, "/v1/webhooks/x?crc_token=abc")
    if refused.status_code == 429:
        assert refused.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    # The same methods over gRPC draw on the same bucket: RESOURCE_EXHAUSTED.
    with grpc.insecure_channel(tight_envoy.grpc_target, options=NO_PROXY) as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        codes = []
        for _ in range(3):
            try:
                stub.VerifyXWebhook(
                    analytics_service_pb2.VerifyXWebhookRequest(crc_token="abc"),
                    timeout=TIMEOUT_S,
                )
            except grpc.RpcError as error:
                codes.append(error.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    # Other routes have no bucket.
    assert get(tight_envoy, "/health").status_code == 200


def post(envoy: EnvoyProcess, path: str, size: int) -> int:
    body = json.dumps({"userId": "u", "data": "A" * size})
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(
            envoy.base_url + path,
            data=body,
            headers={"content-type": "application/json"},
            timeout=TIMEOUT_S,
        )
    return response.status_code


def test_only_the_upload_route_takes_bodies_above_the_request_limit(
    tight_envoy: EnvoyProcess,
) -> None:
    assert post(tight_envoy, "/api/posts/p1/schedule", 100 * KIB) == 413
    assert post(tight_envoy, "/v1/media", 100 * KIB) == 501  # reached the server
    assert post(tight_envoy, "/v1/media", 300 * KIB) == 413
