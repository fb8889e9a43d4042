"""Metrics, traces and logs of a real server and the publishing engine.

Metrics are read over HTTP from the real /metrics endpoint and compared before and
after a scripted run (counters are process-wide, so only their deltas count).
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from xmp.posts.v1 import (
    account_pb2,
    post_pb2,
    post_service_pb2,
    post_service_pb2_grpc,
    publishing_service_pb2,
    publishing_service_pb2_grpc,
    scheduling_service_pb2,
    scheduling_service_pb2_grpc,
)

from post_management.adapters.db.telemetry import DatabaseCollector
from post_management.domain.post import Priority
from post_management.observability import logs, metrics, tracing
from tests.conftest import truncate
from tests.fixtures.emulator import Emulator
from tests.integration.publishing_fixtures import Engine_
from tests.support.harness import RunningServer, auth

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracing.configure().add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="module")
def metrics_url() -> str:
    port = metrics.serve("127.0.0.1", 0)
    assert port is not None
    return f"http://127.0.0.1:{port}/metrics"


@pytest.fixture(scope="module")
def server(spans: InMemorySpanExporter, x_server: RunningServer) -> RunningServer:
    """The module's server on the emulator, started once spans are collected."""
    return x_server


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.configure("INFO", stream)
    yield stream
    import logging

    logging.getLogger().removeHandler(handler)


def scrape(url: str) -> Samples:
    body = requests.get(url, timeout=5).text
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    return sum(
        v for (n, series), v in samples.items() if n == name and set(labels.items()) <= set(series)
    )


class Caller:
    def __init__(self, server: RunningServer, emulator: Emulator) -> None:
        truncate(server.database_url)
        self.channel = server.channel()
        self.metadata = auth(server.token("alice"))
        self.posts = post_service_pb2_grpc.PostServiceStub(self.channel)
        self.publishing = publishing_service_pb2_grpc.PublishingServiceStub(self.channel)
        self.scheduling = scheduling_service_pb2_grpc.PostSchedulingServiceStub(self.channel)
        from xmp.posts.v1 import account_service_pb2, account_service_pb2_grpc

        x_user_id = str(uuid.uuid4().int % 10**12)
        emulator.control.register_user(f"tok-{x_user_id}", user_id=x_user_id)
        self.account = account_service_pb2_grpc.AccountServiceStub(self.channel).CreateAccount(
            account_service_pb2.CreateAccountRequest(
                account=account_pb2.Account(
                    user_id="alice",
                    handle=f"h{x_user_id}",
                    x_user_id=x_user_id,
                    credentials=account_pb2.XCredentials(
                        access_token=f"tok-{x_user_id}", access_token_secret="s"
                    ),
                )
            ),
            metadata=self.metadata,
        )

    def post(self, words: str) -> post_pb2.Post:
        return self.posts.CreatePost(  # type: ignore[no-any-return]
            post_service_pb2.CreatePostRequest(
                post=post_pb2.Post(user_id="alice", account_id=self.account.id, text=words)
            ),
            metadata=self.metadata,
        )


@pytest.fixture
def caller(server: RunningServer, emulator: Emulator) -> Iterator[Caller]:
    client = Caller(server, emulator)
    yield client
    client.channel.close()


# --- metrics -------------------------------------------------------------------------


def test_engine_run_moves_publish_x_and_queue_metrics(
    engine_: Engine_, emulator: Emulator, metrics_url: str
) -> None:
    gauges = DatabaseCollector(engine_.engine, min_interval=0).attach()
    try:
        before = scrape(metrics_url)
        on_time = engine_.post(engine_.account(), "on time", priority=Priority.HIGH)
        engine_.run_until_idle()
        emulator.control.inject_fault("POST", "/2/tweets", "status", status=400)
        refused = engine_.post(engine_.account(), "refused")
        engine_.run_until_idle()
        emulator.control.inject_fault("POST", "/2/tweets", "status", status=429)
        waiting = engine_.post(engine_.account(), "waits", priority=Priority.LOW)
        engine_.run_until_idle()
        after = scrape(metrics_url)
    finally:
        gauges.detach()
    assert str(engine_.load(on_time.id).state) == "PUBLISHED"
    assert str(engine_.load(refused.id).state) == "FAILED"
    assert str(engine_.load(waiting.id).state) == "SCHEDULED"

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    p = metrics.PREFIX
    assert delta(p + "posts_published_total", priority="high") == 1
    assert delta(p + "posts_failed_total", priority="normal") == 1
    assert delta(p + "publish_settlements_total", outcome="rate_limited") == 1
    assert delta(p + "rate_limit_waits_total", scope="user") == 1
    assert delta(p + "publish_lateness_seconds_count", priority="high") == 1
    assert delta(p + "publish_lateness_seconds_bucket", priority="high", le="+Inf") == 1
    assert delta(p + "posts_dead_lettered_total", priority="normal") == 0
    tweets = "POST /2/tweets"
    assert delta(p + "x_api_requests_total", endpoint=tweets, status="201") == 1
    assert delta(p + "x_api_requests_total", endpoint=tweets, status="400") == 1
    assert delta(p + "x_api_requests_total", endpoint=tweets, status="429") == 1
    assert delta(p + "x_api_request_seconds_count", endpoint=tweets) == 3
    assert delta(p + "dispatcher_batch_size_sum") == 3
    assert delta(p + "dispatcher_tick_seconds_count") >= 3
    # Committed events counted by type: published, failed, rate limit reached.
    assert delta(p + "events_total", event_type="post.published") == 1
    assert delta(p + "events_total", event_type="rate_limit.reached") == 1
    # Scrape-time gauges from the database: the waiting post and the unsent outbox.
    assert total(after, p + "queue_depth", state="SCHEDULED") == 1
    assert value(after, p + "queue_depth", state="PUBLISHING", window="all") == 0
    with engine_.engine.connect() as connection:
        unsent = connection.execute(
            text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        ).scalar_one()
    assert unsent > 0 and value(after, p + "outbox_backlog") == unsent
    assert value(after, p + "outbox_oldest_unsent_age_seconds") >= 0
    assert value(after, p + "db_pool_size") == engine_.engine.pool.size()  # type: ignore[attr-defined]
    assert value(after, p + "db_collector_up") == 1
    assert value(after, "process_cpu_seconds_total") > 0


def test_rpcs_counted_by_service_method_and_code(
    caller: Caller, metrics_url: str, spans: InMemorySpanExporter
) -> None:
    before = scrape(metrics_url)
    post = caller.post("to schedule")
    caller.scheduling.SchedulePost(
        scheduling_service_pb2.SchedulePostRequest(
            post_id=post.id,
            user_id="alice",
            scheduled_for=(datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT10:00:00Z"),
            priority="HIGH",
        ),
        metadata=caller.metadata,
    )
    with pytest.raises(grpc.RpcError):
        caller.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=str(uuid.uuid4())), metadata=caller.metadata
        )
    with pytest.raises(grpc.RpcError):
        caller.posts.GetPost(post_service_pb2.GetPostRequest(post_id=post.id))  # no token
    service = "xmp.posts.v1.PostService"
    handled = "grpc_server_handled_total"
    # An aborted call's status reaches the client before the server counts it.
    deadline = time.monotonic() + 5
    while True:
        after = scrape(metrics_url)
        done = total(after, handled, grpc_method="GetPost") - total(
            before, handled, grpc_method="GetPost"
        )
        if done >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(handled, grpc_service=service, grpc_method="CreatePost", grpc_code="OK") == 1
    assert delta(handled, grpc_service=service, grpc_method="GetPost", grpc_code="NOT_FOUND") == 1
    assert (
        delta(handled, grpc_service=service, grpc_method="GetPost", grpc_code="UNAUTHENTICATED")
        == 1
    )
    assert (
        delta("grpc_server_handling_seconds_count", grpc_service=service, grpc_method="GetPost")
        == 2
    )
    assert delta(metrics.PREFIX + "posts_scheduled_total", priority="high") == 1
    assert delta(metrics.PREFIX + "db_unit_of_work_seconds_count", outcome="commit") >= 2


# --- traces --------------------------------------------------------------------------


def _by_id(finished: tuple[ReadableSpan, ...]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in finished if s.context is not None}


def _ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        names.append(span.name)
    return names


def test_one_trace_from_the_rpc_through_the_database_to_x(
    caller: Caller, emulator: Emulator, spans: InMemorySpanExporter, server: RunningServer
) -> None:
    post = caller.post("traced")
    spans.clear()
    caller.publishing.PublishPost(
        publishing_service_pb2.PublishPostRequest(
            post_id=post.id, user_id="alice", immediate_publish=True
        ),
        metadata=(*caller.metadata, ("x-request-id", "trace-test-1")),
    )
    finished = spans.get_finished_spans()
    rpc = [s for s in finished if s.name == "/xmp.posts.v1.PublishingService/PublishPost"]
    assert len(rpc) == 1 and rpc[0].context is not None
    trace_id = rpc[0].context.trace_id
    same_trace = [s for s in finished if s.context is not None and s.context.trace_id == trace_id]
    names = [s.name for s in same_trace]
    assert "db unit_of_work" in names
    assert "publish" in names and "queue settle" in names
    x_calls = [s for s in same_trace if s.name == "X POST /2/tweets"]
    assert len(x_calls) == 1
    index = _by_id(finished)
    assert _ancestors(x_calls[0], index)[-1] == rpc[0].name  # the RPC is the root
    assert "publish" in _ancestors(x_calls[0], index)
    uow = next(s for s in same_trace if s.name == "db unit_of_work")
    assert _ancestors(uow, index)[-1] == rpc[0].name
    # X received the trace context of its call's span.
    assert x_calls[0].context is not None
    sent = [r for r in emulator.control.requests() if r["path"] == "/2/tweets"]
    assert sent[-1]["traceparent"].startswith(
        f"00-{trace_id:032x}-{x_calls[0].context.span_id:016x}-"
    )
    # The outbox rows carry the trace and correlation ids on to Kafka.
    engine = server.container.engine
    with engine.connect() as connection:
        headers = connection.execute(
            text(
                "SELECT headers FROM outbox WHERE aggregate_id = :id"
                " AND event_type = 'post.published'"
            ),
            {"id": post.id},
        ).scalar_one()
    assert headers["traceparent"].split("-")[1] == f"{trace_id:032x}"
    assert headers["x-request-id"] == "trace-test-1"


# --- logs ----------------------------------------------------------------------------


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_logs_are_json_with_the_callers_correlation_id(
    caller: Caller, log_lines: io.StringIO, spans: InMemorySpanExporter
) -> None:
    post = caller.post("logged")
    response, call = caller.posts.GetPost.with_call(
        post_service_pb2.GetPostRequest(post_id=post.id),
        metadata=(*caller.metadata, ("x-request-id", "corr-abc-123")),
    )
    assert response.id == post.id
    # Returned with the status, in the trailing metadata (no batch of its own).
    assert ("x-request-id", "corr-abc-123") in tuple(call.trailing_metadata())
    lines = _records(log_lines)
    finished = [
        r
        for r in lines
        if r.get("event") == "rpc finished" and r.get("rpc") == "xmp.posts.v1.PostService/GetPost"
    ]
    assert len(finished) == 1
    line = finished[0]
    assert line["correlation_id"] == "corr-abc-123"
    assert line["level"] == "info" and line["grpc_code"] == "OK"
    assert line["post_id"] == post.id
    assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", line["time"])


def test_a_correlation_id_is_generated_and_returned_when_absent(
    caller: Caller, log_lines: io.StringIO
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        caller.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=str(uuid.uuid4())), metadata=caller.metadata
        )
    trailing = dict(caught.value.trailing_metadata())  # type: ignore[attr-defined]
    returned = trailing["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", returned)
    # Beside the error's details, which it does not replace.
    assert "grpc-status-details-bin" in trailing
    # An aborted call's status reaches the client before the server logs it.
    deadline = time.monotonic() + 5
    while not (logged := [r for r in _records(log_lines) if r.get("event") == "rpc finished"]):
        assert time.monotonic() < deadline, "no rpc log line"
        time.sleep(0.01)
    assert logged[-1]["correlation_id"] == returned
    assert logged[-1]["grpc_code"] == "NOT_FOUND"
