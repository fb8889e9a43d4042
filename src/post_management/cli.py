"""Command line: `post-management serve | worker | migrate | token | health-probe`."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import signal
import sys
from datetime import timedelta

from post_management import bootstrap
from post_management.adapters.consul import Registrar
from post_management.adapters.db.engine import make_engine, migrate
from post_management.config import ConfigError, Settings, load_settings
from post_management.domain.auth import Role
from post_management.entrypoints import health_probe
from post_management.entrypoints.envoy_config import (
    EdgeLimits,
    default_descriptor_path,
    render_envoy_config,
)
from post_management.entrypoints.envoy_process import EnvoyProcess
from post_management.entrypoints.grpc.server import GrpcServer
from post_management.entrypoints.grpc.tokens import MAX_SUBJECT_LENGTH
from post_management.observability import logs, metrics, tracing

log = logging.getLogger("post_management")
LOCAL_USER = "local-user"


def _start_envoy(settings: Settings, grpc_port: int) -> EnvoyProcess:
    upstream = settings.grpc_host if settings.grpc_host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - comparing, not binding
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config_path = settings.data_dir / "envoy.yaml"
    config_path.write_text(
        render_envoy_config(
            http_port=settings.http_port,
            grpc_host=upstream,
            grpc_port=grpc_port,
            admin_port=settings.envoy_admin_port,
            descriptor_path=default_descriptor_path(),
            listen_address=settings.http_host,
            edge=EdgeLimits(
                max_request_bytes=settings.max_request_bytes,
                max_upload_bytes=settings.max_upload_bytes,
                max_upstream_requests=settings.grpc_max_concurrent_rpcs,
            ),
        )
    )
    envoy = EnvoyProcess(
        http_port=settings.http_port,
        admin_port=settings.envoy_admin_port,
        config_path=config_path,
        log_path=settings.data_dir / "envoy.log",
        host=settings.http_host,
    )
    envoy.start()
    return envoy


def _start_telemetry(settings: Settings) -> None:
    endpoint, protocol = settings.otlp_traces or (None, "grpc")
    tracing.configure(endpoint, protocol)
    atexit.register(tracing.shutdown)  # flush spans still queued for export
    port = metrics.serve(settings.metrics_host, settings.metrics_port)
    if port is not None:
        print(f"metrics on http://{settings.metrics_host}:{port}/metrics", flush=True)


async def _serve(settings: Settings, *, with_envoy: bool) -> None:
    container = await asyncio.to_thread(bootstrap.build, settings)
    _start_telemetry(settings)
    server = GrpcServer(
        container.services,
        settings.grpc_host,
        settings.grpc_port,
        bootstrap.server_limits(settings),
    )
    envoy: EnvoyProcess | None = None
    registrar: Registrar | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        print(f"gRPC listening on {settings.grpc_host}:{server.port}", flush=True)
        registrar = bootstrap.service_registrar(settings, server.port)
        if registrar is not None:
            registrar.start()
        if with_envoy:
            envoy = await asyncio.to_thread(_start_envoy, settings, server.port)
            print(f"REST (Envoy) listening on {envoy.base_url}", flush=True)
        container.start_jobs()
        if container.emulator is not None:
            print(f"X API: local emulator at {container.emulator.base_url}", flush=True)
        if container.embedded_database is not None:
            print(f"database: embedded PostgreSQL under {settings.data_dir}/postgres", flush=True)
        # A token in a deployment's log would be a credential for anyone who reads it:
        # only the embedded local defaults (a developer's `make run`) print one.
        if settings.local_defaults:
            token = container.tokens.mint(LOCAL_USER, Role.USER, timedelta(hours=1))
            print(f"token for user {LOCAL_USER!r} (1 hour): {token}", flush=True)
        print("ready (Ctrl+C or SIGTERM stops it)", flush=True)
        await stop.wait()
        log.info("shutting down: draining for up to %.0fs", settings.shutdown_grace_seconds)
        # Leave discovery first, so that callers stop picking this replica.
        if registrar is not None:
            await registrar.stop()
        # Stop claiming first; posts already handed to X finish and are recorded.
        await asyncio.to_thread(container.stop_jobs)
        await server.stop(settings.shutdown_grace_seconds)
    finally:
        if registrar is not None:
            await registrar.stop()  # a no-op after a clean shutdown
        # Envoy goes last so calls it already forwarded can finish.
        if envoy is not None:
            await asyncio.to_thread(envoy.stop)
        await asyncio.to_thread(container.close)


async def _work(settings: Settings) -> None:
    """The dispatcher and reconciler without a gRPC server: a worker process."""
    container = await asyncio.to_thread(bootstrap.build, settings)
    _start_telemetry(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        container.start_jobs()
        print("worker ready (Ctrl+C or SIGTERM stops it)", flush=True)
        await stop.wait()
        await asyncio.to_thread(container.stop_jobs)
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
    limit = settings.token_max_lifetime_minutes
    if not 1 <= args.ttl_minutes <= limit:
        # The server would refuse a longer-lived token anyway; do not mint one.
        raise ConfigError(
            f"--ttl-minutes must be 1-{limit} (TOKEN_MAX_LIFETIME_MINUTES), got {args.ttl_minutes}"
        )
    codec = bootstrap.token_codec(settings)
    print(codec.mint(args.subject, Role(args.role), timedelta(minutes=args.ttl_minutes)))


def _subject(value: str) -> str:
    # The server refuses tokens with longer subjects; do not mint one.
    if not value or len(value) > MAX_SUBJECT_LENGTH:
        raise argparse.ArgumentTypeError(f"must be 1-{MAX_SUBJECT_LENGTH} characters")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="post-management", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server and Envoy for REST")
    serve.add_argument(
        "--no-envoy",
        action="store_true",
        help="gRPC only (in Kubernetes Envoy runs as a sidecar container)",
    )
    commands.add_parser("worker", help="run only the dispatcher and reconciler ticks")
    commands.add_parser("migrate", help="bring the database schema up to date")
    token = commands.add_parser("token", help="mint an access token for local use")
    token.add_argument("--subject", type=_subject, default=LOCAL_USER, help="user or service id")
    token.add_argument("--role", choices=[role.value for role in Role], default="user")
    token.add_argument(
        "--ttl-minutes",
        type=int,
        default=60,
        help="lifetime, at most TOKEN_MAX_LIFETIME_MINUTES (1440 unless set)",
    )
    # Listed for --help only: its Go-style flags are parsed by health_probe itself.
    commands.add_parser(
        "health-probe",
        add_help=False,
        help="grpc_health_probe's flags and exit codes (0 serving, 1 bad arguments, "
        "2 connection failure, 3 RPC failure, 4 not serving); -h for its flags",
    )
    return root


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["health-probe"]:  # reached through launcher.py's fast path too
        sys.exit(health_probe.main(given[1:]))
    args = parser().parse_args(given)
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"post-management: {exc}")
    logs.configure(settings.log_level)
    # These narrate every step (commands run, jobs added, each migration applied);
    # only their problems belong in the service's log.
    for chatty in ("pgserver", "apscheduler", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings, with_envoy=not args.no_envoy))
        elif args.command == "worker":
            asyncio.run(_work(settings))
        elif args.command == "migrate":
            _migrate(settings)
        elif args.command == "token":
            _token(settings, args)
    except ConfigError as exc:
        sys.exit(f"post-management: {exc}")


if __name__ == "__main__":
    main()
