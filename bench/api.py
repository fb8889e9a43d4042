"""Sections 1, 2 and the memory part of 4: gRPC and REST calls against a real
`post-management serve` (with its Envoy), beside a hello-world grpc.aio server, while
the server's RSS is sampled.

`run` samples RSS over the API points themselves (a few minutes); `soak` (`python -m
bench --soak`, not part of the default run) keeps a mixed gRPC + REST load at 16 in
flight on one `serve` for 10 minutes and samples RSS throughout."""

from __future__ import annotations

import contextlib
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.common import (
    JWT_SECRET,
    POST_COLUMNS,
    Child,
    Report,
    Row,
    copy_rows,
    free_ports,
    fresh_database,
    log,
    median,
    mint_token,
    new_key,
    post_row,
    run_json,
    seed_accounts,
    service_env,
    start_service,
)
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.post_repository import screening_json
from post_management.adapters.profanity import ProfanityCheck
from post_management.services.posts.content_screening import ContentScreen

CALLS = ("GetPost", "SchedulePost", "ListScheduledPosts")


@dataclass
class ApiParams:
    seconds: float = 2.0  # measured per point
    warmup: float = 0.5
    reps: int = 3
    inflights: tuple[int, ...] = (1, 16, 64)
    # After the points, keep a mixed load on until the server has run this long
    # (RSS sampled throughout); 0: RSS over the points only.
    memory_seconds: float = 0.0
    # Enough posts that a GetPost point never comes back to a post within the
    # in-process post cache's 5 s: every point reads alike (from the database),
    # whichever point ran before it.
    accounts: int = 2000
    users: int = 200
    posts: int = 20_000
    # Posts carry their content screening, as CreatePost stores it.
    screened: bool = True


class RssSampler:
    """RSS of one process, once a second, on a daemon thread."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        self._process = psutil.Process(pid)
        self._every = every
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self._process.memory_info().rss / 2**20
            except psutil.Error:
                return
            self.samples.append((time.monotonic() - self._start, rss))
            self._stop.wait(self._every)

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS in MiB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (r - mean_r) for t, r in samples)
    return cov / var * 60


def screenings(texts: list[str]) -> list[str]:
    """posts.content_screening of each text as CreatePost keeps it (the service's own
    screen and classifier), in JSON; the classifier scores all texts in one batch."""
    check = ProfanityCheck(cached=len(texts) + 1)
    check.scores(texts)
    screen = ContentScreen(check)
    return [json.dumps(screening_json(screen.screen([text]))) for text in texts]


def _seed(url: str, key: str, params: ApiParams) -> tuple[list[str], dict[str, str], list[str]]:
    """Accounts over a few users, and SCHEDULED posts an hour or more ahead (listable,
    reschedulable, never due during the run), with their texts' content screening
    kept as CreatePost keeps it (unless `params.screened` is off: posts stored before
    screenings were kept, screened by their first schedule)."""
    engine = make_engine(url, pool_size=1)
    accounts = seed_accounts(engine, key, params.accounts, params.users, "api")
    now = datetime.now(UTC)
    rng = random.Random(3)
    rows = []
    owners: dict[str, str] = {}
    for i in range(params.posts):
        user = f"api-user-{i % params.accounts % params.users}"
        due = now + timedelta(minutes=rng.randrange(120, 200 * 24 * 60))
        row = post_row(user, accounts[i % params.accounts], f"api post {i}", "SCHEDULED", due, now)
        rows.append(row)
        owners[str(row[0])] = user
    columns: tuple[str, ...] = POST_COLUMNS
    if params.screened:
        columns += ("content_screening",)
        kept = screenings([row[POST_COLUMNS.index("text")] for row in rows])
        rows = [(*row, screening) for row, screening in zip(rows, kept, strict=True)]
    copy_rows(engine, "posts", columns, iter(rows))
    # Statistics, as a deployment's tables have them: this machine's PostgreSQL runs
    # without autovacuum, and without them ListScheduledPosts' plan scans every
    # scheduled post of every user (2.7 ms in PostgreSQL a page instead of 0.7 ms).
    with engine.connect() as connection:
        connection.execute(text("ANALYZE posts"))
        connection.execute(text("ANALYZE accounts"))
        connection.commit()
    engine.dispose()
    users = sorted({f"api-user-{i}" for i in range(params.users)})
    return list(owners), owners, users


def _points(params: ApiParams) -> list[dict[str, Any]]:
    points = []
    for rep in range(params.reps):
        for inflight in params.inflights:
            # Hello first, then each call over gRPC and REST side by side.
            common = {"inflight": inflight, "seconds": params.seconds, "warmup": params.warmup}
            points.append({"rep": rep, "transport": "grpc", "call": "Hello", **common})
            points.append({"rep": rep, "transport": "lean", "call": "GetPost", **common})
            for call in CALLS:
                points.append({"rep": rep, "transport": "grpc", "call": call, **common})
                points.append({"rep": rep, "transport": "rest", "call": call, **common})
    return points


def _load(spec: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = run_json(
        [sys.executable, "-m", "bench.load"], json.dumps(spec), timeout
    )
    return result


@contextlib.contextmanager
def _server(params: ApiParams, hello: bool = True) -> Iterator[tuple[dict[str, Any], int]]:
    """A seeded database, one `serve` (with its Envoy) and, if asked, the hello-world
    server; yields the load client's spec (without points) and the `serve` pid."""
    key = new_key()
    with fresh_database() as url:
        post_ids, owners, users = _seed(url, key, params)
        hello_port, lean_port = free_ports(2)
        baselines: dict[str, Child] = {}
        if hello:
            baselines["hello"] = Child(
                [sys.executable, "-m", "bench.hello", "--port", str(hello_port)],
                ready="listening",
            )
            baselines["lean"] = Child(
                [
                    *(sys.executable, "-m", "bench.lean", "--port", str(lean_port)),
                    *("--database", _libpq(url), "--jwt-secret", JWT_SECRET),
                ],
                ready="listening",
            )
        service = None
        try:
            for child in baselines.values():
                child.wait_ready(30)
            service, grpc_port, http_port = start_service(service_env(url, key))
            spec: dict[str, Any] = {
                "grpc": f"127.0.0.1:{grpc_port}",
                "rest": f"http://127.0.0.1:{http_port}",
                "token": mint_token(),
                "post_ids": post_ids,
                "owners": owners,
                "users": users,
                # The load client reads each server's CPU time around every point.
                "pids": {"serve": service.pid},
            }
            if baselines:
                spec["hello"] = f"127.0.0.1:{hello_port}"
                spec["lean"] = f"127.0.0.1:{lean_port}"
                spec["pids"].update({name: c.pid for name, c in baselines.items()})
            yield spec, service.pid
        finally:
            if service is not None:
                service.stop()
            for child in baselines.values():
                child.stop()


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as psycopg's own connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _mixed(spec: dict[str, Any], seconds: float, started: float) -> int:
    """Every call over gRPC and over REST in turn, 16 in flight, until `seconds` have
    passed since `started`; returns the number of 30-second rounds."""
    rounds = 0
    while (left := seconds - (time.monotonic() - started)) > 2:
        chunk = min(30.0, left - 1)
        spec["points"] = [
            {"transport": t, "call": c, "inflight": 16, "seconds": chunk / 6, "warmup": 0}
            for c in CALLS
            for t in ("grpc", "rest")
        ]
        results = _load(spec, timeout=chunk + 60)
        rounds += 1
        if rounds % 4 == 0:
            calls = sum(r["calls"] for r in results)
            log(f"memory: {time.monotonic() - started:.0f} s, {calls} calls in the last round")
    return rounds


def run(report: Report, params: ApiParams) -> None:
    with _server(params) as (spec, pid):
        sampler = RssSampler(pid)
        try:
            started = time.monotonic()
            spec["points"] = _points(params)
            log(f"api: {len(spec['points'])} points")
            results = _load(spec, timeout=len(spec["points"]) * (params.seconds + 10) + 60)
            report.details["api_points"] = results
            _summarise(report, results, params)
            _mixed(spec, params.memory_seconds, started)
            samples = sampler.stop()
        finally:
            sampler.stop()
        _memory(report, samples, "server RSS slope (API points)")


@dataclass
class SoakParams:
    seconds: float = 600.0
    api: ApiParams = field(default_factory=ApiParams)


def soak(report: Report, params: SoakParams) -> None:
    """Section 4 memory: one `serve` under a mixed gRPC + REST load at 16 in flight
    for `seconds`, RSS once a second."""
    with _server(params.api, hello=False) as (spec, pid):
        sampler = RssSampler(pid)
        try:
            log(f"soak: {params.seconds:.0f} s of mixed load at 16 in flight")
            _mixed(spec, params.seconds, time.monotonic())
            samples = sampler.stop()
        finally:
            sampler.stop()
        _memory(report, samples, "server RSS slope (soak)")


def _by(
    results: list[dict[str, Any]], transport: str, call: str, inflight: int
) -> list[dict[str, Any]]:
    return [
        r
        for r in results
        if r["transport"] == transport and r["call"] == call and r["inflight"] == inflight
    ]


def _ratio_median(
    results: list[dict[str, Any]], num: tuple[str, str], den: tuple[str, str], inflight: int
) -> float:
    """Median over repetitions of the ratio within each repetition (same-run baseline)."""
    ratios = []
    for a, b in zip(_by(results, *num, inflight), _by(results, *den, inflight), strict=True):
        if b["qps"] > 0:
            ratios.append(a["qps"] / b["qps"])
    return median(ratios)


# Goals at 16 in flight, each a ratio to a baseline measured in the same repetition:
# (call, baseline call, minimum QPS ratio).
QPS_GOALS = (
    ("GetPost", ("lean", "GetPost"), 0.8),
    ("SchedulePost", ("grpc", "Hello"), 0.12),
    ("ListScheduledPosts", ("grpc", "Hello"), 0.2),
)
# The serve process's CPU milliseconds per answered call at 16 in flight.
CPU_GOALS = {"GetPost": 0.6, "SchedulePost": 2.0, "ListScheduledPosts": 1.2}
REST_QPS_GOAL = 0.8  # REST through Envoy over direct gRPC, at 16 in flight
REST_ADDED_P50_GOAL_MS = 1.0  # Envoy's own cost at 1 in flight


def _cpu_ms(runs: list[dict[str, Any]], server: str) -> float:
    return median([r["cpu_ms_per_call"].get(server, 0.0) for r in runs])


def _summarise(report: Report, results: list[dict[str, Any]], params: ApiParams) -> None:
    errors = sum(r["errors"] for r in results)
    if errors:
        firsts = {r["first_error"] for r in results if r["first_error"]}
        log(f"api: {errors} failed calls: {sorted(firsts)[:3]}")
    baselines = [("grpc", "Hello"), ("lean", "GetPost")]
    for inflight in params.inflights:
        for transport, call in baselines + [(t, c) for c in CALLS for t in ("grpc", "rest")]:
            runs = _by(results, transport, call, inflight)
            if not runs:
                continue
            qps = median([r["qps"] for r in runs])
            p50 = median([r["p50_ms"] for r in runs])
            p99 = median([r["p99_ms"] for r in runs])
            errs = sum(r["errors"] for r in runs)
            server = {"grpc": "serve", "rest": "serve"}.get(transport, transport)
            if call == "Hello":
                server = "hello"
            name = f"{transport} {call} @{inflight}"
            section = "2 REST" if transport == "rest" else "1 gRPC"
            note = f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, {_cpu_ms(runs, server):.2f} ms CPU/call"
            if transport != "lean" and call != "Hello":
                hello = _ratio_median(results, (transport, call), ("grpc", "Hello"), inflight)
                lean = _ratio_median(results, (transport, call), ("lean", "GetPost"), inflight)
                note += f"; {hello:.2f}x hello, {lean:.2f}x lean"
            note += f", {errs} errors" if errs else ""
            report.add(Row(section, name + " QPS", qps, "calls/s", note=note))
    for call, baseline, goal in QPS_GOALS:
        ratio = _ratio_median(results, ("grpc", call), baseline, 16)
        name = f"{call} / {'lean' if baseline[0] == 'lean' else 'hello'} QPS @16"
        report.add(Row("1 gRPC", name, ratio, "x", f">= {goal}x", ratio >= goal))
    p99_ratio = _p99_ratio(results, ("grpc", "GetPost"), ("lean", "GetPost"), 16)
    report.add(Row("1 gRPC", "GetPost / lean p99 @16", p99_ratio, "x", "<= 1.3x", p99_ratio <= 1.3))
    schedule_p99 = median([r["p99_ms"] for r in _by(results, "grpc", "SchedulePost", 16)])
    report.add(
        Row("1 gRPC", "SchedulePost p99 @16", schedule_p99, "ms", "< 80 ms", schedule_p99 < 80)
    )
    for call, goal in CPU_GOALS.items():
        cpu = _cpu_ms(_by(results, "grpc", call, 16), "serve")
        report.add(
            Row("1 gRPC", f"{call} serve CPU/call @16", cpu, "ms", f"<= {goal} ms", cpu <= goal)
        )
    lean_cpu = _cpu_ms(_by(results, "lean", "GetPost", 16), "lean")
    report.add(Row("1 gRPC", "lean GetPost CPU/call @16", lean_cpu, "ms"))
    for call in CALLS:
        ratio = _ratio_median(results, ("rest", call), ("grpc", call), 16)
        report.add(
            Row(
                "2 REST",
                f"{call} REST/gRPC QPS @16",
                ratio,
                "x",
                f">= {REST_QPS_GOAL}x",
                ratio >= REST_QPS_GOAL,
            )
        )
        added = []
        for inflight in params.inflights:
            pairs = zip(
                _by(results, "rest", call, inflight),
                _by(results, "grpc", call, inflight),
                strict=True,
            )
            added.append((inflight, median([a["p50_ms"] - b["p50_ms"] for a, b in pairs])))
        at1 = dict(added).get(1, added[0][1])
        note = ", ".join(f"@{n}: {ms:+.2f} ms" for n, ms in added)
        goal = REST_ADDED_P50_GOAL_MS
        report.add(
            Row("2 REST", f"{call} added p50 @1", at1, "ms", f"<= {goal} ms", at1 <= goal, note)
        )


def _p99_ratio(
    results: list[dict[str, Any]], num: tuple[str, str], den: tuple[str, str], inflight: int
) -> float:
    """Median over repetitions of the p99 ratio within each repetition."""
    ratios = []
    for a, b in zip(_by(results, *num, inflight), _by(results, *den, inflight), strict=True):
        if b["p99_ms"] > 0:
            ratios.append(a["p99_ms"] / b["p99_ms"])
    return median(ratios)


def _memory(report: Report, samples: list[tuple[float, float]], name: str) -> None:
    if not samples:
        return
    duration = samples[-1][0]
    # The first tenth is warm-up (imports, pools, caches filling).
    settled = [s for s in samples if s[0] >= duration / 10]
    start, end = settled[0][1], settled[-1][1]
    peak = max(r for _, r in samples)
    slope = slope_per_minute(settled)
    growth = slope * (duration / 60) / start * 100 if start else 0.0
    report.details.setdefault("rss_samples", {})[name] = samples[:: max(1, len(samples) // 120)]
    note = (
        f"{duration / 60:.1f} min; start {start:.1f} MiB, end {end:.1f} MiB, "
        f"max {peak:.1f} MiB (first {samples[0][1]:.1f} MiB)"
    )
    report.add(
        Row(
            "4 growth",
            name,
            slope,
            "MiB/min",
            "flat (< 5% over run)",
            growth < 5,
            note + f"; {growth:+.1f}% over the run",
        )
    )


def quick_params() -> ApiParams:
    return ApiParams(seconds=1.0, warmup=0.25, reps=1)
