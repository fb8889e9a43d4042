"""The load client, run as its own process: `python -m bench.load < spec.json`.

The spec names the targets and a list of points (call, transport, calls in flight,
seconds); each point runs N asyncio tasks that each keep one call in flight. One
JSON line comes back with calls, errors, QPS, p50 and p99 per point. Running every
point in one process, interleaved, lets noise on the machine hit all of them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import grpc
import psutil
from xmp.posts.v1 import (
    post_service_pb2,
    post_service_pb2_grpc,
    scheduling_service_pb2,
    scheduling_service_pb2_grpc,
)

from bench.common import percentile
from bench.hello import METHOD

Call = Callable[[], Awaitable[bool]]  # True: the call succeeded


class Targets:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.token = spec.get("token", "")
        self.post_ids: list[str] = spec.get("post_ids", [])
        self.users: list[str] = spec.get("users", [])
        self._next = 0
        self._rng = random.Random(7)
        self.channels: list[grpc.aio.Channel] = []
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        # One channel per target: gRPC multiplexes calls over its HTTP/2 connection.
        if "hello" in self.spec:
            self.hello = grpc.aio.insecure_channel(self.spec["hello"])
            self.say: Any = self.hello.unary_unary(METHOD)
            self.channels.append(self.hello)
        if "lean" in self.spec:
            lean = grpc.aio.insecure_channel(self.spec["lean"])
            self.channels.append(lean)
            self.lean_posts = post_service_pb2_grpc.PostServiceStub(lean)
        if "grpc" in self.spec:
            channel = grpc.aio.insecure_channel(self.spec["grpc"])
            self.channels.append(channel)
            self.posts = post_service_pb2_grpc.PostServiceStub(channel)
            self.scheduling = scheduling_service_pb2_grpc.PostSchedulingServiceStub(channel)
        if "rest" in self.spec:
            connector = aiohttp.TCPConnector(limit=256)
            self.session = aiohttp.ClientSession(
                connector=connector,
                headers={"authorization": f"Bearer {self.token}"},
                trust_env=False,  # loopback only, never through a proxy
            )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        if self.session is not None:
            await self.session.close()

    def _post_id(self) -> str:
        self._next = (self._next + 1) % len(self.post_ids)
        return self.post_ids[self._next]

    def _future_time(self) -> str:
        # A random minute within the horizon: reschedules rarely collide.
        minutes = self._rng.randrange(60, 300 * 24 * 60)
        at = datetime.now(UTC) + timedelta(minutes=minutes)
        return at.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")

    def call(self, transport: str, name: str) -> Call:
        metadata = (("authorization", f"Bearer {self.token}"),)
        rest = self.spec.get("rest", "")

        async def hello() -> bool:
            await self.say(b"bench")
            return True

        async def grpc_get() -> bool:
            await self.posts.GetPost(
                post_service_pb2.GetPostRequest(post_id=self._post_id()), metadata=metadata
            )
            return True

        async def lean_get() -> bool:
            await self.lean_posts.GetPost(
                post_service_pb2.GetPostRequest(post_id=self._post_id()), metadata=metadata
            )
            return True

        async def grpc_schedule() -> bool:
            post_id = self._post_id()
            await self.scheduling.SchedulePost(
                scheduling_service_pb2.SchedulePostRequest(
                    post_id=post_id,
                    user_id=self._owner(post_id),
                    scheduled_for=self._future_time(),
                    conflict_policy=scheduling_service_pb2.CONFLICT_POLICY_MOVE,
                ),
                metadata=metadata,
            )
            return True

        async def grpc_list() -> bool:
            await self.scheduling.ListScheduledPosts(
                scheduling_service_pb2.ListScheduledPostsRequest(
                    user_id=self._rng.choice(self.users), limit=20
                ),
                metadata=metadata,
            )
            return True

        async def rest_get() -> bool:
            assert self.session is not None
            async with self.session.get(f"{rest}/v1/posts/{self._post_id()}") as response:
                return _ok(response.status, await response.read())

        async def rest_schedule() -> bool:
            assert self.session is not None
            post_id = self._post_id()
            body = {
                "userId": self._owner(post_id),
                "scheduledFor": self._future_time(),
                "conflictPolicy": "CONFLICT_POLICY_MOVE",
            }
            async with self.session.post(f"{rest}/api/posts/{post_id}/schedule", json=body) as r:
                return _ok(r.status, await r.read())

        async def rest_list() -> bool:
            assert self.session is not None
            user = self._rng.choice(self.users)
            async with self.session.get(f"{rest}/api/posts/{user}/scheduled?limit=20") as r:
                return _ok(r.status, await r.read())

        table: dict[tuple[str, str], Call] = {
            ("grpc", "Hello"): hello,
            ("grpc", "GetPost"): grpc_get,
            ("grpc", "SchedulePost"): grpc_schedule,
            ("grpc", "ListScheduledPosts"): grpc_list,
            ("lean", "GetPost"): lean_get,
            ("rest", "GetPost"): rest_get,
            ("rest", "SchedulePost"): rest_schedule,
            ("rest", "ListScheduledPosts"): rest_list,
        }
        return table[(transport, name)]

    def _owner(self, post_id: str) -> str:
        return str(self.spec["owners"][post_id])


def _ok(status: int, body: bytes) -> bool:
    if status != 200:
        # Raised so that the point records what went wrong.
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    return True


def _cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """User + system CPU seconds each server process has used so far."""
    seconds = {}
    for name, process in processes.items():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seconds[name] = times.user + times.system
    return seconds


async def run_point(
    call: Call,
    inflight: int,
    seconds: float,
    warmup: float,
    servers: dict[str, psutil.Process] | None = None,
) -> dict[str, Any]:
    """Runs one point; `cpu_ms_per_call` is each server's CPU over the measured calls
    (every call of the point went to one server, so the figure is that server's cost
    per call; the other servers' figures show what they spent idle)."""
    servers = servers or {}
    latencies: list[float] = []
    errors = 0
    first_error = ""
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + seconds

    async def worker() -> None:
        nonlocal errors, first_error
        while True:
            began = time.perf_counter()
            if began >= end:
                return
            try:
                ok = await call()
            except Exception as exc:  # an error is a data point, not the end of the run
                ok = False
                first_error = first_error or repr(exc)[:300]
            if began >= measure_from:
                if ok:
                    latencies.append(time.perf_counter() - began)
                else:
                    errors += 1

    async def cpu_at_start() -> dict[str, float]:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        return _cpu_seconds(servers)

    cpu_start, *_ = await asyncio.gather(cpu_at_start(), *(worker() for _ in range(inflight)))
    cpu_end = _cpu_seconds(servers)
    elapsed = time.perf_counter() - measure_from
    calls = len(latencies) + errors
    cpu = {
        name: (cpu_end[name] - cpu_start[name]) * 1000 / calls
        for name in cpu_end
        if name in cpu_start and calls
    }
    return {
        "cpu_ms_per_call": cpu,
        "calls": len(latencies),
        "errors": errors,
        "first_error": first_error,
        "qps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def _main(spec: dict[str, Any]) -> list[dict[str, Any]]:
    targets = Targets(spec)
    servers = {name: psutil.Process(pid) for name, pid in spec.get("pids", {}).items()}
    await targets.open()
    results = []
    try:
        for point in spec["points"]:
            call = targets.call(point["transport"], point["call"])
            result = await run_point(
                call, point["inflight"], point["seconds"], point.get("warmup", 0.5), servers
            )
            results.append({**point, **result})
    finally:
        await targets.close()
    return results


def main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(_main(spec))), flush=True)


if __name__ == "__main__":
    main()
