"""Print line and branch coverage of src/ per layer, from the .coverage data of a run.

`make test` runs it after pytest (pytest-cov enforces the fail-under of pyproject.toml):
    .venv/bin/python scripts/coverage_layers.py [--data-file .coverage]
Layers are those of the import-linter contract in pyproject.toml.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import coverage

PACKAGE = "post_management"
# The X API stand-in, a package of its own beside the service (src/x_emulator).
EMULATOR = "x_emulator"
# Outermost first, as in the layers contract.
LAYERS = (
    "launcher",
    "bootstrap",
    "entrypoints",
    "adapters",
    "services",
    "observability",
    "ports",
    "domain",
)


@dataclass
class Tally:
    statements: int = 0
    covered_lines: int = 0
    branches: int = 0
    covered_branches: int = 0

    def add(self, summary: dict[str, int]) -> None:
        self.statements += summary["num_statements"]
        self.covered_lines += summary["covered_lines"]
        self.branches += summary["num_branches"]
        self.covered_branches += summary["covered_branches"]

    @staticmethod
    def percent(part: int, whole: int) -> str:
        return f"{100 * part / whole:6.1f}%" if whole else "     -"

    def row(self, name: str) -> str:
        both = self.percent(
            self.covered_lines + self.covered_branches, self.statements + self.branches
        )
        return (
            f"{name:<14}{self.statements:>7}{self.percent(self.covered_lines, self.statements):>9}"
            f"{self.branches:>9}{self.percent(self.covered_branches, self.branches):>9}{both:>9}"
        )


def layer_of(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    if EMULATOR in parts:
        return EMULATOR
    if PACKAGE not in parts:
        return "other"
    below = parts[parts.index(PACKAGE) + 1 :]
    first = below[0] if below else "__init__"
    return first if first in LAYERS else "other"


def tallies(data_file: Path) -> dict[str, Tally]:
    cov = coverage.Coverage(data_file=str(data_file))
    cov.load()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "coverage.json"
        cov.json_report(outfile=str(out))
        files = json.loads(out.read_text())["files"]
    result: dict[str, Tally] = {}
    for path, entry in files.items():
        result.setdefault(layer_of(path), Tally()).add(entry["summary"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", type=Path, default=Path(".coverage"))
    args = parser.parse_args(argv)
    if not args.data_file.exists():
        print(f"no coverage data at {args.data_file}", file=sys.stderr)
        return 1
    by_layer = tallies(args.data_file)
    total = Tally()
    print(f"{'layer':<14}{'stmts':>7}{'lines':>9}{'branches':>9}{'branch':>9}{'total':>9}")
    for name in (*LAYERS, EMULATOR, "other"):
        if name in by_layer:
            tally = by_layer[name]
            print(tally.row(name))
            total.add(
                {
                    "num_statements": tally.statements,
                    "covered_lines": tally.covered_lines,
                    "num_branches": tally.branches,
                    "covered_branches": tally.covered_branches,
                }
            )
    print(total.row("src/ (all)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
