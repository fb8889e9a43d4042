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


def local_secrets(data_dir: Path) -> dict[str, str]:
    """JWT and encryption secrets, generated on first use and kept (mode 0600)."""
    path = data_dir / "secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "jwt_secret": secrets.token_urlsafe(48),
        "jwt_refresh_secret": secrets.token_urlsafe(48),
        "encryption_keys": FernetBox.generate_key(),
    }
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(values, handle)
    return values
