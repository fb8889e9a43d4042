"""The one interceptor every call passes: authentication and error mapping.

Servicers raise domain errors; this turns them into rich gRPC statuses, so no
servicer catches or formats errors itself, and nothing unexpected leaks out.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from post_management.domain.auth import Principal
from post_management.domain.errors import DomainError, Unauthenticated
from post_management.domain.reasons import Reason
from post_management.entrypoints.grpc.errors import (
    abort,
    internal_status,
    stream_refused_status,
    to_status,
)
from post_management.entrypoints.grpc.tokens import TokenVerifier
from post_management.entrypoints.grpc.unary import Behavior, UnaryInterceptor

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
    "/xmp.posts.v1.ServiceInfoService/",
)
# Single public methods: X's webhooks authenticate by an HMAC signature of the body.
WEBHOOK_METHODS = frozenset(
    {
        "/xmp.posts.v1.AnalyticsService/VerifyXWebhook",
        "/xmp.posts.v1.AnalyticsService/ReceiveXWebhook",
    }
)
PUBLIC_METHODS = WEBHOOK_METHODS

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")


def current_principal() -> Principal:
    """The authenticated caller of the current RPC."""
    return _principal.get()


def optional_principal() -> Principal | None:
    """The caller when the current RPC was authenticated; None for public calls."""
    return _principal.get(None)


def _bearer(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            break
    raise Unauthenticated(
        "this call needs 'authorization: Bearer <token>' metadata", reason=Reason.TOKEN_MISSING
    )


async def _refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    status = stream_refused_status()
    await context.abort(status.code, status.details, status.trailing_metadata)


async def _refuse_responses(
    request: Any, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[Any]:
    # An async generator: tracing iterates a response stream's behavior.
    await _refuse(request, context)
    yield  # never reached: abort raises


def _refused(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape that answers UNIMPLEMENTED before reading anything."""
    codecs: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_refuse_responses, **codecs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_refuse, **codecs)
    return grpc.stream_stream_rpc_method_handler(_refuse_responses, **codecs)


class EdgeInterceptor(UnaryInterceptor):
    def __init__(self, tokens: TokenVerifier) -> None:
        super().__init__()
        self._tokens = tokens

    def streaming(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # Only unary calls are authenticated here: a streaming method that is not
        # public would run for anyone, so it is refused until the edge wraps streams.
        if method.startswith(PUBLIC_PREFIXES) or method in PUBLIC_METHODS:
            return handler
        log.warning("refused streaming method %s: streams are not authenticated", method)
        return _refused(handler)

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        public = method.startswith(PUBLIC_PREFIXES) or method in PUBLIC_METHODS

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                if not public:
                    _principal.set(self._tokens.verify(_bearer(context)))
                return await behavior(request, context)
            except DomainError as error:
                status = to_status(error)
            except grpc.aio.AbortError:
                raise
            except Exception:
                log.exception("unexpected error in %s", method)
                status = internal_status()
            await abort(context, status)

        return guarded
