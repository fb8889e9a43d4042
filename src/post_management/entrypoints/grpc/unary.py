"""The shared shape of the server's interceptors: wrap unary-unary handlers.

Every RPC of the service is unary. Streaming handlers (health's Watch, reflection)
go to `streaming`, which passes them through unless a subclass says otherwise: the
edge refuses every streaming method that is not public (edge.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Subclasses say how to wrap one method's behavior (None: leave it alone)."""

    def wrap(self, behavior: Behavior, method: str) -> Behavior | None:
        raise NotImplementedError

    def streaming(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """A streaming method's handler as this interceptor lets it run."""
        return handler

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is None:
            return self.streaming(handler, handler_call_details.method)
        # grpc.aio handlers are coroutines even though the stubs type them as sync.
        wrapped = self.wrap(cast(Behavior, handler.unary_unary), handler_call_details.method)
        if wrapped is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
