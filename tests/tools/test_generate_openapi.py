"""scripts/generate_openapi.py run as a script: docs/openapi.yaml is what it writes, two
runs (two interpreters) write the same document, and the document is valid OpenAPI.
tests/unit/test_openapi.py checks the document against the http rules and the contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "openapi.yaml"
SCRIPT = ROOT / "scripts" / "generate_openapi.py"


def test_committed_document_is_what_the_script_produces(tmp_path: Path) -> None:
    out = tmp_path / "openapi.yaml"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True)
    assert DOCUMENT.read_text() == out.read_text(), (
        "docs/openapi.yaml is stale: .venv/bin/python scripts/generate_openapi.py"
    )


def test_the_script_is_deterministic() -> None:
    first = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", "-"], check=True, capture_output=True, text=True
    ).stdout
    second = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", "-"], check=True, capture_output=True, text=True
    ).stdout
    assert first == second


def test_document_validates_as_openapi() -> None:
    from openapi_spec_validator import validate

    validate(yaml.safe_load(DOCUMENT.read_text()))
