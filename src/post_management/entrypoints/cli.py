"""Command line: `post-management serve | worker | migrate | token | health-probe`.
It parses the arguments; the composition root (bootstrap) does the rest."""

from __future__ import annotations

import argparse
import sys

from post_management import bootstrap
from post_management.domain.auth import Role
from post_management.entrypoints import health_probe
from post_management.entrypoints.grpc.tokens import MAX_SUBJECT_LENGTH


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
    token.add_argument(
        "--subject", type=_subject, default=bootstrap.LOCAL_USER, help="user or service id"
    )
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
        settings = bootstrap.load_settings()
    except bootstrap.ConfigError as exc:
        sys.exit(f"post-management: {exc}")
    bootstrap.configure_logging(settings)
    try:
        if args.command == "serve":
            bootstrap.serve(settings, with_envoy=not args.no_envoy)
        elif args.command == "worker":
            bootstrap.work(settings)
        elif args.command == "migrate":
            bootstrap.migrate_database(settings)
        elif args.command == "token":
            print(bootstrap.mint_token(settings, args.subject, Role(args.role), args.ttl_minutes))
    except bootstrap.ConfigError as exc:
        sys.exit(f"post-management: {exc}")


if __name__ == "__main__":
    main()
