"""What GetServiceInfo says about this build: name, version, commit, start time and
the components this process chose."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from post_management.entrypoints.grpc.info_servicer import BuildInfo

NAME = "post-management"


def build_info(components: dict[str, str]) -> BuildInfo:
    return BuildInfo(
        name=NAME,
        version=version(),
        git_commit=git_commit(),
        started_at=datetime.now(UTC),
        components=components,
    )


def git_commit() -> str:
    """GIT_COMMIT when set, else the checkout's HEAD, else "unknown"."""
    if commit := os.environ.get("GIT_COMMIT"):
        return commit
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            cwd=Path(__file__).parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def version() -> str:
    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:
        return "0.0.0"
