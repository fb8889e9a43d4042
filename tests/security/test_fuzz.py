"""Generated hostile requests against a running server: over gRPC (random strings,
huge values, unicode edge cases in every field) and over REST through a real Envoy
(wrong types, malformed JSON). Never INTERNAL or a 5xx other than 503; the server
stays up; a rejected request leaves the database exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import grpc
import pytest
import requests
from google.protobuf import descriptor, message_factory
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from xmp.posts.v1 import service_info_service_pb2, service_info_service_pb2_grpc

from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.schema import metadata
from post_management.domain.auth import Role
from tests.conftest import truncate
from tests.fixtures.envoy import EnvoyFactory
from tests.security.support import NO_PROXY, all_methods, call_grpc, rest_call
from tests.support.harness import RunningServer, settings_for

FD = descriptor.FieldDescriptor
# Webhooks answer X, not callers; erasure of random users is a legitimate success
# that would tombstone them, so it is left to the walk and privacy tests.
SKIP = {"ReceiveXWebhook", "EraseUserData"}
METHODS = [m for m in all_methods() if m.name not in SKIP]

EDGE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\u202e",
        "\ud7ff",
        "\ufeff",
        "💥" * 300,
        "a" * 70_000,
        "'; DROP TABLE posts; --",
        "../../etc/passwd",
        "%00",
        "00000000-0000-0000-0000-000000000000",
        "\u0301" * 500,
        "2025-02-30T25:61:00Z",
        "Europe/Nowhere",
    ]
)
TEXT = st.one_of(EDGE_TEXT, st.text(max_size=300))
INTS = st.one_of(st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1))


def _value(field: FD, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FD.TYPE_STRING:
        return TEXT
    if field.type == FD.TYPE_BYTES:
        return st.binary(max_size=2048)
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return INTS
    if field.type in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return st.integers(-(2**63), 2**63 - 1)
    if field.type in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if field.type in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if field.type == FD.TYPE_ENUM:
        return st.integers(-5, 40)  # unknown numbers included
    if field.type == FD.TYPE_MESSAGE and field.message_type is not None:
        return _message(field.message_type, depth + 1)
    return st.none()


@st.composite
def _fill(draw: st.DrawFn, message_type: descriptor.Descriptor, depth: int) -> Message:
    message = message_factory.GetMessageClass(message_type)()
    if depth > 2 or message_type.full_name.startswith("google.protobuf.Struct"):
        return message
    for field in message_type.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        if not draw(st.booleans()):
            continue
        if field.is_repeated:
            values = draw(st.lists(_value(field, depth), max_size=3))
            target = getattr(message, field.name)
            for value in values:
                if field.type == FD.TYPE_MESSAGE:
                    target.add().CopyFrom(value)
                else:
                    target.append(value)
        elif field.type == FD.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(draw(_value(field, depth)))
        else:
            setattr(message, field.name, draw(_value(field, depth)))
    return message


def _message(message_type: descriptor.Descriptor, depth: int) -> st.SearchStrategy[Message]:
    return _fill(message_type, depth)


@st.composite
def requests_(draw: st.DrawFn) -> tuple[descriptor.MethodDescriptor, Message]:
    method = draw(st.sampled_from(METHODS))
    return method, draw(_message(method.input_type, 0))


@pytest.fixture(scope="module")
def server(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    truncate(machine_database)
    settings = settings_for(
        machine_database,
        tmp_path_factory.mktemp("data"),
        rpc_rate_limit_per_minute=0,
        rpc_rate_limit_service_per_minute=0,
    )
    running = RunningServer(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def engine(server: RunningServer) -> Iterator[Engine]:
    built = make_engine(server.database_url)
    yield built
    built.dispose()


_CHECKSUM = (
    "SELECT count(*) || ':' || "
    "coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {table} t"
)


def checksum(engine: Engine) -> dict[str, str]:
    """Every table's rows, hashed: any write shows."""
    with engine.connect() as connection:
        return {
            name: connection.execute(text(_CHECKSUM.format(table=name))).scalar_one()
            for name in sorted(metadata.tables)
        }


@pytest.fixture(scope="module")
def envoy_url(server: RunningServer, envoy_factory: EnvoyFactory) -> str:
    return envoy_factory(grpc_port=server.server.port).base_url


def _alive(server: RunningServer) -> None:
    with grpc.insecure_channel(server.address, options=NO_PROXY) as channel:
        stub = service_info_service_pb2_grpc.ServiceInfoServiceStub(channel)
        stub.GetHealth(service_info_service_pb2.GetHealthRequest(), timeout=10)


def test_generated_grpc_requests(server: RunningServer, engine: Engine) -> None:
    tokens = [server.token("fuzzer", Role.USER), server.token("crm", Role.SERVICE)]
    channel = grpc.insecure_channel(server.address, options=NO_PROXY)

    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests_(), which=st.sampled_from(tokens))
    def run(request: tuple[descriptor.MethodDescriptor, Message], which: str) -> None:
        method, message = request
        before = checksum(engine)
        code, _ = call_grpc(channel, method, message, which)
        assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (
            method.full_name,
            message,
        )
        if code != grpc.StatusCode.OK:
            assert checksum(engine) == before, (method.full_name, code, message)

    try:
        run()
    finally:
        channel.close()
    _alive(server)


MALFORMED = st.one_of(
    st.sampled_from(
        [
            b"{",
            b"[]",
            b"null",
            b'{"userId": 5}',
            b'{"userId": {"nested": true}}',
            b'{"text": ["a"]}',
            b'{"priority": "NOT_AN_ENUM"}',
            b'{"scheduledFor": 12}',
            b'{"immediatePublish": "yes"}',
            b'{"pageSize": "ten"}',
            b'{"pageSize": 1e309}',
            b"\xff\xfe\x00",
            b'{"a":' * 200,
            b'{"userId": "\\ud800"}',
        ]
    ),
    st.binary(max_size=512),
    st.text(max_size=256).map(str.encode),
)


def test_malformed_rest_through_envoy(
    server: RunningServer, engine: Engine, envoy_url: str
) -> None:
    token = server.token("fuzzer", Role.USER)
    calls = [rest_call(m, message_factory.GetMessageClass(m.input_type)()) for m in METHODS]
    writes = [call for call in calls if call.verb in ("POST", "PATCH", "DELETE")]
    http = requests.Session()
    http.trust_env = False

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        call=st.sampled_from(writes),
        body=MALFORMED,
        segment=st.one_of(st.just(""), TEXT.filter(lambda s: len(s) < 2000)),
        content_type=st.sampled_from(["application/json", "text/plain", "application/grpc"]),
    )
    def run(call: Any, body: bytes, segment: str, content_type: str) -> None:
        path = call.path.replace("//", f"/{quote(segment, safe='')}/")
        before = checksum(engine)
        response = http.request(
            call.verb,
            envoy_url + path,
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
            timeout=10,
        )
        assert response.status_code < 500 or response.status_code == 503, (
            call,
            body,
            response.status_code,
            response.text[:300],
        )
        if response.status_code >= 400:
            assert checksum(engine) == before

    try:
        run()
    finally:
        http.close()
    _alive(server)
