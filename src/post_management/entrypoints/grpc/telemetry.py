"""Per-RPC telemetry: the server span, correlation id, log fields, Prometheus counters
and latency.

The outermost part of the fused interceptor (unary.py), so authentication failures
are traced, counted and logged with the caller's correlation id too. Per call it
reads the call's metadata once, starts the server span (health checks have none:
probes are noise in traces), and returns the correlation id in the trailing
metadata, which leaves with the status in the call's last batch; a correlation id
in the initial metadata would need an extra batch of its own before the handler
runs (grpc.aio sends a unary call's initial metadata empty with the response).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from post_management.entrypoints.grpc.unary import Behavior, UnaryInterceptor
from post_management.observability import context, metrics, tracing

log = logging.getLogger(__name__)

# Frequent and uninteresting: probes and reflection log at DEBUG.
QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# No span: probes every few seconds would bury the traces that matter.
UNTRACED_PREFIXES = ("/grpc.health.v1.Health/",)
# Request fields worth having on every log line of the call.
ID_FIELDS = ("post_id", "account_id", "user_id")
# A server span's status is an error for these codes only (OpenTelemetry's gRPC
# semantic conventions): the others are the caller's mistakes, not the server's.
SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def split_method(full_method: str) -> tuple[str, str]:
    """'/pkg.Service/Method' -> ('pkg.Service', 'Method')."""
    _, _, rest = full_method.partition("/")
    service, _, method = rest.partition("/")
    return service or "unknown", method or "unknown"


# Request type -> its string id fields, found once per type instead of once per call.
_ID_FIELDS_BY_TYPE: dict[type, tuple[str, ...]] = {}


def _id_fields(kind: type) -> tuple[str, ...]:
    descriptor = getattr(kind, "DESCRIPTOR", None)
    fields = getattr(descriptor, "fields_by_name", {})
    return tuple(
        name
        for name in ID_FIELDS
        if name in fields and fields[name].type == fields[name].TYPE_STRING
    )


def _ids(request: Any) -> dict[str, str]:
    kind = type(request)
    names = _ID_FIELDS_BY_TYPE.get(kind)
    if names is None:
        names = _ID_FIELDS_BY_TYPE[kind] = _id_fields(kind)
    found: dict[str, str] = {}
    for name in names:
        value = getattr(request, name, "")
        if value:
            found[name] = str(value)[:64]
    return found


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class TelemetryInterceptor(UnaryInterceptor):
    def wrap(self, behavior: Behavior, full_method: str) -> Behavior:
        service, method = split_method(full_method)
        rpc = f"{service}/{method}"
        level = logging.DEBUG if full_method.startswith(QUIET_PREFIXES) else logging.INFO
        traced = not full_method.startswith(UNTRACED_PREFIXES)
        trace_keys = tracing.propagation_fields()
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        latency = metrics.GRPC_LATENCY.labels(service, method)
        # One counter child per status code, looked up once.
        handled: dict[grpc.StatusCode, Any] = {}

        def count(code: grpc.StatusCode) -> None:
            child = handled.get(code)
            if child is None:
                child = handled[code] = metrics.GRPC_HANDLED.labels(service, method, code.name)
            child.inc()

        async def observed(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            requested: str | None = None
            carrier: dict[str, str] | None = None
            for key, value in ctx.invocation_metadata() or ():
                if key == context.HEADER:
                    requested = _text(value)
                elif key in trace_keys:
                    if carrier is None:
                        carrier = {}
                    carrier[key] = _text(value)
            correlation_id = context.accept(requested)
            # Sent with the status: failed calls carry it too (errors.abort keeps it).
            ctx.set_trailing_metadata(((context.HEADER, correlation_id),))
            code = grpc.StatusCode.OK
            failure: BaseException | None = None
            span = token = None
            bound = context.enter(correlation_id, rpc=rpc, **_ids(request))
            try:
                if traced:
                    span, token = tracing.start_server_span(full_method, carrier, attributes)
                return await behavior(request, ctx)
            except grpc.aio.AbortError:
                code = ctx.code() or grpc.StatusCode.UNKNOWN
                raise
            except BaseException as exc:
                code, failure = grpc.StatusCode.UNKNOWN, exc
                raise
            finally:
                try:
                    elapsed = time.perf_counter() - started
                    code = _final_code(ctx, code)
                    count(code)
                    latency.observe(elapsed)
                    if log.isEnabledFor(level):
                        log.log(
                            level,
                            "rpc finished",
                            extra={"grpc_code": code.name, "duration_ms": round(elapsed * 1000, 2)},
                        )
                finally:
                    context.leave(bound)
                    if span is not None:
                        error = None
                        if code in SERVER_ERROR_CODES:
                            error = f"{code}:{_details(ctx)}"
                        tracing.end_server_span(span, token, code.value[0], error, failure)

        return observed


def _details(ctx: grpc.aio.ServicerContext[Any, Any]) -> str:
    try:
        return str(ctx.details() or "")
    except Exception:
        return ""


def _final_code(ctx: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode) -> grpc.StatusCode:
    """A servicer may set a code without raising (context.set_code)."""
    if code is grpc.StatusCode.OK:
        try:
            set_code = ctx.code()
        except Exception:
            return code
        if isinstance(set_code, grpc.StatusCode):
            return set_code
    return code
