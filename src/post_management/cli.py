"""Command line: `post-management serve | migrate | token`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import timedelta

from post_management import bootstrap
from post_management.adapters.db.engine import make_engine, migrate
from post_management.config import ConfigError, Settings, load_settings
from post_management.domain.auth import Role
from post_management.entrypoints.grpc.server import GrpcServer

log = logging.getLogger("post_management")
LOCAL_USER = "local-user"


async def _serve(settings: Settings) -> None:
    container = await asyncio.to_thread(bootstrap.build, settings)
    server = GrpcServer(container.services, settings.grpc_host, settings.grpc_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        print(f"gRPC listening on {settings.grpc_host}:{server.port}", flush=True)
        if container.embedded_database is not None:
            token = container.tokens.mint(LOCAL_USER, Role.USER, timedelta(hours=1))
            print(f"database: embedded PostgreSQL under {settings.data_dir}/postgres", flush=True)
            print(f"token for user {LOCAL_USER!r} (1 hour): {token}", flush=True)
        print("ready (Ctrl+C or SIGTERM stops it)", flush=True)
        await stop.wait()
        log.info("shutting down: draining for up to %.0fs", settings.shutdown_grace_seconds)
        await server.stop(settings.shutdown_grace_seconds)
    finally:
        await asyncio.to_thread(container.close)


def _migrate(settings: Settings) -> None:
    if settings.database_url is None:
        container = bootstrap.build(settings)  # migrates the embedded database
        container.close()
    else:
        engine = make_engine(settings.database_url.get_secret_value())
        migrate(engine)
        engine.dispose()
    print("database schema is current")


def _token(settings: Settings, args: argparse.Namespace) -> None:
    codec = bootstrap.token_codec(settings)
    print(codec.mint(args.subject, Role(args.role), timedelta(minutes=args.ttl_minutes)))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="post-management", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server (and Envoy for REST)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    token = commands.add_parser("token", help="mint an access token for local use")
    token.add_argument("--subject", default=LOCAL_USER, help="user or service id")
    token.add_argument("--role", choices=[role.value for role in Role], default="user")
    token.add_argument("--ttl-minutes", type=int, default=60)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"post-management: {exc}")
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # pgserver narrates every command it runs; only its problems matter here.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "migrate":
            _migrate(settings)
        elif args.command == "token":
            _token(settings, args)
    except ConfigError as exc:
        sys.exit(f"post-management: {exc}")


if __name__ == "__main__":
    main()
