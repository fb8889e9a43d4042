"""The fused edge: its parts nest in list order, each wraps a method once, and
streaming handlers pass through every part."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from post_management.entrypoints.grpc.unary import Behavior, FusedInterceptor, UnaryInterceptor


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method


class Recording(UnaryInterceptor):
    def __init__(self, name: str, calls: list[str], skip: str = "") -> None:
        super().__init__()
        self.name, self.calls, self.skip = name, calls, skip
        self.wrapped: list[str] = []
        self.streams: list[str] = []

    def wrap(self, behavior: Behavior, method: str) -> Behavior | None:
        self.wrapped.append(method)
        if method == self.skip:
            return None

        async def recorded(request: Any, context: Any) -> Any:
            self.calls.append(f"{self.name}>")
            try:
                return await behavior(request, context)
            finally:
                self.calls.append(f"<{self.name}")

        return recorded

    def streaming(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        self.streams.append(self.name)
        self.calls.append(f"stream:{self.name}")
        return handler


def test_parts_nest_in_order_and_each_method_is_wrapped_once() -> None:
    calls: list[str] = []
    outer, inner = Recording("outer", calls), Recording("inner", calls, skip="/s/Skipped")
    fused = FusedInterceptor([outer, inner])

    async def servicer(request: Any, context: Any) -> str:
        calls.append("servicer")
        return "answer"

    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        name: grpc.unary_unary_rpc_method_handler(servicer) for name in ("/s/A", "/s/Skipped")
    }

    async def continuation(details: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return handlers[details.method]

    async def call(method: str) -> Any:
        handler = await fused.intercept_service(continuation, _Details(method))  # type: ignore[arg-type]
        assert handler is not None and handler.unary_unary is not None
        return await handler.unary_unary(None, None)  # type: ignore[arg-type]

    async def run() -> None:
        for _ in range(3):
            assert await call("/s/A") == "answer"
        assert await call("/s/Skipped") == "answer"
        # A new handler object for a method (a re-registered service) is wrapped anew.
        handlers["/s/A"] = grpc.unary_unary_rpc_method_handler(servicer)
        assert await call("/s/A") == "answer"

    asyncio.run(run())
    assert calls[:5] == ["outer>", "inner>", "servicer", "<inner", "<outer"]
    assert calls[15:18] == ["outer>", "servicer", "<outer"]  # inner left /s/Skipped alone
    assert outer.wrapped == ["/s/A", "/s/Skipped", "/s/A"]
    assert inner.wrapped == ["/s/A", "/s/Skipped", "/s/A"]


def test_streaming_handlers_go_through_every_part_innermost_first() -> None:
    calls: list[str] = []
    outer, inner = Recording("outer", calls), Recording("inner", calls)
    fused = FusedInterceptor([outer, inner])

    async def stream(request: Any, context: Any) -> Any:
        yield "x"

    handler = grpc.unary_stream_rpc_method_handler(stream)

    async def continuation(details: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return handler

    got = asyncio.run(fused.intercept_service(continuation, _Details("/s/Watch")))  # type: ignore[arg-type]
    assert got is handler
    # As when they were separate interceptors: the inner one sees the handler first.
    assert calls == ["stream:inner", "stream:outer"]


class Outer(grpc.aio.ServerInterceptor):
    """Wraps unary handlers like OpenTelemetry's interceptor does, recording what it saw."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.seen: list[tuple[str, Any]] = []

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        self.seen.append((details.method, details.invocation_metadata))
        handler = await continuation(details)

        async def traced(request: Any, context: Any) -> Any:
            self.calls.append("span>")
            try:
                return await handler.unary_unary(request, context)
            finally:
                self.calls.append("<span")

        return grpc.unary_unary_rpc_method_handler(traced)


def test_the_outer_interceptor_wraps_once_per_method_and_never_sees_metadata() -> None:
    calls: list[str] = []
    outer = Outer(calls)
    fused = FusedInterceptor([Recording("edge", calls)], outer=outer)

    async def servicer(request: Any, context: Any) -> str:
        calls.append("servicer")
        return "answer"

    handler = grpc.unary_unary_rpc_method_handler(servicer)

    async def continuation(details: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return handler

    class Details:
        method = "/s/A"
        invocation_metadata = (("authorization", "Bearer secret"),)

    async def run() -> None:
        for _ in range(3):
            built = await fused.intercept_service(continuation, Details())  # type: ignore[arg-type]
            assert built is not None and built.unary_unary is not None
            assert await built.unary_unary(None, None) == "answer"  # type: ignore[arg-type]

    asyncio.run(run())
    assert outer.seen == [("/s/A", ())]
    assert calls[:5] == ["span>", "edge>", "servicer", "<edge", "<span"]
    assert len(calls) == 15
