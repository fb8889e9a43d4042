"""The composition root: the only package that picks adapters and wires them into
services, ticks and the gRPC server.

Read it in this order: `settings` (what the environment sets), `infrastructure`
(the database, keys, clocks, Redis, X, the storage adapters), `jobs` (the ticks and
the outbox relay), `grpc_services` (the use cases the server serves), `container`
(`build`, and the one lifecycle: start, stop, close), `commands` (what each command
of the command line does). `health`, `serving`, `secrets` and `build_info` hold the
readiness checks, what `serve` puts around the services, the keys and GetServiceInfo.
"""

from post_management.bootstrap.commands import (
    configure_logging,
    migrate_database,
    mint_token,
    serve,
    work,
)
from post_management.bootstrap.container import LOCAL_USER, Container, build
from post_management.bootstrap.secrets import Secrets, resolve_secrets, token_codec
from post_management.bootstrap.settings import ConfigError, Settings, load_settings

__all__ = [
    "LOCAL_USER",
    "ConfigError",
    "Container",
    "Secrets",
    "Settings",
    "build",
    "configure_logging",
    "load_settings",
    "migrate_database",
    "mint_token",
    "resolve_secrets",
    "serve",
    "token_codec",
    "work",
]
