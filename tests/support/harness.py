"""Run the real gRPC server in a background thread, on a free port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import grpc
from cryptography.fernet import Fernet

from post_management import bootstrap
from post_management.bootstrap.settings import Settings, load_settings
from post_management.domain.auth import Role
from post_management.entrypoints.grpc.server import GrpcServer

JWT_SECRET = "test-secret-that-is-long-enough-0123456789"


def settings_for(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "jwt_secret": JWT_SECRET,
        "x_mode": "emulator",
        "encryption_keys": Fernet.generate_key().decode(),
        "grpc_port": 0,
        "shutdown_grace_seconds": 5,
    }
    values.update(overrides)
    return load_settings(**values)


class RunningServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.container = bootstrap.build(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self._call(self._create())
        self.address = f"127.0.0.1:{self.server.port}"

    async def _create(self) -> GrpcServer:
        server = GrpcServer(
            self.container.services,
            "127.0.0.1",
            0,
            self.settings.server.limits(),
        )
        await server.start()
        return server

    def _call(self, coroutine: object) -> GrpcServer:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        return future.result(timeout=30)  # type: ignore[no-any-return]

    @property
    def database_url(self) -> str:
        url = self.settings.database.database_url
        assert url is not None  # the tests' servers are always given one
        return url.get_secret_value()

    def token(self, subject: str, role: Role = Role.USER, ttl: float = 600) -> str:
        return self.container.tokens.mint(subject, role, timedelta(seconds=ttl))

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    def stop(self, grace: float = 1.0) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(grace), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        asyncio.run(self.container.close())


@contextmanager
def running_server(settings: Settings) -> Iterator[RunningServer]:
    server = RunningServer(settings)
    try:
        yield server
    finally:
        server.stop()


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
