"""scripts/coverage_layers.py: files land in the layer of the import-linter contract."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "coverage_layers.py"


@pytest.fixture(scope="module")
def layers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coverage_layers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["coverage_layers"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("path", "layer"),
    [
        ("src/post_management/domain/post.py", "domain"),
        ("src/post_management/adapters/db/engine.py", "adapters"),
        ("src/post_management/entrypoints/grpc/server.py", "entrypoints"),
        ("src/post_management/bootstrap/container.py", "bootstrap"),
        ("src/post_management/entrypoints/cli.py", "entrypoints"),
        ("src/post_management/bootstrap/settings.py", "bootstrap"),
        ("src/post_management/__init__.py", "other"),
        ("src/x_emulator/routes_tweets.py", "x_emulator"),
        ("/elsewhere/module.py", "other"),
    ],
)
def test_layer_of(layers: ModuleType, path: str, layer: str) -> None:
    assert layers.layer_of(path) == layer


def test_the_layers_are_the_contracts(layers: ModuleType) -> None:
    import tomllib

    config = tomllib.loads((SCRIPT.parents[1] / "pyproject.toml").read_text())
    contract = config["tool"]["importlinter"]["contracts"][0]["layers"]
    named = {
        part.strip().removeprefix("post_management.")
        for item in contract
        for part in item.split("|")
    }
    assert set(layers.LAYERS) <= named
    assert named - set(layers.LAYERS) <= {"launcher"}  # a single-module layer, under other


def test_figures_count_lines_and_branches_together(layers: ModuleType) -> None:
    tally = layers.Tally()
    tally.add({"num_statements": 10, "covered_lines": 9, "num_branches": 10, "covered_branches": 5})
    assert tally.row("x").split() == ["x", "10", "90.0%", "10", "50.0%", "70.0%"]
    assert layers.Tally().row("empty").split() == ["empty", "0", "-", "0", "-", "-"]


def test_missing_data_is_an_error(layers: ModuleType, tmp_path: Path) -> None:
    assert layers.main(["--data-file", str(tmp_path / "none")]) == 1
