"""Header names HTTP allows but gRPC metadata does not never reach the server: through
Envoy such a request is answered as if the header were not there, never with a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import truncate
from tests.fixtures.envoy import EnvoyFactory
from tests.integration.grpc_fixtures import rest_as
from tests.support.harness import RunningServer


@pytest.fixture(scope="module")
def rest(
    server: RunningServer, machine_database: str, envoy_factory: EnvoyFactory
) -> Iterator[tuple[str, requests.Session]]:
    truncate(machine_database)  # other modules' accounts hold credentials of other keys
    base = envoy_factory(grpc_port=server.server.port).base_url
    yield from rest_as(server, base, "alice")


@pytest.mark.parametrize("name", ["q!z", "x~y", "a*b", "odd#name", "with$sign"])
def test_a_header_name_grpc_cannot_carry_is_dropped(
    rest: tuple[str, requests.Session], name: str
) -> None:
    base, session = rest
    plain = session.get(f"{base}/v1/accounts", params={"userId": "alice"}, timeout=10)
    odd = session.get(
        f"{base}/v1/accounts", params={"userId": "alice"}, headers={name: "1"}, timeout=10
    )
    assert plain.status_code == 200, plain.text
    assert odd.status_code == plain.status_code, (odd.status_code, odd.text)
    assert odd.json() == plain.json()


def test_ordinary_headers_still_reach_the_server(rest: tuple[str, requests.Session]) -> None:
    base, session = rest
    # The bearer token is a header too: still honoured.
    denied = requests.get(f"{base}/v1/accounts", params={"userId": "alice"}, timeout=10, proxies={})
    assert denied.status_code == 401
    answered = session.get(
        f"{base}/v1/accounts",
        params={"userId": "alice"},
        headers={"x-request-id": "trace-me-123"},
        timeout=10,
    )
    assert answered.status_code == 200
    # Envoy returns the request's correlation id (the server's own goes in gRPC
    # trailing metadata, which a REST client does not see).
    assert answered.headers.get("x-request-id")
