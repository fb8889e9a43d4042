"""Section 5: where the server's time goes on the hot paths, sampled with py-spy.

py-spy (the `py-spy` package) samples a running process from outside, so the server
runs unchanged. Only samples holding the GIL are kept (`--gil`): with one core's
worth of Python per process, GIL time is what limits throughput.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import api, dispatch
from bench.common import (
    BIN,
    Report,
    Row,
    fresh_database,
    log,
    mint_token,
    new_key,
    run_json,
    service_env,
    start_service,
)

# Frames grouped into what a reader can act on; the first match wins.
GROUPS = (
    ("grpc / asyncio loop", ("grpc/", "grpc_", "asyncio/", "cygrpc")),
    ("protobuf mapping", ("mapping.py", "google/protobuf")),
    ("tracing (opentelemetry)", ("opentelemetry",)),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("psycopg", ("psycopg",)),
    ("X client (tweepy/requests/oauth)", ("tweepy", "requests", "oauthlib", "urllib3", "http/")),
    ("crypto (Fernet, JWT)", ("cryptography", "fernet", "jwt/", "crypto.py", "tokens.py")),
    ("logging / metrics", ("logging/", "prometheus_client", "observability/")),
    ("domain + services", ("post_management/domain", "post_management/services")),
    ("threads / executor", ("threading.py", "concurrent/")),
)


@dataclass
class Params:
    seconds: float = 6.0
    burst_posts: int = 1500  # enough to keep the engine busy while it is sampled


def quick_params() -> Params:
    return Params(seconds=2.0, burst_posts=600)


def py_spy() -> str | None:
    found = BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    tool = py_spy()
    if tool is None:
        return None
    return subprocess.Popen(
        [
            tool,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nolineno",
            "--gil",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise(raw: Path, top: int = 12) -> dict[str, Any]:
    """Self time per function, inclusive time per group and per function of ours."""
    own: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    if not raw.exists():
        return {"samples": 0}
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first entry is the process or thread
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        group = _group(frames[-1])
        groups[group] += count
        for frame in set(frames):
            if "post_management" in frame:
                ours[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_by_group": share(groups),
        "self_top": share(own),
        "inclusive_ours": share(ours),
    }


def _group(frame: str) -> str:
    for name, needles in GROUPS:
        if any(needle in frame for needle in needles):
            return name
    return "other"


def _profile_calls(params: Params, workdir: Path) -> dict[str, dict[str, Any]]:
    key = new_key()
    found: dict[str, dict[str, Any]] = {}
    seed = api.ApiParams()
    with fresh_database() as url:
        post_ids, owners, users = api._seed(url, key, seed)
        service, grpc_port, _ = start_service(service_env(url, key), args=("--no-envoy",))
        try:
            for call in ("GetPost", "SchedulePost", "ListScheduledPosts"):
                spec = {
                    "grpc": f"127.0.0.1:{grpc_port}",
                    "token": mint_token(),
                    "post_ids": post_ids,
                    "owners": owners,
                    "users": users,
                    "points": [
                        {
                            "transport": "grpc",
                            "call": call,
                            "inflight": 16,
                            "seconds": params.seconds + 1,
                            "warmup": 1,
                        }
                    ],
                }
                out = workdir / f"{call}.raw"
                spy: list[subprocess.Popen[bytes] | None] = []
                # Start sampling once the warm-up is over.
                timer = threading.Timer(
                    1.0,
                    lambda spy=spy, out=out: spy.append(record(service.pid, params.seconds, out)),
                )
                timer.start()
                result = run_json(
                    [sys.executable, "-m", "bench.load"], json.dumps(spec), params.seconds + 60
                )
                timer.join()
                if spy and spy[0] is not None:
                    spy[0].wait(timeout=60)
                found[call] = {"load": result[0], **summarise(out)}
        finally:
            service.stop()
    return found


def _profile_dispatch(params: Params, workdir: Path) -> dict[str, Any]:
    out = workdir / "dispatch.raw"
    holder: dict[str, Any] = {}

    def on_start(pids: list[int]) -> None:
        # The posts fall due about 2 s after they were stamped (dispatch._run):
        # sample the burst, not the wait before it.
        def begin() -> None:
            holder["spy"] = record(pids[0], params.seconds, out)

        holder["timer"] = threading.Timer(1.5, begin)
        holder["timer"].start()

    result = dispatch.burst(params.burst_posts, processes=1, command="serve", on_start=on_start)
    holder["timer"].join()
    spy = holder.get("spy")
    if spy is not None:
        spy.wait(timeout=60)
    return {"burst": result, **summarise(out)}


def run(report: Report, params: Params) -> None:
    if py_spy() is None:
        log("profile: py-spy is not installed (pip install py-spy); skipped")
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    profiles = _profile_calls(params, workdir)
    profiles["dispatch"] = _profile_dispatch(params, workdir)
    report.details["profiles"] = profiles
    for name, found in profiles.items():
        groups = found.get("self_by_group", [])
        note = ", ".join(f"{g} {pct:.0f}%" for g, pct in groups[:5])
        report.add(Row("5 profile", f"{name}: GIL samples", found.get("samples", 0), "", note=note))
