"""The RPC server span: recorded by the SDK when a span processor is there to take it,
otherwise only the ids (the caller's trace continued, or a new one) for the logs and
for propagation."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from post_management.observability import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
CARRIER = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
ATTRIBUTES = {"rpc.system": "grpc", "rpc.service": "s.S", "rpc.method": "M"}


def test_without_a_processor_the_span_carries_the_callers_trace_and_is_not_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "recording", lambda: False)
    span, token = tracing.start_server_span("/s.S/M", CARRIER, ATTRIBUTES)
    try:
        assert trace.get_current_span() is span
        assert not span.is_recording()
        assert tracing.current_ids()[0] == TRACE_ID
        assert tracing.current_ids()[1] not in ("", PARENT_ID)
        headers: dict[str, str] = {}
        tracing.inject(headers)
        assert headers["traceparent"].startswith(f"00-{TRACE_ID}-")
        assert headers["traceparent"].endswith("-01")
    finally:
        tracing.end_server_span(span, token, 0, None)
    assert trace.get_current_span() is not span


def test_without_a_caller_trace_a_new_sampled_trace_begins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "recording", lambda: False)
    seen = set()
    for _ in range(2):
        span, token = tracing.start_server_span("/s.S/M", None, ATTRIBUTES)
        context = span.get_span_context()
        assert context.is_valid and context.trace_flags.sampled
        seen.add(tracing.current_ids()[0])
        tracing.end_server_span(span, token, 0, None)
    assert len(seen) == 2


def _recorded(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The SDK with a processor, as OTEL_EXPORTER_OTLP_ENDPOINT would set it up."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "recording", lambda: True)
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("test"))
    return exporter


def test_with_a_processor_the_sdk_records_a_server_span_under_the_callers_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = _recorded(monkeypatch)
    for code, error in ((0, None), (13, "StatusCode.INTERNAL:boom")):
        span, token = tracing.start_server_span("/s.S/M", CARRIER, ATTRIBUTES)
        tracing.end_server_span(span, token, code, error)
    ok, failed = exporter.get_finished_spans()
    for finished in (ok, failed):
        assert finished.name == "/s.S/M"
        assert finished.kind is trace.SpanKind.SERVER
        assert finished.context is not None and finished.parent is not None
        assert f"{finished.context.trace_id:032x}" == TRACE_ID
        assert f"{finished.parent.span_id:016x}" == PARENT_ID
        assert finished.attributes is not None
        assert {k: finished.attributes[k] for k in ATTRIBUTES} == ATTRIBUTES
    assert ok.attributes is not None and ok.attributes["rpc.grpc.status_code"] == 0
    assert ok.status.status_code is trace.StatusCode.UNSET
    assert failed.attributes is not None and failed.attributes["rpc.grpc.status_code"] == 13
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert failed.status.description == "StatusCode.INTERNAL:boom"


def test_recording_once_the_provider_has_a_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert not tracing.recording()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert tracing.recording()


def test_without_a_processor_a_span_is_ids_only_under_the_current_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK's tracer would record this span (its sampler says yes): only its ids
    # are made when nothing takes spans.
    monkeypatch.setattr(tracing, "tracer", TracerProvider().get_tracer("test"))
    monkeypatch.setattr(tracing, "recording", lambda: False)
    parent, token = tracing.start_server_span("/s.S/M", CARRIER, ATTRIBUTES)
    try:
        with tracing.span("publish", {"post.id": "p"}) as child:
            assert trace.get_current_span() is child
            assert not child.is_recording()
            trace_id, span_id = tracing.current_ids()
            assert trace_id == TRACE_ID
            assert span_id not in ("", PARENT_ID, f"{parent.get_span_context().span_id:016x}")
            with tracing.span("X POST /2/tweets", kind=trace.SpanKind.CLIENT) as grandchild:
                headers: dict[str, str] = {}
                tracing.inject(headers)
                sent = grandchild.get_span_context().span_id
                assert headers["traceparent"] == f"00-{TRACE_ID}-{sent:016x}-01"
            assert trace.get_current_span() is child
        assert trace.get_current_span() is parent
        with pytest.raises(RuntimeError), tracing.span("failing"):
            raise RuntimeError("boom")
        assert trace.get_current_span() is parent
    finally:
        tracing.end_server_span(parent, token, 0, None)
    with tracing.span("alone") as alone:
        context = alone.get_span_context()
        assert context.is_valid and context.trace_flags.sampled
        assert f"{context.trace_id:032x}" != TRACE_ID


def test_with_a_processor_a_span_is_the_sdks_under_the_current_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = _recorded(monkeypatch)
    with tracing.span("publish", {"post.id": "p"}) as outer, tracing.span("inner"):
        assert outer.is_recording()
    with pytest.raises(RuntimeError), tracing.span("failing"):
        raise RuntimeError("boom")
    inner, publish, failing = exporter.get_finished_spans()
    assert publish.attributes is not None and publish.attributes["post.id"] == "p"
    assert inner.parent is not None and publish.context is not None
    assert inner.parent.span_id == publish.context.span_id
    assert failing.status.status_code is trace.StatusCode.ERROR
