"""Running the emulator: on the caller's event loop, or in a background thread."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web

from x_emulator.app import build_app
from x_emulator.behaviour import Behaviour
from x_emulator.guard import STATE_KEY
from x_emulator.state import EmulatorState

_SHUTDOWN_SECONDS = 1.0


class EmulatorServer:
    """The X API emulator as a real HTTP server on a loopback port."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.app = build_app(EmulatorState(behaviour))
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @property
    def state(self) -> EmulatorState:
        return self.app[STATE_KEY]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 picks a free port) and return the base URL."""
        self.state.closing.clear()
        runner = web.AppRunner(
            self.app,
            handler_cancellation=True,  # a hanging handler ends when its client leaves
            shutdown_timeout=_SHUTDOWN_SECONDS,
            access_log=None,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0]
        self.base_url = f"http://{host}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.state.closing.set()
        await self._runner.cleanup()
        self._runner = None


class EmulatorThread:
    """The emulator on its own event loop in a daemon thread, for sync callers."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 10.0,
        behaviour: Behaviour | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = EmulatorServer(behaviour)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="x-emu")
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._server.start(host, port), self._loop)
        try:
            self.base_url: str = future.result(timeout=start_timeout)
        except BaseException:
            self._halt_loop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop)
        try:
            future.result(timeout=timeout)
        finally:
            self._halt_loop(timeout)

    def _halt_loop(self, timeout: float = 10.0) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> EmulatorThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
