"""Consul registration against a fake agent (no Consul agent runs here): a local
HTTP server that accepts only what the agent API accepts and records it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from post_management.adapters.consul import (
    ConsulAgent,
    Registrar,
    ServiceRegistration,
    advertised_address,
    agent_url,
)
from tests.support.process import ServiceProcess

DURATION_KEYS = ("Interval", "Timeout", "DeregisterCriticalServiceAfter")


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    grpc_serving: bool | None = None  # the registered check's answer at that moment


@dataclass
class FakeAgent:
    """Answers PUT /v1/agent/service/register and .../deregister/{id} like the agent."""

    failures_before_success: int = 0
    token: str | None = None
    probe_on_deregister: bool = False
    calls: list[Call] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    called: threading.Event = field(default_factory=threading.Event)

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> int:
        body = json.loads(raw) if raw else None
        call = Call(method, path, headers, body, time.monotonic())
        self.calls.append(call)
        self.called.set()
        if self.token is not None and headers.get("X-Consul-Token") != self.token:
            return 403
        if method != "PUT":
            return 405
        if path == "/v1/agent/service/register":
            if self.failures_before_success > 0:
                self.failures_before_success -= 1
                return 500
            if not _valid_registration(body):
                return 400
            self.services[body["ID"]] = body
            return 200
        prefix = "/v1/agent/service/deregister/"
        if path.startswith(prefix):
            service_id = path.removeprefix(prefix)
            if service_id not in self.services:
                return 404
            if self.probe_on_deregister:
                call.grpc_serving = _grpc_serving(self.services[service_id]["Check"]["GRPC"])
            del self.services[service_id]
            return 200
        return 404

    def requests(self, path_prefix: str) -> list[Call]:
        return [c for c in self.calls if c.path.startswith(path_prefix)]


def _valid_registration(body: Any) -> bool:
    """The agent API's field names and types (Consul's AgentServiceRegistration)."""
    if not isinstance(body, dict):
        return False
    check = body.get("Check")
    return (
        isinstance(body.get("ID"), str)
        and isinstance(body.get("Name"), str)
        and isinstance(body.get("Address"), str)
        and isinstance(body.get("Port"), int)
        and isinstance(check, dict)
        and isinstance(check.get("GRPC"), str)
        and check["GRPC"] == f"{body['Address']}:{body['Port']}"
        and all(_is_duration(check.get(key)) for key in DURATION_KEYS)
    )


def _is_duration(value: object) -> bool:
    return isinstance(value, str) and value[-1:] in ("s", "m", "h") and value[:-1].isdigit()


def _grpc_serving(target: str) -> bool:
    """What the agent's gRPC check does: grpc.health.v1 Check on the address."""
    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def agent() -> Iterator[tuple[FakeAgent, str]]:
    fake = FakeAgent()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self._answer()

        def do_GET(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status = fake.handle(self.command, self.path, dict(self.headers.items()), raw)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_agent_address_forms() -> None:
    assert agent_url("127.0.0.1:8500") == "http://127.0.0.1:8500"
    assert agent_url("https://consul.local:8501/") == "https://consul.local:8501"
    assert advertised_address("0.0.0.0", "10.1.2.3") == "10.1.2.3"
    assert advertised_address("127.0.0.1", None) == "127.0.0.1"
    assert advertised_address("0.0.0.0", None) not in ("", "0.0.0.0")


def test_registers_with_a_grpc_check_and_token_then_deregisters(
    agent: tuple[FakeAgent, str],
) -> None:
    fake, address = agent
    fake.token = "secret-token"
    service = ServiceRegistration("post-management", "10.0.0.7", 50051)
    registrar = Registrar(ConsulAgent(address, "secret-token"), service)

    async def scenario() -> None:
        registrar.start()
        await asyncio.wait_for(registrar.registered.wait(), 5)
        assert list(fake.services) == [service.service_id]
        await registrar.stop()
        await registrar.stop()  # idempotent: one deregistration

    asyncio.run(scenario())
    (register,) = fake.requests("/v1/agent/service/register")
    assert register.headers["X-Consul-Token"] == "secret-token"
    assert register.headers["Content-Type"] == "application/json"
    assert register.body["Name"] == "post-management"
    assert register.body["Check"]["GRPC"] == "10.0.0.7:50051"
    assert register.body["Check"]["DeregisterCriticalServiceAfter"] == "1m"
    (deregister,) = fake.requests("/v1/agent/service/deregister/")
    assert deregister.path == f"/v1/agent/service/deregister/{service.service_id}"
    assert deregister.headers["X-Consul-Token"] == "secret-token"
    assert fake.services == {}


def test_registration_retries_until_the_agent_accepts(agent: tuple[FakeAgent, str]) -> None:
    fake, address = agent
    fake.failures_before_success = 2
    service = ServiceRegistration("post-management", "127.0.0.1", 1234)
    registrar = Registrar(ConsulAgent(address), service, retry_initial=0.05)

    async def scenario() -> None:
        registrar.start()
        await asyncio.wait_for(registrar.registered.wait(), 5)
        await registrar.stop()

    asyncio.run(scenario())
    assert len(fake.requests("/v1/agent/service/register")) == 3
    assert "X-Consul-Token" not in fake.calls[0].headers
    assert len(fake.requests("/v1/agent/service/deregister/")) == 1


def test_stop_before_the_agent_answers_does_not_wait_for_retries(
    agent: tuple[FakeAgent, str],
) -> None:
    fake, address = agent
    fake.failures_before_success = 1000
    registrar = Registrar(
        ConsulAgent(address), ServiceRegistration("pm", "127.0.0.1", 1), retry_initial=30
    )

    async def scenario() -> None:
        registrar.start()
        assert await asyncio.to_thread(fake.called.wait, 5)
        await asyncio.wait_for(registrar.stop(), 5)

    asyncio.run(scenario())
    assert fake.requests("/v1/agent/service/deregister/") == []


def test_serve_registers_and_deregisters_before_it_stops_serving(
    agent: tuple[FakeAgent, str], machine_database: str, tmp_path: Path
) -> None:
    fake, address = agent
    fake.token = "process-token"
    fake.probe_on_deregister = True
    service = ServiceProcess(
        {
            "DATABASE_URL": machine_database,
            "X_MODE": "emulator",
            "CONSUL_HTTP_ADDR": f"http://{address}",
            "CONSUL_HTTP_TOKEN": "process-token",
            "CONSUL_SERVICE_NAME": "posts-under-test",
            "DISPATCHER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "SHUTDOWN_GRACE_SECONDS": "5",
        },
        tmp_path,
        args=("--no-envoy",),
    )
    try:
        service.wait_ready()
        deadline = time.monotonic() + 10
        while not fake.services and time.monotonic() < deadline:
            time.sleep(0.05)
        (registered,) = fake.services.values()
        assert registered["Name"] == "posts-under-test"
        assert registered["Port"] == service.grpc_port
        assert registered["Check"]["GRPC"] == service.address
        assert _grpc_serving(registered["Check"]["GRPC"])  # what the agent will see
        assert service.terminate(timeout=30) == 0
    finally:
        service.kill()
    (deregister,) = fake.requests("/v1/agent/service/deregister/")
    assert deregister.path.endswith(registered["ID"])
    assert deregister.grpc_serving is True  # deregistered first, then drained
    assert fake.services == {}
