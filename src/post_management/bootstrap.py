"""The composition root: the only place that picks adapters and wires them."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from post_management.adapters.clock import SystemClock
from post_management.adapters.crypto import FernetBox, InvalidKeys
from post_management.adapters.db.engine import make_engine, migrate, ping
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.local import EmbeddedPostgres, local_secrets
from post_management.config import ConfigError, Settings
from post_management.entrypoints.grpc.info_servicer import BuildInfo, ComponentCheck
from post_management.entrypoints.grpc.server import Services
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.services.accounts import AccountService
from post_management.services.posts import PostService
from post_management.services.scheduled_listing import ScheduledListing
from post_management.services.scheduling import SchedulingService

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    tokens: TokenCodec
    services: Services
    embedded_database: EmbeddedPostgres | None = None
    components: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.engine.dispose()
        if self.embedded_database is not None:
            self.embedded_database.stop()


@dataclass(frozen=True)
class Secrets:
    jwt_secret: str
    jwt_refresh_secret: str
    encryption_keys: str


def resolve_secrets(settings: Settings) -> Secrets:
    """Configured secrets win; the rest are generated once into DATA_DIR."""
    configured = {
        "jwt_secret": settings.jwt_secret,
        "jwt_refresh_secret": settings.jwt_refresh_secret,
        "encryption_keys": settings.encryption_keys,
    }
    generated: dict[str, str] = {}
    if any(value is None for value in configured.values()):
        generated = local_secrets(settings.data_dir)
    values = {
        name: value.get_secret_value() if value is not None else generated[name]
        for name, value in configured.items()
    }
    return Secrets(**values)


def token_codec(settings: Settings, secrets: Secrets | None = None) -> TokenCodec:
    secrets = secrets or resolve_secrets(settings)
    return TokenCodec(
        secrets.jwt_secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )


def git_commit() -> str:
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


def _version() -> str:
    try:
        return metadata.version("post-management")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build(settings: Settings, *, run_migrations: bool = True) -> Container:
    secrets = resolve_secrets(settings)
    try:
        box = FernetBox.parse(secrets.encryption_keys)
    except InvalidKeys as exc:
        raise ConfigError(f"ENCRYPTION_KEYS: {exc}") from None
    embedded = None
    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir.resolve())
        url = embedded.url
    else:
        url = settings.database_url.get_secret_value()
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
    uow = SqlUnitOfWorkFactory(engine, box)
    clock = SystemClock()
    components = {
        "database": "embedded" if embedded else "external",
        "redis": "external" if settings.redis_url else "in-process",
        "kafka": "external" if settings.kafka_bootstrap_servers else "off (outbox kept)",
        "x_api": "x" if settings.twitter_consumer_key else "emulator",
    }

    def readiness() -> list[ComponentCheck]:
        try:
            ping(engine)
        except SQLAlchemyError as exc:
            return [ComponentCheck("database", False, type(exc).__name__)]
        return [ComponentCheck("database", True, components["database"])]

    tokens = token_codec(settings, secrets)
    services = Services(
        posts=PostService(uow, clock),
        accounts=AccountService(uow, clock),
        tokens=tokens,
        build=BuildInfo(
            name="post-management",
            version=_version(),
            git_commit=git_commit(),
            started_at=datetime.now(UTC),
            components=components,
        ),
        readiness=readiness,
        scheduling=SchedulingService(uow, clock),
        scheduled_listing=ScheduledListing(uow),
    )
    return Container(settings, engine, tokens, services, embedded, components)
