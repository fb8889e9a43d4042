"""Secrets generated under DATA_DIR: a file written by an older version gets the
secrets it lacks (HMAC_SECRET) added, and keeps the ones it has."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from post_management.adapters.local import local_secrets


def test_an_older_file_gains_the_missing_secret_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    old = {"jwt_secret": "j" * 40, "jwt_refresh_secret": "r" * 40, "encryption_keys": "k"}
    path.write_text(json.dumps(old))
    path.chmod(0o600)

    values = local_secrets(tmp_path)

    assert {name: values[name] for name in old} == old
    assert len(values["hmac_secret"]) >= 32
    assert json.loads(path.read_text()) == values
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_secrets(tmp_path) == values  # stable from then on


def test_a_first_run_generates_every_secret(tmp_path: Path) -> None:
    values = local_secrets(tmp_path / "data")
    # No refresh-token secret: the service has no refresh tokens.
    assert set(values) == {"jwt_secret", "encryption_keys", "hmac_secret"}
    assert local_secrets(tmp_path / "data") == values
