"""`python -m x_emulator --port N` runs the X API emulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from x_emulator.behaviour import Behaviour
from x_emulator.server import EmulatorServer


async def _serve(host: str, port: int, behaviour: Behaviour) -> None:
    server = EmulatorServer(behaviour)
    url = await server.start(host, port)
    print(f"X API emulator listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local X API v2 emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument(
        "--timeline-lag",
        default="0",
        help="seconds before a post shows in its author's timeline, or MIN,MAX",
    )
    parser.add_argument(
        "--duplicate-window",
        type=float,
        default=None,
        help="seconds during which identical text is refused (default: forever)",
    )
    args = parser.parse_args(argv)
    try:
        values = [float(v) for v in args.timeline_lag.split(",")]
        lag: object = values[0] if len(values) == 1 else values
        behaviour = Behaviour().updated(
            {"timeline_lag_seconds": lag, "duplicate_window_seconds": args.duplicate_window}
        )
    except ValueError as exc:
        parser.error(str(exc))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, behaviour))


if __name__ == "__main__":
    main()
