"""`python -m bench [--quick | --soak] [--only api,dispatch,growth,profile] [--json PATH]`.

Runs each section against real processes on loopback ports and prints one table:
every figure beside its goal, met or not, and the wall time at the end. A full run
takes about 7 to 8 minutes, `--quick` about 1.5; `--soak` runs only the 10-minute
memory soak (RSS of one `serve` under mixed load), which the default run leaves out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Run as `bench/run.py` too: the repository root must be importable, and bench/
# itself must not be (its module names would shadow top-level ones).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench import api, dispatch, growth, profiling  # noqa: E402
from bench.common import Report, Row, log  # noqa: E402

SECTIONS = ("api", "dispatch", "growth", "profile")


def format_table(rows: list[Row]) -> str:
    header = ("section", "measure", "value", "goal", "met", "notes")
    lines = []
    # By section (stable: each section keeps its own order).
    for row in sorted(rows, key=lambda r: r.section):
        value = f"{row.value:,.2f} {row.unit}" if row.unit else f"{row.value:,.2f}"
        met = "" if row.met is None else ("met" if row.met else "NOT MET")
        lines.append((row.section, row.name, value, row.goal, met, row.note))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header) - 1)]
    out = []
    for line in [header, *lines]:
        cells = [str(c).ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        out.append(" | ".join([*cells, line[-1]]).rstrip())
        if line is header:
            out.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 5)
    return "\n".join(out)


def format_markdown(rows: list[Row]) -> str:
    out = ["| section | measure | value | goal | met | notes |", "|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: r.section):
        value = f"{row.value:,.2f} {row.unit}".strip()
        met = "" if row.met is None else ("met" if row.met else "**not met**")
        cells = (row.section, row.name, value, row.goal, met, row.note)
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 1.5 minutes, smaller runs")
    parser.add_argument(
        "--soak",
        action="store_true",
        help="only the memory soak: one serve under mixed load, RSS once a second",
    )
    parser.add_argument(
        "--soak-seconds", type=float, default=600.0, help="length of --soak (default 600)"
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--json", type=Path, help="also write rows and details here")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--table-from", type=Path, help="print the table of an earlier --json file, run nothing"
    )
    began = time.monotonic()
    args = parser.parse_args(argv)
    render = format_markdown if args.markdown else format_table
    if args.table_from:
        saved = json.loads(args.table_from.read_text())
        print(render([Row(**row) for row in saved["rows"]]))
        return
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    report = Report()
    report.details["mode"] = "soak" if args.soak else "quick" if args.quick else "full"
    if args.soak:
        log("== soak")
        started = time.monotonic()
        api.soak(report, api.SoakParams(seconds=args.soak_seconds))
        report.details["seconds"] = {"soak": round(time.monotonic() - started, 1)}
        chosen = []
    for section in SECTIONS:
        if section not in chosen:
            continue
        log(f"== {section}")
        started = time.monotonic()
        if section == "api":
            api.run(report, api.quick_params() if args.quick else api.ApiParams())
        elif section == "dispatch":
            dispatch.run(report, dispatch.quick_params() if args.quick else dispatch.Params())
        elif section == "growth":
            growth.run(report, growth.quick_params() if args.quick else growth.Params())
        elif section == "profile":
            profiling.run(report, profiling.quick_params() if args.quick else profiling.Params())
        report.details.setdefault("seconds", {})[section] = round(time.monotonic() - started, 1)
    report.details["total_seconds"] = round(time.monotonic() - began, 1)
    print(render(report.rows))
    sections = ", ".join(f"{k} {v:.0f} s" for k, v in report.details.get("seconds", {}).items())
    print(
        f"\n({report.details['mode']} run, wall time {report.details['total_seconds']:.0f} s"
        + (f": {sections})" if sections else ")")
    )
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=1, default=str))


if __name__ == "__main__":
    main()
