"""A hello-world grpc.aio unary server: the ceiling a Python gRPC service can reach here.

`python -m bench.hello --port N` answers /bench.Hello/Say with the request's bytes.
Raw bytes (no protobuf) keep it the cheapest possible servicer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import grpc

METHOD = "/bench.Hello/Say"


async def _say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return b"hello " + request


async def _serve(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Hello", {"Say": grpc.unary_unary_rpc_method_handler(_say)}
    )
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"hello listening on 127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
