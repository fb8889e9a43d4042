"""The lean reference: the least a database-backed GetPost needs on this machine.

`python -m bench.lean --port N --database URL --jwt-secret S` serves
`xmp.posts.v1.PostService/GetPost` and nothing else: grpc.aio, one interceptor that
verifies an HS256 JWT (issuer and audience as the service checks them), one
primary-key SELECT over a psycopg 3 async pool with a prepared statement, and the
row mapped into `xmp.posts.v1.Post`. No authorization walk, no cache, no audit, no
telemetry: the service's GetPost is measured against this to see what the layers
above the job cost. It reads the same database the service reads, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import jwt
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg_pool import AsyncConnectionPool
from xmp.posts.v1 import post_pb2, post_service_pb2, post_service_pb2_grpc

ISSUER = AUDIENCE = "post-management"
SELECT = (
    "SELECT id, user_id, account_id, text, media_ids, reply_to_x_post_id, state, priority,"
    " due_at, timezone, published_at, x_post_id, attempt_count, last_error, created_at,"
    " updated_at, version, attachment_ids, thread, segment_x_post_ids"
    " FROM posts WHERE id = %s"
)
STATES = {name.removeprefix("POST_STATE_"): v for name, v in post_pb2.PostState.items()}


class JwtInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without a valid HS256 bearer token."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")

        self._refuse = grpc.unary_unary_rpc_method_handler(refuse)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        header = dict(details.invocation_metadata or ()).get("authorization", "")
        try:
            jwt.decode(
                str(header).removeprefix("Bearer "),
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                audience=AUDIENCE,
                leeway=30,
            )
        except jwt.PyJWTError:
            return self._refuse
        return await continuation(details)


def _stamp(value: Any) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _post(row: tuple[Any, ...]) -> post_pb2.Post:
    return post_pb2.Post(
        id=str(row[0]),
        user_id=row[1],
        account_id=str(row[2]),
        text=row[3],
        media_ids=row[4],
        reply_to_x_post_id=row[5],
        state=STATES[row[6]],  # type: ignore[arg-type]
        priority=row[7],  # type: ignore[arg-type]
        scheduled_for=_stamp(row[8]),
        timezone=row[9],
        published_at=_stamp(row[10]),
        x_post_id=row[11],
        attempt_count=row[12],
        last_error=row[13],
        create_time=_stamp(row[14]),
        update_time=_stamp(row[15]),
        etag=f'"{row[16]}"',
        attachment_ids=[str(a) for a in row[17]],
        thread=row[18],
        segment_x_post_ids=row[19],
    )


class LeanPosts(post_service_pb2_grpc.PostServiceServicer):
    def __init__(self, pool: AsyncConnectionPool) -> None:  # type: ignore[type-arg]
        self._pool = pool

    async def GetPost(
        self,
        request: post_service_pb2.GetPostRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> post_pb2.Post:
        try:
            post_id = uuid.UUID(request.post_id)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "post_id must be a UUID")
        async with self._pool.connection() as connection:
            cursor = await connection.execute(SELECT, (post_id,), prepare=True)
            row = await cursor.fetchone()
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such post")
        return _post(row)


async def _serve(port: int, database: str, secret: str) -> None:
    pool = AsyncConnectionPool(database, min_size=4, max_size=8, open=False)
    await pool.open(wait=True)
    server = grpc.aio.server(interceptors=[JwtInterceptor(secret)])
    post_service_pb2_grpc.add_PostServiceServicer_to_server(LeanPosts(pool), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"lean listening on 127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True, help="a libpq URL (postgresql://...)")
    parser.add_argument("--jwt-secret", required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.database, args.jwt_secret))


if __name__ == "__main__":
    main()
