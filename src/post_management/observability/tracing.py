"""OpenTelemetry tracing: one SDK provider per process, OTLP export when configured.

The SDK provider is installed even without an exporter, so trace ids still reach
the logs and W3C `traceparent` still reaches X and Kafka; spans are then not recorded:
`span` and `start_server_span` make only their ids, without the SDK.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from importlib import metadata
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from post_management.observability import context

log = logging.getLogger(__name__)

SERVICE_NAME = "post-management"
_P = ParamSpec("_P")
_R = TypeVar("_R")
_PROPAGATOR = TraceContextTextMapPropagator()

tracer = trace.get_tracer("post_management")


def configure(otlp_endpoint: str | None = None, protocol: str = "grpc") -> TracerProvider:
    """Install the SDK provider once; add the OTLP exporter when an endpoint is set.

    `otlp_endpoint` is the traces endpoint itself (for http/protobuf the full URL, as
    Settings.otlp_traces gives it). The exporters read OTEL_EXPORTER_OTLP_HEADERS,
    _TIMEOUT, _COMPRESSION and _INSECURE themselves; the batch processor OTEL_BSP_*.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=resource())
        trace.set_tracer_provider(provider)
    if otlp_endpoint and not getattr(provider, "_pm_otlp", False):
        provider.add_span_processor(BatchSpanProcessor(_exporter(otlp_endpoint, protocol)))
        provider._pm_otlp = True  # type: ignore[attr-defined]
        log.info("traces exported over OTLP (%s) to %s", protocol, otlp_endpoint)
    return provider


def resource() -> Resource:
    """The service's name, version and instance; OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES add to them and win over them."""
    defaults = {
        "service.name": SERVICE_NAME,
        "service.version": _version(),
        # Tells replicas (and a restarted process) apart in a trace.
        "service.instance.id": str(uuid.uuid4()),
    }
    return Resource.create({**defaults, **OTELResourceDetector().detect().attributes})


def _exporter(endpoint: str, protocol: str) -> SpanExporter:
    # Imported here: the exporters are heavy and unused without an endpoint.
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


def _version() -> str:
    try:
        return metadata.version(SERVICE_NAME)
    except metadata.PackageNotFoundError:
        return "0.0.0"


def shutdown() -> None:
    """Flush spans still queued for export (on process exit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """A current span; an exception marks it as an error and propagates.

    When no span processor is registered it is not recorded and is made without the
    SDK (as `start_server_span` makes one): a child of the current span, or a new
    trace, with ids for the logs and `traceparent` and nothing else. The publishing
    engine makes two per post; the SDK's span, its attributes and its sampler cost
    several times more, for a span nothing would take."""
    if not recording():
        current = _unrecorded(trace.get_current_span().get_span_context())
        token = otel_context.attach(trace.set_span_in_context(current))
        try:
            yield current
        finally:
            otel_context.detach(token)
        return
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def propagation_fields() -> frozenset[str]:
    """The metadata keys the configured propagators read (traceparent, ...)."""
    return frozenset(propagate.get_global_textmap().fields)


def recording() -> bool:
    """Whether a span started now would reach anything: the SDK provider has a span
    processor (an exporter, or a test's in-memory one). Without one a span's only
    use is its ids (log lines, `traceparent` to X and Kafka)."""
    provider = trace.get_tracer_provider()
    processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
    return bool(processors)


def start_server_span(
    name: str, carrier: Mapping[str, str] | None, attributes: Mapping[str, str | int]
) -> tuple[Span, object]:
    """A server span made current, continuing the caller's trace (`traceparent` in
    `carrier`); returns it and the token for `end_server_span`.

    When no span processor is registered the span is not recorded, and it is made
    without the SDK: the caller's trace id (or a new one) and a new span id, which is
    all that logs and propagation read. With a processor it is the SDK's span."""
    # The globally configured propagators (W3C trace context and baggage unless
    # OTEL_PROPAGATORS says otherwise), as OpenTelemetry's own gRPC interceptor reads.
    parent = propagate.extract(carrier) if carrier else None
    if recording():
        current = tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
    else:
        current = _unrecorded(trace.get_current_span(parent).get_span_context())
    token = otel_context.attach(trace.set_span_in_context(current, parent))
    return current, token


def _unrecorded(parent: SpanContext) -> Span:
    span_id = random.getrandbits(64) or 1
    if parent.is_valid:
        return NonRecordingSpan(
            SpanContext(
                parent.trace_id,
                span_id,
                is_remote=False,
                trace_flags=parent.trace_flags,
                trace_state=parent.trace_state,
            )
        )
    # As the SDK's default sampler decides for a new trace: sampled.
    flags = TraceFlags(TraceFlags.SAMPLED)
    return NonRecordingSpan(
        SpanContext(random.getrandbits(128) or 1, span_id, is_remote=False, trace_flags=flags)
    )


def end_server_span(
    current: Span, token: object, code: int, error: str | None, exc: BaseException | None = None
) -> None:
    """Detach and end a span of `start_server_span`: `code` is the gRPC status code's
    number (`rpc.grpc.status_code`), `error` a description when the code is one that
    marks a server span as failed."""
    try:
        if current.is_recording():
            current.set_attribute("rpc.grpc.status_code", code)
            if exc is not None:
                current.record_exception(exc)
            if error is not None:
                current.set_status(Status(StatusCode.ERROR, error))
    finally:
        otel_context.detach(token)  # type: ignore[arg-type]
        current.end()


def mark_error(current: Span, description: str) -> None:
    current.set_status(Status(StatusCode.ERROR, description))


def current_ids() -> tuple[str, str]:
    """(trace id, span id) in hex of the current span, or empty strings."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return "", ""
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def inject(carrier: MutableMapping[str, str]) -> None:
    """Add `traceparent` (and `tracestate`) of the current span to headers."""
    _PROPAGATOR.inject(carrier)


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    return _PROPAGATOR.extract(carrier)


def outbox_headers() -> dict[str, Any]:
    """Headers for an outbox row: trace context and correlation id, relayed to Kafka."""
    headers: dict[str, Any] = {}
    inject(headers)
    if correlation_id := context.current():
        headers[context.HEADER] = correlation_id
    return headers
