"""Registration with a Consul agent through its HTTP API.

The agent dials the standard gRPC health service of the registered address, so
a replica that drains (NOT_SERVING) or dies turns critical and drops out of
discovery; one that never deregistered is removed after
`deregister_critical_after`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceRegistration:
    name: str
    address: str
    port: int
    check_interval: str = "10s"
    check_timeout: str = "5s"
    deregister_critical_after: str = "1m"
    tags: tuple[str, ...] = ("grpc",)

    @property
    def service_id(self) -> str:
        # Stable per address and port: registering again after a crash replaces
        # the old entry instead of adding a second one.
        return f"{self.name}-{self.address}-{self.port}"

    def body(self) -> dict[str, object]:
        """The agent API's service definition (PUT /v1/agent/service/register)."""
        return {
            "ID": self.service_id,
            "Name": self.name,
            "Address": self.address,
            "Port": self.port,
            "Tags": list(self.tags),
            "Check": {
                "CheckID": f"service:{self.service_id}:grpc",
                "Name": "gRPC health",
                "GRPC": f"{self.address}:{self.port}",
                "GRPCUseTLS": False,
                "Interval": self.check_interval,
                "Timeout": self.check_timeout,
                "DeregisterCriticalServiceAfter": self.deregister_critical_after,
            },
        }


def agent_url(address: str) -> str:
    """CONSUL_HTTP_ADDR as Consul's own tools read it: host:port or a URL."""
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = "http://" + address
    return address


def advertised_address(grpc_host: str, configured: str | None) -> str:
    if configured:
        return configured
    if grpc_host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        return socket.gethostname()
    return grpc_host


class ConsulAgent:
    def __init__(self, address: str, token: str | None = None, timeout: float = 5.0) -> None:
        self._base = agent_url(address)
        self._headers = {"X-Consul-Token": token} if token else {}
        self._timeout = timeout

    def register(self, service: ServiceRegistration) -> None:
        """Raises requests.RequestException when the agent refuses or is unreachable."""
        response = requests.put(
            f"{self._base}/v1/agent/service/register",
            json=service.body(),
            headers=self._headers,
            timeout=self._timeout,
        )
        response.raise_for_status()
        log.info("registered %s with consul at %s", service.service_id, self._base)

    def deregister(self, service_id: str) -> None:
        response = requests.put(
            f"{self._base}/v1/agent/service/deregister/{quote(service_id, safe='')}",
            headers=self._headers,
            timeout=self._timeout,
        )
        response.raise_for_status()
        log.info("deregistered %s from consul", service_id)


class Registrar:
    """Registers in the background until the agent accepts (an agent that is
    not up yet must not keep the service from starting), deregisters on stop."""

    def __init__(
        self,
        agent: ConsulAgent,
        service: ServiceRegistration,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
    ) -> None:
        self.agent = agent
        self.service = service
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._task: asyncio.Task[None] | None = None
        self._waiting = asyncio.Event()  # set while sleeping between attempts
        self._stopping = False
        self.registered = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._register())

    async def _register(self) -> None:
        delay = self._retry_initial
        while True:
            try:
                await asyncio.to_thread(self.agent.register, self.service)
            except requests.RequestException as exc:
                if self._stopping:
                    return
                log.warning("consul registration failed (%s); retrying in %.0fs", exc, delay)
                self._waiting.set()
                await asyncio.sleep(delay)
                self._waiting.clear()
                delay = min(delay * 2, self._retry_max)
            else:
                self.registered.set()
                return

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None and not self._task.done():
            if self._waiting.is_set():
                self._task.cancel()
            # An attempt in flight is awaited (bounded by the request timeout):
            # cancelling would not stop its thread, which could then register
            # the service after it was deregistered.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.registered.is_set():
            return
        self.registered.clear()  # one deregistration, however often stop is called
        try:
            await asyncio.to_thread(self.agent.deregister, self.service.service_id)
        except requests.RequestException as exc:
            # The check turns critical once the server stops; Consul then drops
            # the entry after DeregisterCriticalServiceAfter.
            log.warning("consul deregistration failed: %s", exc)
