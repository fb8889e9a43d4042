"""Per-RPC telemetry: correlation id, log fields, Prometheus counters and latency.

Registered after OpenTelemetry's server interceptor (so the RPC's span is current)
and before the edge interceptor (so authentication failures are counted and logged
with the caller's correlation id too).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from post_management.entrypoints.grpc.unary import Behavior, UnaryInterceptor
from post_management.observability import context, metrics

log = logging.getLogger(__name__)

# Frequent and uninteresting: probes and reflection log at DEBUG.
QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Request fields worth having on every log line of the call.
ID_FIELDS = ("post_id", "account_id", "user_id")


def split_method(full_method: str) -> tuple[str, str]:
    """'/pkg.Service/Method' -> ('pkg.Service', 'Method')."""
    _, _, rest = full_method.partition("/")
    service, _, method = rest.partition("/")
    return service or "unknown", method or "unknown"


def _metadata(context_: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for name, value in context_.invocation_metadata() or ():
        if name == key:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


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


class TelemetryInterceptor(UnaryInterceptor):
    def wrap(self, behavior: Behavior, full_method: str) -> Behavior:
        service, method = split_method(full_method)
        level = logging.DEBUG if full_method.startswith(QUIET_PREFIXES) else logging.INFO
        handled = metrics.GRPC_HANDLED
        latency = metrics.GRPC_LATENCY.labels(service, method)

        async def observed(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            correlation_id = context.accept(_metadata(ctx, context.HEADER))
            code = grpc.StatusCode.OK
            with context.correlated(correlation_id, rpc=f"{service}/{method}", **_ids(request)):
                # Sent before the handler runs, so failed calls carry the id too.
                await ctx.send_initial_metadata(((context.HEADER, correlation_id),))
                try:
                    return await behavior(request, ctx)
                except grpc.aio.AbortError:
                    code = ctx.code() or grpc.StatusCode.UNKNOWN
                    raise
                except BaseException:
                    code = grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    elapsed = time.perf_counter() - started
                    code = _final_code(ctx, code)
                    handled.labels(service, method, code.name).inc()
                    latency.observe(elapsed)
                    log.log(
                        level,
                        "rpc finished",
                        extra={"grpc_code": code.name, "duration_ms": round(elapsed * 1000, 2)},
                    )

        return observed


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
