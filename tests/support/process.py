"""Run `post-management serve` as a real process, the way the README does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import requests

from tests.support.ports import free_ports

CLI = str(Path(sys.executable).parent / "post-management")


class ServiceProcess:
    def __init__(
        self,
        env: dict[str, str],
        cwd: Path,
        args: tuple[str, ...] = (),
        command: str = "serve",
    ) -> None:
        self.cwd = cwd
        self.data_dir = cwd / env.get("DATA_DIR", "var")
        grpc, http, admin, metrics = free_ports(4)
        self.grpc_port = int(env.setdefault("GRPC_PORT", str(grpc)))
        self.http_port = int(env.setdefault("HTTP_PORT", str(http)))
        env.setdefault("ENVOY_ADMIN_PORT", str(admin))
        env.setdefault("METRICS_PORT", str(metrics))
        self.lines: list[str] = []
        self._ready = threading.Event()
        full_env = {**os.environ, **env}
        self.process = subprocess.Popen(
            [CLI, command, *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(("ready", "worker ready")):
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("service did not start:\n" + "\n".join(self.lines))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def printed_token(self) -> str:
        for line in self.lines:
            match = re.search(r"token for user 'local-user' \(1 hour\): (\S+)", line)
            if match:
                return match.group(1)
        raise AssertionError("no token printed:\n" + "\n".join(self.lines))

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()  # a hung shutdown still leaves nothing running
            raise
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """SIGKILL the service and what it started: its Envoy, its embedded PostgreSQL."""
        if self.process.poll() is None:
            try:
                children = psutil.Process(self.process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            self.process.kill()
            self.process.wait(timeout=10)
            for child in children:
                with suppress(psutil.NoSuchProcess):
                    child.kill()
            psutil.wait_procs(children, timeout=10)
        self._stop_embedded_postgres()

    def _stop_embedded_postgres(self) -> None:
        # pgserver detaches PostgreSQL into its own session: only its pid file finds it.
        pid_file = self.data_dir / "postgres" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            postmaster = psutil.Process(pid)
            if str(self.data_dir / "postgres") not in postmaster.cmdline():
                return  # a stale pid file; that pid now belongs to someone else
        except (OSError, ValueError, IndexError, psutil.Error):
            return
        postmaster.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        _, alive = psutil.wait_procs([postmaster], timeout=10)
        for process in alive:
            process.kill()


@contextmanager
def running_service(env: dict[str, str], cwd: Path) -> Iterator[ServiceProcess]:
    """`post-management serve` (with its Envoy), ready, stopped with SIGTERM afterwards."""
    process = ServiceProcess(env, cwd)
    try:
        process.wait_ready()
        yield process
    finally:
        process.terminate()


@contextmanager
def rest_session(token: str | None = None) -> Iterator[requests.Session]:
    """An HTTP session for loopback calls: never through a proxy, optionally signed in."""
    with requests.Session() as session:
        session.trust_env = False
        if token is not None:
            session.headers["Authorization"] = f"Bearer {token}"
        yield session
