"""Embedded defaults: a local PostgreSQL and secrets generated once into DATA_DIR,
so a first run needs no configuration and later runs keep their data."""

from __future__ import annotations

import json
import os
import secrets
import warnings
from pathlib import Path
from typing import Any

from post_management.adapters.crypto import FernetBox


class EmbeddedPostgres:
    """PostgreSQL from the pgserver wheel, data under `data_dir/postgres`."""

    def __init__(self, data_dir: Path) -> None:
        # platformdirs warns about XDG_RUNTIME_DIR, which pgserver does not use.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server  # heavy; embedded defaults only

        self._server: Any = get_server(data_dir / "postgres", cleanup_mode="stop")

    @property
    def url(self) -> str:
        return str(self._server.get_uri())

    def stop(self) -> None:
        self._server.cleanup()


def _generated() -> dict[str, str]:
    return {
        "jwt_secret": secrets.token_urlsafe(48),
        "encryption_keys": FernetBox.generate_key(),
        "hmac_secret": secrets.token_urlsafe(48),
    }


def local_secrets(data_dir: Path) -> dict[str, str]:
    """JWT, encryption and HMAC secrets, generated on first use and kept (mode 0600);
    a file from an older version gets the secrets it lacks added, the rest kept."""
    path = data_dir / "secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        missing = {name: value for name, value in _generated().items() if name not in stored}
        if not missing:
            return stored
        stored.update(missing)
        replacement = path.with_name("secrets.json.new")
        replacement.unlink(missing_ok=True)
        _write_private(replacement, stored)
        replacement.replace(path)
        return stored
    data_dir.mkdir(parents=True, exist_ok=True)
    values = _generated()
    _write_private(path, values)
    return values


def _write_private(path: Path, values: dict[str, str]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(values, handle)
