"""The one interceptor every call passes: authentication and error mapping.

Servicers raise domain errors; this turns them into rich gRPC statuses, so no
servicer catches or formats errors itself, and nothing unexpected leaks out.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc

from post_management.domain.auth import Principal
from post_management.domain.errors import DomainError, Unauthenticated
from post_management.entrypoints.grpc.errors import internal_status, to_status
from post_management.entrypoints.grpc.tokens import TokenCodec

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
    "/xmp.posts.v1.ServiceInfoService/",
)
# Single public methods: X's webhooks authenticate by an HMAC signature of the body.
PUBLIC_METHODS = frozenset(
    {
        "/xmp.posts.v1.AnalyticsService/VerifyXWebhook",
        "/xmp.posts.v1.AnalyticsService/ReceiveXWebhook",
    }
)

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


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
        "this call needs 'authorization: Bearer <token>' metadata", reason="TOKEN_MISSING"
    )


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenCodec) -> None:
        self._tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        public = method.startswith(PUBLIC_PREFIXES) or method in PUBLIC_METHODS
        # grpc.aio handlers are coroutines even though the stubs type them as sync.
        behavior = self._wrap(cast(Behavior, handler.unary_unary), method, public)
        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, behavior: Behavior, method: str, public: bool) -> Behavior:
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
            await context.abort(status.code, status.details, status.trailing_metadata)

        return guarded
