"""The edge interceptor's handling of an unexpected error."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest

from post_management.entrypoints.grpc.edge import EdgeInterceptor
from post_management.entrypoints.grpc.tokens import TokenCodec

METHOD = "/xmp.posts.v1.ServiceInfoService/GetInfo"


class _Details:
    method = METHOD


class _Context:
    def __init__(self) -> None:
        self.aborted: grpc.StatusCode | None = None

    async def abort(self, code: grpc.StatusCode, details: str, trailing: Any) -> None:
        self.aborted = code

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


async def _broken(request: Any, context: Any) -> Any:
    raise RuntimeError("boom")


def test_an_unexpected_error_is_logged_with_the_rpc_method_and_answered_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interceptor = EdgeInterceptor(TokenCodec("s" * 40, issuer="i", audience="a"))

    async def continuation(details: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(_broken)

    async def call() -> _Context:
        handler = await interceptor.intercept_service(continuation, _Details())  # type: ignore[arg-type]
        assert handler is not None and handler.unary_unary is not None
        context = _Context()
        await handler.unary_unary(None, context)  # type: ignore[arg-type]
        return context

    with caplog.at_level(logging.ERROR):
        context = asyncio.run(call())
    assert context.aborted == grpc.StatusCode.INTERNAL
    assert [r.getMessage() for r in caplog.records] == [f"unexpected error in {METHOD}"]
