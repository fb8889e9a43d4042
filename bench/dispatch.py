"""Section 3: the publishing engine against the X emulator (its own process).

(a) a burst of posts due at one instant over as many accounts, (b) a steady rate of
due posts, (c) the burst shared by two worker processes. Lateness is published_at -
due_at as the service recorded it; duplicates are counted by text on the emulator.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import text

from bench.common import (
    POST_COLUMNS,
    Child,
    EmulatorProcess,
    Report,
    Row,
    copy_rows,
    fresh_database,
    log,
    median,
    new_key,
    post_row,
    seed_accounts,
    service_env,
    start_service,
)
from post_management.adapters.db.engine import make_engine

# Settings for throughput; every one is an ordinary environment variable.
ENGINE_ENV = {
    # A tick claims at most 100 posts (one per account): more ticks per second.
    "DISPATCH_INTERVAL_SECONDS": "0.05",
    # Posts one process holds between claim and settlement: larger commit batches.
    "PUBLISH_MAX_IN_FLIGHT": "512",
    "RECONCILE_INTERVAL_SECONDS": "5",
}


@dataclass
class Params:
    burst_posts: int = 10_000
    reps: int = 1
    steady_rate: float = 100.0
    steady_seconds: float = 30.0
    steady_accounts: int = 1_000
    env: dict[str, str] = field(default_factory=lambda: dict(ENGINE_ENV))


def quick_params() -> Params:
    return Params(burst_posts=1_000, reps=1, steady_seconds=6.0)


def _lateness(url: str) -> dict[str, float]:
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        row = connection.execute(
            text(
                """
                SELECT count(*) AS published,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY lateness) AS p50,
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY lateness) AS p99,
                       max(lateness) AS max,
                       extract(epoch FROM max(published_at) - min(due_at)) AS drain
                FROM (SELECT published_at, due_at,
                             extract(epoch FROM published_at - due_at) AS lateness
                      FROM posts WHERE state = 'PUBLISHED') AS done
                """
            )
        ).one()
        states: dict[str, int] = dict(
            connection.execute(text("SELECT state, count(*) FROM posts GROUP BY state")).all()
        )
    engine.dispose()
    return {
        "published": float(row.published),
        "p50_s": float(row.p50 or 0),
        "p99_s": float(row.p99 or 0),
        "max_s": float(row.max or 0),
        "drain_s": float(row.drain or 0),
        "states": states,  # type: ignore[dict-item]
    }


def _cpu_seconds(times: Any) -> float:
    return float(times.user + times.system)


def _published(url: str) -> int:
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM posts WHERE state = 'PUBLISHED'")
        ).scalar_one()
    engine.dispose()
    return int(count)


def _run(
    posts: int,
    accounts: int,
    due: Callable[[int, datetime], datetime],
    processes: int,
    command: str,
    env_extra: dict[str, str],
    deadline_s: float,
    on_start: Callable[[list[int]], None] | None = None,
) -> dict[str, Any]:
    """Seed accounts, start the processes, insert the due posts, wait until they
    are all published (bounded), and measure."""
    key = new_key()
    with fresh_database() as url:
        engine = make_engine(url, pool_size=1)
        account_ids = seed_accounts(engine, key, accounts, max(1, accounts // 100), "d")
        emulator = EmulatorProcess()
        children: list[Child] = []
        try:
            env = service_env(url, key, X_API_BASE_URL=emulator.base_url, **env_extra)
            args = ("--no-envoy",) if command == "serve" else ()
            for _ in range(processes):
                children.append(start_service(dict(env), command, args)[0])
            procs = [psutil.Process(c.pid) for c in children]
            emulator_proc = psutil.Process(emulator.child.pid)
            cpu_before = [p.cpu_times() for p in procs]
            emulator_before = emulator_proc.cpu_times()
            requests_before = sum(emulator.control.counters().values())
            start = datetime.now(UTC) + timedelta(seconds=2)
            now = datetime.now(UTC)
            rows = (
                post_row(
                    f"d-user-{i % accounts % max(1, accounts // 100)}",
                    account_ids[i % accounts],
                    f"dispatch post {i}",
                    "SCHEDULED",
                    due(i, start),
                    now,
                )
                for i in range(posts)
            )
            copy_rows(engine, "posts", POST_COLUMNS, rows)
            if on_start is not None:
                on_start([c.pid for c in children])
            until = time.monotonic() + deadline_s
            while time.monotonic() < until and _published(url) < posts:
                time.sleep(0.25)
            cpu_after = [p.cpu_times() for p in procs]
            emulator_after = emulator_proc.cpu_times()
            requests = sum(emulator.control.counters().values()) - requests_before
            measured = _lateness(url)
            on_x = Counter(p["text"] for p in emulator.control.posts())
        finally:
            for child in children:
                child.stop()
            emulator.stop()
            engine.dispose()
    cpu = [_cpu_seconds(a) - _cpu_seconds(b) for a, b in zip(cpu_after, cpu_before, strict=True)]
    emulator_cpu = _cpu_seconds(emulator_after) - _cpu_seconds(emulator_before)
    drain = measured["drain_s"]
    published = measured["published"]
    return {
        **measured,
        "posts": posts,
        "processes": processes,
        "rate": measured["published"] / drain if drain > 0 else 0.0,
        # CPU seconds per second of drain: near 1.0 means one core's worth (GIL bound).
        "cpu_per_process": [round(c / drain, 2) if drain else 0.0 for c in cpu],
        # The workers' CPU time (user + system, psutil) over the posts they published.
        "cpu_ms_per_post": 1000 * sum(cpu) / published if published else 0.0,
        # The stand-in for X: its CPU time over the X requests it answered.
        "x_requests": requests,
        "emulator_ms_per_request": 1000 * emulator_cpu / requests if requests else 0.0,
        "emulator_cores": round(emulator_cpu / drain, 2) if drain else 0.0,
        "on_x": sum(on_x.values()),
        "doubled": sum(1 for n in on_x.values() if n > 1),
    }


def burst(
    posts: int,
    processes: int = 1,
    command: str = "serve",
    env: dict[str, str] | None = None,
    on_start: Callable[[list[int]], None] | None = None,
) -> dict[str, Any]:
    return _run(
        posts,
        posts,
        lambda i, start: start,
        processes,
        command,
        env if env is not None else dict(ENGINE_ENV),
        deadline_s=max(60.0, posts / 50),
        on_start=on_start,
    )


def steady(rate: float, seconds: float, accounts: int, env: dict[str, str]) -> dict[str, Any]:
    posts = int(rate * seconds)
    return _run(
        posts,
        accounts,
        lambda i, start: start + timedelta(seconds=i / rate),
        1,
        "serve",
        env,
        deadline_s=seconds + 60,
    )


def run(report: Report, params: Params) -> None:
    settings = ", ".join(f"{k}={v}" for k, v in params.env.items())
    ones, twos = [], []
    for rep in range(params.reps):
        # Alternate, so that noise on the machine falls on both alike. Worker
        # processes both times: the same process kind, one or two of it.
        ones.append(burst(params.burst_posts, 1, "worker", params.env))
        log(f"dispatch: burst x1 #{rep}: {ones[-1]['rate']:.0f}/s")
        twos.append(burst(params.burst_posts, 2, "worker", params.env))
        log(f"dispatch: burst x2 #{rep}: {twos[-1]['rate']:.0f}/s")
    held = steady(params.steady_rate, params.steady_seconds, params.steady_accounts, params.env)
    report.details["dispatch"] = {"burst_1": ones, "burst_2": twos, "steady": held}

    n = params.burst_posts
    rate = median([r["rate"] for r in ones])
    late = median([r["p99_s"] for r in ones])
    note = (
        f"{n:,} posts over {n:,} accounts; lateness p50 {median([r['p50_s'] for r in ones]):.2f} s,"
        f" max {median([r['max_s'] for r in ones]):.2f} s; worker CPU "
        f"{median([r['cpu_per_process'][0] for r in ones]):.2f} cores; {settings}"
    )
    complete = all(r["published"] == n for r in ones)
    report.add(
        Row(
            "3 dispatch",
            "(a) burst drain, 1 worker",
            rate,
            "posts/s",
            ">= 600/s",
            rate >= 600 and complete,
            note + ("" if complete else "; NOT ALL PUBLISHED"),
        ),
        Row("3 dispatch", "(a) burst lateness p99", late, "s", "<= 20 s", late <= 20 and complete),
    )
    per_post = median([r["cpu_ms_per_post"] for r in ones])
    report.add(
        Row(
            "3 dispatch",
            "(a) worker CPU per published post",
            per_post,
            "ms",
            "<= 1.2 ms",
            per_post <= 1.2,
            "user + system CPU of the worker process (psutil) from its start to the last post"
            f" published, over the posts; two workers: "
            f"{median([r['cpu_ms_per_post'] for r in twos]):.2f} ms",
        ),
    )
    emulator = median([r["emulator_ms_per_request"] for r in ones])
    report.add(
        Row(
            "3 dispatch",
            "(a) X emulator CPU per request",
            emulator,
            "ms",
            note=f"{median([r['x_requests'] for r in ones]):,.0f} X requests;"
            f" {median([r['emulator_cores'] for r in ones]):.2f} cores during the drain"
            f" (two workers: {median([r['emulator_ms_per_request'] for r in twos]):.2f} ms,"
            f" {median([r['emulator_cores'] for r in twos]):.2f} cores)",
        ),
    )
    steady_late = held["p99_s"]
    report.add(
        Row(
            "3 dispatch",
            f"(b) steady {params.steady_rate:.0f}/s lateness p99",
            steady_late,
            "s",
            "< 1.5 s",
            steady_late < 1.5 and held["published"] == held["posts"],
            f"{params.steady_seconds:.0f} s, {held['published']:.0f}/{held['posts']} published;"
            f" p50 {held['p50_s']:.3f} s, max {held['max_s']:.3f} s",
        )
    )
    doubled = sum(r["doubled"] for r in twos)
    on_x = [r["on_x"] for r in twos]
    report.add(
        Row(
            "3 dispatch",
            "(c) two workers: doubled posts",
            doubled,
            "",
            "0",
            doubled == 0 and all(x == n for x in on_x),
            f"on X: {on_x} of {n:,} each",
        )
    )
    rate2 = median([r["rate"] for r in twos])
    cpu2 = median([sum(r["cpu_per_process"]) for r in twos])
    ratio = median([b["rate"] / a["rate"] for a, b in zip(ones, twos, strict=True) if a["rate"]])
    report.add(
        Row(
            "3 dispatch",
            "(c) two workers / one: drain rate",
            ratio,
            "x",
            ">= 1.6x",
            ratio >= 1.6 and all(r["published"] == n for r in twos),
            f"{rate2:,.0f} posts/s with two, using {cpu2:.2f} cores together",
        )
    )
