"""`serve`, and the dispatcher's publishing loop, run on uvloop's event loop where
uvloop is installed."""

from __future__ import annotations

import asyncio

import uvloop

from post_management.bootstrap.event_loops import loop_factory


def test_serve_runs_on_uvloop() -> None:
    factory = loop_factory()
    assert factory is not None

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(loop_type()) is uvloop.Loop
