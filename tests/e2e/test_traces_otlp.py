"""Traces leave the real `post-management serve` process over OTLP (gRPC and HTTP)
and arrive at a real receiver as one trace: RPC -> database -> publish -> X call."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    account_service_pb2_grpc,
    post_pb2,
    post_service_pb2,
    post_service_pb2_grpc,
    publishing_service_pb2,
    publishing_service_pb2_grpc,
)

from post_management.domain.auth import Role
from post_management.entrypoints.grpc.tokens import TokenCodec
from tests.fixtures.emulator import Emulator
from tests.support import otlp
from tests.support.harness import JWT_SECRET, auth
from tests.support.process import running_service

RPC = "/xmp.posts.v1.PublishingService/PublishPost"
Receiver = Callable[[], AbstractContextManager[tuple[str, otlp.Received]]]


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, otlp.Received]]:
    start: Receiver = otlp.grpc_receiver if request.param == "grpc" else otlp.http_receiver
    with start() as (endpoint, received):
        yield request.param, endpoint, received


def _parents(span: Span, by_id: dict[bytes, Span]) -> list[str]:
    names = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        names.append(span.name)
    return names


def test_one_publish_arrives_as_one_trace_with_the_service_resource(
    receiver: tuple[str, str, otlp.Received],
    emulator: Emulator,
    machine_database: str,
    tmp_path: Path,
) -> None:
    protocol, endpoint, received = receiver
    env = {
        "DATABASE_URL": machine_database,
        "X_MODE": "emulator",
        "JWT_SECRET": JWT_SECRET,
        "X_API_BASE_URL": emulator.base_url,
        "DISPATCHER_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        # OpenTelemetry's standard variables, nothing of the service's own.
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e,service.namespace=xmp",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    token = TokenCodec(JWT_SECRET, issuer="post-management", audience="post-management").mint(
        "alice", Role.USER
    )
    x_user_id = str(uuid.uuid4().int % 10**12)  # the session's database is shared
    emulator.control.register_user(f"tok-{x_user_id}", user_id=x_user_id)
    with running_service(env, tmp_path) as service, grpc.insecure_channel(service.address) as ch:
        metadata = auth(token)
        account = account_service_pb2_grpc.AccountServiceStub(ch).CreateAccount(
            account_service_pb2.CreateAccountRequest(
                account=account_pb2.Account(
                    user_id="alice",
                    handle="traced",
                    x_user_id=x_user_id,
                    credentials=account_pb2.XCredentials(
                        access_token=f"tok-{x_user_id}", access_token_secret="s"
                    ),
                )
            ),
            metadata=metadata,
        )
        post = post_service_pb2_grpc.PostServiceStub(ch).CreatePost(
            post_service_pb2.CreatePostRequest(
                post=post_pb2.Post(user_id="alice", account_id=account.id, text="traced post")
            ),
            metadata=metadata,
        )
        publishing_service_pb2_grpc.PublishingServiceStub(ch).PublishPost(
            publishing_service_pb2.PublishPostRequest(
                post_id=post.id, user_id="alice", immediate_publish=True
            ),
            metadata=metadata,
        )
        rpc = received.wait_for(RPC)
        received.wait_for("X POST /2/tweets")

    trace = [(res, s) for res, s in received.spans() if s.trace_id == rpc.trace_id]
    by_id = {s.span_id: s for _, s in trace}
    names = [s.name for _, s in trace]
    assert names.count(RPC) == 1 and rpc.parent_span_id == b""  # the RPC is the root
    assert rpc.kind == Span.SPAN_KIND_SERVER

    x_calls = [s for _, s in trace if s.name == "X POST /2/tweets"]
    assert len(x_calls) == 1
    x_call = x_calls[0]
    assert x_call.kind == Span.SPAN_KIND_CLIENT
    assert otlp.attributes(x_call.attributes)["http.response.status_code"] == 201
    assert "publish" in _parents(x_call, by_id)
    assert _parents(x_call, by_id)[-1] == RPC

    units = [s for _, s in trace if s.name == "db unit_of_work"]
    assert units, names
    for unit in units:
        assert _parents(unit, by_id)[-1] == RPC
        unit_attributes = otlp.attributes(unit.attributes)
        assert unit_attributes["db.system"] == "postgresql"
        assert unit_attributes["db.transaction.outcome"] in {"commit", "rollback"}
    assert "commit" in {otlp.attributes(u.attributes)["db.transaction.outcome"] for u in units}
    # The database work comes before the X call and after the RPC started.
    assert min(u.start_time_unix_nano for u in units) < x_call.start_time_unix_nano
    assert rpc.start_time_unix_nano <= x_call.start_time_unix_nano <= rpc.end_time_unix_nano

    # X got the trace context of that very call.
    sent = [r for r in emulator.control.requests() if r["path"] == "/2/tweets"]
    assert sent[-1]["traceparent"].startswith(f"00-{rpc.trace_id.hex()}-{x_call.span_id.hex()}-")

    resources = {tuple(sorted(res.items())) for res, _ in trace}
    assert len(resources) == 1  # one process, one resource
    resource = dict(next(iter(resources)))
    assert resource["service.name"] == "post-management"
    assert resource["service.version"]
    assert resource["service.instance.id"]
    assert resource["deployment.environment"] == "e2e"
    assert resource["service.namespace"] == "xmp"
    assert resource["telemetry.sdk.name"] == "opentelemetry"
