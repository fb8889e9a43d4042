"""The aiohttp application: routes plus the fault and header middlewares."""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler

from x_emulator import (
    routes_control,
    routes_media,
    routes_tweets,
    routes_users,
    wire,
)
from x_emulator.faults import Fault, FaultKind
from x_emulator.guard import STATE_KEY, budgets_of, state_of
from x_emulator.state import EmulatorState

CONTROL_PREFIX = "/_emulator/"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a 5 MB chunk plus multipart overhead, or a 15 MB GIF


async def _wait(state: EmulatorState, seconds: float) -> None:
    """Sleep, but return at once when the server is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.closing.wait(), timeout=seconds)


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer; the client sees a connection error."""
    if request.transport is not None:
        request.transport.abort()
    # aiohttp skips writing to an aborted transport; this response is never seen.
    return web.Response(status=500)


async def _act_late(
    state: EmulatorState, seconds: float, handler: Handler, request: web.Request
) -> web.StreamResponse:
    await _wait(state, seconds)
    if state.closing.is_set():
        return web.Response(status=503)  # the server stopped first: nothing happened
    return await handler(request)


async def _late_store(
    state: EmulatorState, seconds: float, handler: Handler, request: web.Request
) -> web.StreamResponse:
    """Run the handler after `seconds` in a task that outlives the client's request."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        await request.post()  # read now: the connection may be gone when the handler runs
    else:
        await request.read()
    task = asyncio.create_task(_act_late(state, seconds, handler, request))
    state.background.add(task)
    task.add_done_callback(state.background.discard)
    # shield: a client that leaves cancels this wait, not the task.
    return await asyncio.shield(task)


def _fault_response(fault: Fault) -> web.Response:
    phrase = HTTPStatus(fault.status).phrase
    return wire.problem(fault.status, phrase, phrase)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every X response carries the rate-limit state of the budgets it touched."""
    response = await handler(request)
    for prefix, budget in budgets_of(request):
        wire.set_budget_headers(response, prefix, budget)
    return response


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    state = state_of(request)
    resource = request.match_info.route.resource
    state.counters[f"{request.method} {resource.canonical if resource else request.path}"] += 1
    state.received.append(
        {
            "method": request.method,
            "path": request.path,
            "traceparent": request.headers.get("traceparent", ""),
        }
    )
    fault = state.faults.take(request.method, request.path)
    if fault is None:
        return await handler(request)
    if fault.kind is FaultKind.DELAY:
        await _wait(state, fault.delay_seconds)
        return await handler(request)
    if fault.kind is FaultKind.LATE_STORE:
        return await _late_store(state, fault.delay_seconds, handler, request)
    if fault.kind is FaultKind.TIMEOUT:
        if fault.accept:
            await handler(request)
        # The handler is cancelled when the client disconnects (handler_cancellation).
        await _wait(state, state.limits.hang_seconds)
        return _drop(request)
    if fault.kind is FaultKind.STATUS and not fault.accept:
        return _fault_response(fault)
    await handler(request)  # the effect happens; its answer is replaced
    if fault.kind is FaultKind.ACCEPT_THEN_DROP:
        return _drop(request)
    return _fault_response(fault)


def build_app(state: EmulatorState | None = None) -> web.Application:
    app = web.Application(
        middlewares=[headers_middleware, faults_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[STATE_KEY] = state or EmulatorState()
    for table in (
        routes_tweets.routes,
        routes_users.routes,
        routes_media.routes,
        routes_control.routes,
    ):
        app.add_routes(table)
    return app
