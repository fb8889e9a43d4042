"""What each command of `post-management` does, once its arguments are parsed."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from datetime import timedelta

from post_management.adapters.db.engine import make_engine, migrate
from post_management.bootstrap.container import build
from post_management.bootstrap.event_loops import loop_factory
from post_management.bootstrap.secrets import token_codec
from post_management.bootstrap.settings import ConfigError, Settings
from post_management.domain.auth import Role
from post_management.observability import logs


def configure_logging(settings: Settings) -> None:
    logs.configure(settings.telemetry.log_level)
    # These narrate every step (commands run, jobs added, each migration applied);
    # only their problems belong in the service's log.
    for chatty in ("pgserver", "apscheduler", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def serve(settings: Settings, *, with_envoy: bool) -> None:
    """The gRPC server, Envoy for REST (unless with_envoy is False) and the jobs.

    On uvloop's event loop where it is installed (not on Windows): every call wakes
    the loop several times (grpc's completions, the database read), and uvloop's
    loop costs GetPost about a tenth less CPU than asyncio's (docs/benchmarks.md)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_run(settings, grpc=True, envoy=with_envoy))


def work(settings: Settings) -> None:
    """The jobs without a gRPC server: a worker process."""
    asyncio.run(_run(settings, grpc=False, envoy=False))


async def _run(settings: Settings, *, grpc: bool, envoy: bool) -> None:
    """Build, start, wait for SIGTERM or SIGINT, stop, and close whatever started."""
    container = await asyncio.to_thread(build, settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await container.start(grpc=grpc, envoy=envoy)
        if not grpc:
            collect_less()
        ready = "ready" if grpc else "worker ready"
        print(f"{ready} (Ctrl+C or SIGTERM stops it)", flush=True)
        await stopping.wait()
        await container.stop()
    finally:
        await container.close()


def collect_less() -> None:
    """A worker's garbage collector: everything made at start-up lives as long as the
    process, so it leaves the collector's passes (gc.freeze), and the youngest
    generation is collected every 10,000 allocations instead of 700. In a burst the
    collector took a sixth of the worker's CPU before (docs/benchmarks.md)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(10_000, older, oldest)


def migrate_database(settings: Settings) -> None:
    url = settings.database.database_url
    if url is None:
        container = build(settings)  # migrates the embedded database
        asyncio.run(container.close())
    else:
        engine = make_engine(url.get_secret_value())
        migrate(engine)
        engine.dispose()
    print("database schema is current")


def mint_token(settings: Settings, subject: str, role: Role, ttl_minutes: int) -> str:
    limit = settings.auth.token_max_lifetime_minutes
    if not 1 <= ttl_minutes <= limit:
        # The server would refuse a longer-lived token anyway; do not mint one.
        raise ConfigError(
            f"--ttl-minutes must be 1-{limit} (TOKEN_MAX_LIFETIME_MINUTES), got {ttl_minutes}"
        )
    return token_codec(settings).mint(subject, role, timedelta(minutes=ttl_minutes))
