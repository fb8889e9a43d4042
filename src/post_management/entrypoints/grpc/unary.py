"""The shared shape of the server's interceptors: wrap unary-unary handlers.

Every RPC of the service is unary. Streaming handlers (health's Watch, reflection)
go to `streaming`, which passes them through unless a subclass says otherwise: the
edge refuses every streaming method that is not public (edge.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


# A string: the class is generic only in the stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Subclasses say how to wrap one method's behavior (None: leave it alone).

    The wrapped handler is built once per method and handler and reused by every
    later call: the server hands out the same handler object for a method each time.
    """

    def __init__(self) -> None:
        # method -> (the handler it was built from, the handler to return)
        self._handlers: dict[str, tuple[Handler, Handler]] = {}

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
        method = handler_call_details.method
        built = self._handlers.get(method)
        if built is not None and built[0] is handler:
            return built[1]
        result = self._build(handler, method)
        if result is not None:
            result = await self._around(result, handler_call_details)
        if result is not None:
            self._handlers[method] = (handler, result)
        return result

    async def _around(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler | None:
        """The built handler as an outer interceptor leaves it (none here)."""
        return handler

    def _build(self, handler: Handler, method: str) -> Handler | None:
        if handler.unary_unary is None:
            return self.streaming(handler, method)
        # grpc.aio handlers are coroutines even though the stubs type them as sync.
        wrapped = self.wrap(cast(Behavior, handler.unary_unary), method)
        if wrapped is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class FusedInterceptor(UnaryInterceptor):
    """Several interceptors as one: one interception per call, their wrappers
    nested in list order (the first is outermost), built once per method.

    `outer`, a third-party interceptor (OpenTelemetry's server spans), wraps the
    result once per method as well: it is given the built handler and this method's
    call details, so its own per-call work is only what its wrapper does per call.
    It must read nothing but the method from the call details it wraps with.
    """

    def __init__(
        self, parts: list[UnaryInterceptor], outer: grpc.aio.ServerInterceptor | None = None
    ) -> None:
        super().__init__()
        self._parts = parts
        self._outer = outer

    async def _around(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler | None:
        if self._outer is None:
            return handler

        async def built(_: grpc.HandlerCallDetails) -> Handler:
            return handler

        # Only the method: the wrapper lives as long as the server, and the first
        # call's metadata (its bearer token) must not live with it.
        return await self._outer.intercept_service(built, _MethodOnly(details.method))

    def wrap(self, behavior: Behavior, method: str) -> Behavior | None:
        current, changed = behavior, False
        for part in reversed(self._parts):
            wrapped = part.wrap(current, method)
            if wrapped is not None:
                current, changed = wrapped, True
        return current if changed else None

    def streaming(self, handler: Handler, method: str) -> Handler | None:
        current: Handler | None = handler
        for part in reversed(self._parts):
            if current is None:
                return None
            current = part.streaming(current, method)
        return current


class _MethodOnly(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()
