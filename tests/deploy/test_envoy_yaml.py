"""envoy/envoy.yaml's rendering as Envoy itself reads it (`envoy --mode validate`,
offline); tests/unit/test_envoy_config.py checks the renderer."""

from __future__ import annotations

import subprocess
from pathlib import Path

from post_management.entrypoints.envoy_config import (
    DEFAULT_DESCRIPTOR_PATH,
    envoy_binary,
    render_default_envoy_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = REPO_ROOT / "gen" / "xmp_posts_v1.binpb"
VALIDATE_TIMEOUT_S = 60


def test_envoy_accepts_the_default_config(tmp_path: Path) -> None:
    # The default points at the image's descriptor path; validate against gen/'s copy.
    config = render_default_envoy_config().replace(DEFAULT_DESCRIPTOR_PATH, str(DESCRIPTOR))
    path = tmp_path / "envoy.yaml"
    path.write_text(config)
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
