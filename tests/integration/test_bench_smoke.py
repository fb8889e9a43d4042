"""Each benchmark function with tiny parameters, to keep bench/ from rotting.

The numbers are not checked (this machine is shared and noisy), only that every
part runs end to end and reports its rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import api, common, dispatch, growth, profiling
from bench.common import Report
from bench.run import format_table

from tests.conftest import MACHINE_PG


@pytest.fixture(autouse=True)
def machine_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "ADMIN_PG", MACHINE_PG)


def test_api_rows_and_memory() -> None:
    report = Report()
    params = api.ApiParams(
        seconds=0.3, warmup=0.1, reps=1, inflights=(16,), memory_seconds=0, posts=200
    )
    api.run(report, params)
    names = {row.name for row in report.rows}
    assert "GetPost / lean QPS @16" in names
    assert "GetPost / lean p99 @16" in names
    assert "SchedulePost / hello QPS @16" in names
    assert "ListScheduledPosts serve CPU/call @16" in names
    assert "SchedulePost REST/gRPC QPS @16" in names
    assert "GetPost added p50 @1" in names
    assert "server RSS slope (API points)" in names
    points = report.details["api_points"]
    assert all(point["calls"] > 0 and not point["errors"] for point in points)
    # The lean reference answers the same posts, and each point charges its own server.
    assert {p["transport"] for p in points} == {"grpc", "rest", "lean"}
    lean = next(p for p in points if p["transport"] == "lean")
    assert lean["cpu_ms_per_call"]["lean"] > lean["cpu_ms_per_call"]["serve"]
    served = next(p for p in points if p["transport"] == "grpc" and p["call"] == "GetPost")
    assert served["cpu_ms_per_call"]["serve"] > served["cpu_ms_per_call"]["lean"]
    assert "NOT MET" in format_table(report.rows) or "met" in format_table(report.rows)


def test_soak_samples_rss_under_mixed_load() -> None:
    report = Report()
    api.soak(report, api.SoakParams(seconds=3.5, api=api.ApiParams(posts=200)))
    row = next(row for row in report.rows if row.name == "server RSS slope (soak)")
    assert row.met is not None
    assert report.details["rss_samples"]["server RSS slope (soak)"]


def test_dispatch_burst_publishes_each_post_once() -> None:
    result = dispatch.burst(40, processes=1, command="worker")
    assert result["published"] == 40
    assert result["on_x"] == 40 and result["doubled"] == 0
    # CPU of the worker per post and of the emulator per X request (psutil).
    assert result["cpu_ms_per_post"] > 0
    assert result["x_requests"] >= 40 and result["emulator_ms_per_request"] > 0


def test_growth_measures_and_explains() -> None:
    report = Report()
    growth.run(report, growth.Params(small=1_200, large=2_000, samples=3, claims=2))
    rows = {row.name: row for row in report.rows}
    # Tables this small may well be scanned: only that plans were captured is checked,
    # every statement of each path (a schedule's lock, taken times and held save).
    assert rows["schedule plans use indexes"].value >= 3
    assert rows["list plans use indexes"].value >= 1
    assert rows["claim plans use indexes"].value >= 1
    assert rows["list latency 2,000 / 1,200"].value > 0


def test_profile_summary_groups_frames(tmp_path: Path) -> None:
    raw = tmp_path / "sample.raw"
    raw.write_text(
        "process 1;run (post_management/services/posts.py);execute (sqlalchemy/engine/base.py) 3\n"
        "process 1;observed (post_management/entrypoints/grpc/telemetry.py) 1\n"
    )
    found = profiling.summarise(raw)
    assert found["samples"] == 4
    assert dict(found["self_by_group"])["SQLAlchemy"] == 75.0
