"""Typed settings from the environment, validated once at start-up, in groups.

Every setting is read from the environment variable of its field's name in capitals
(`publish_lease_seconds` is PUBLISH_LEASE_SECONDS), so the group a setting sits in
does not show in its variable. Every variable is listed with a comment in
`.env.template`, under its group's heading. A bad value stops start-up with a message
that names the variable (see `load_settings`). Each group builds the settings object
of the part it configures (`settings.publishing.engine(...)`, `settings.kafka.relay()`,
...), so the composition root maps nothing by hand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from post_management.adapters.kafka.relay import RelaySettings
from post_management.adapters.kafka.serialization import ValueFormat
from post_management.adapters.x.settings import XClientSettings
from post_management.domain.analytics import DEFAULT_BENCHMARKS
from post_management.domain.media import MediaQuota
from post_management.domain.publishing import Timing
from post_management.domain.retry import RetryPolicy
from post_management.domain.x_spend import PriceTable, parse_prices
from post_management.entrypoints.envoy_config import EdgeLimits
from post_management.entrypoints.grpc.rate_limit import RequestBudget
from post_management.entrypoints.grpc.server import ServerLimits
from post_management.services.analytics.analytics import (
    AnalyticsSettings as AnalyticsAnswerSettings,
)
from post_management.services.privacy.privacy import RetentionPeriods
from post_management.services.publishing.engine import EngineSettings

MIN_SECRET_LENGTH = 32
X_CONNECT_TIMEOUT_SECONDS = 5.0
MIB = 1024 * 1024
X_CREDENTIALS = ("twitter_consumer_key", "twitter_consumer_secret", "twitter_bearer_token")


class ConfigError(Exception):
    """Start-up configuration is unusable; the message names the variable."""


Port = Annotated[int, Field(ge=0, le=65535)]
# The OTLP transports the Python exporters speak (no http/json).
OtlpProtocol = Literal["grpc", "http/protobuf"]


# Read from the working directory when present; `.env.local` overrides `.env`, and
# real environment variables override both.
ENV_FILES = (".env", ".env.local")
# Variables for which an empty value means empty rather than unset (every other
# empty variable falls back to its default).
EMPTY_ALLOWED = ("kafka_topic_prefix",)


class _ExplicitlyEmpty(PydanticBaseSettingsSource):
    """The fields of EMPTY_ALLOWED that a source sets to the empty string."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str | None]):
        super().__init__(settings_cls)
        self._empty = {name.lower() for name, value in values.items() if value == ""}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return ("" if field_name in self._empty else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        return {name: "" for name in EMPTY_ALLOWED if name in self._empty and name in fields}


def _dotenv_values() -> dict[str, str | None]:
    merged: dict[str, str | None] = {}
    for name in ENV_FILES:
        if Path(name).is_file():
            merged.update(dotenv_values(name, encoding="utf-8"))
    return merged


class _Group(BaseSettings):
    """A group of settings, each read from its own variable (not prefixed)."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        env_ignore_empty=True,
        env_file=ENV_FILES,
        env_file_encoding="utf-8",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: the real environment (its empty values included)
        # before the files.
        return (
            init_settings,
            env_settings,
            _ExplicitlyEmpty(settings_cls, dict(os.environ)),
            dotenv_settings,
            _ExplicitlyEmpty(settings_cls, _dotenv_values()),
            file_secret_settings,
        )


class DatabaseSettings(_Group):
    # Unset: an embedded PostgreSQL under DATA_DIR.
    database_url: SecretStr | None = None
    data_dir: Path = Path("var")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgresql+psycopg://", "postgres://")
        ):
            raise ValueError("must be a postgresql:// URL")
        return value


class AuthSettings(_Group):
    """Tokens, and the keys the service signs and seals with. Secrets left unset are
    generated once into DATA_DIR (embedded defaults)."""

    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "post-management"
    jwt_audience: str = "post-management"
    # Longest token lifetime accepted (and minted by `token`): a leaked token
    # stops working at the latest after this long.
    token_max_lifetime_minutes: int = Field(default=1440, ge=1, le=30 * 1440)
    # Fernet keys, comma separated, newest first; older keys still decrypt.
    encryption_keys: SecretStr | None = None
    # Keys page-token signatures and erased users' pseudonyms (docs/security.md).
    # The same in every replica; never changed once a user has been erased.
    hmac_secret: SecretStr | None = None

    @field_validator("jwt_secret", "hmac_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return value

    def token_lifetime(self) -> timedelta:
        return timedelta(minutes=self.token_max_lifetime_minutes)


class XSettings(_Group):
    # "x": the real X with the three TWITTER_* credentials; "emulator": the bundled X
    # API emulator (or the one at X_API_BASE_URL). Unset: the emulator under the
    # embedded local defaults only (`make run`); anywhere else start-up refuses.
    x_mode: Literal["emulator", "x"] | None = None
    twitter_consumer_key: SecretStr | None = None
    # Also the webhook secret: unset, the webhook routes are off.
    twitter_consumer_secret: SecretStr | None = None
    twitter_bearer_token: SecretStr | None = None
    # Where X is reached instead of https://api.twitter.com (an emulator, a proxy).
    x_api_base_url: str | None = None
    x_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    # X's unit prices by call kind, each a list of {"from": date, "usd": price}
    # (docs/x-spend.md); kinds not named keep X's published prices.
    x_prices: dict[str, list[dict[str, object]]] | None = None

    @property
    def x_connect_timeout_seconds(self) -> float:
        """Connect timeout of each X call: 5 s, or the read timeout when shorter."""
        return min(X_CONNECT_TIMEOUT_SECONDS, self.x_timeout_seconds)

    @property
    def x_call_seconds(self) -> float:
        """The longest one X call may take: connecting, then waiting for the answer."""
        return self.x_timeout_seconds + self.x_connect_timeout_seconds

    @field_validator("x_prices")
    @classmethod
    def _x_prices(
        cls, value: dict[str, list[dict[str, object]]] | None
    ) -> dict[str, list[dict[str, object]]] | None:
        if value is not None:
            parse_prices(value)  # ValueError names the kind or entry
        return value

    def price_table(self) -> PriceTable:
        """X's prices with the overrides of X_PRICES."""
        return parse_prices(self.x_prices or {})

    def client(self, base_url: str | None) -> XClientSettings:
        """The X client's settings; without credentials (the emulator) placeholders."""

        def secret(value: SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else "emulator"

        return XClientSettings(
            consumer_key=secret(self.twitter_consumer_key),
            consumer_secret=secret(self.twitter_consumer_secret),
            bearer_token=secret(self.twitter_bearer_token),
            base_url=base_url,
            connect_timeout=self.x_connect_timeout_seconds,
            read_timeout=self.x_timeout_seconds,
        )

    def webhook_secret(self) -> str | None:
        """X signs webhooks with the app's consumer secret. Unset: the webhook routes
        are off (no public fallback that anyone could sign with)."""
        secret = self.twitter_consumer_secret
        return secret.get_secret_value() if secret is not None else None


class RedisSettings(_Group):
    # Unset: in-process cache and rate limiter.
    redis_url: SecretStr | None = None
    # How long GetPost answers stay cached (0: no cache). In process, at most 5 s.
    post_cache_ttl_seconds: float = Field(default=30.0, ge=0, le=86400)


class KafkaSettings(_Group):
    """The outbox relay. Unset servers: the rows stay in the outbox."""

    kafka_bootstrap_servers: str | None = None
    # Empty: topics carry the bare event names.
    kafka_topic_prefix: str = "xmp.posts."
    kafka_value_format: Literal["json", "protobuf"] = "json"
    outbox_retention_days: float = Field(default=7.0, gt=0, le=3650)

    def servers(self) -> list[str]:
        return [s.strip() for s in (self.kafka_bootstrap_servers or "").split(",") if s.strip()]

    def outbox_retention(self) -> timedelta:
        return timedelta(days=self.outbox_retention_days)

    def relay(self) -> RelaySettings:
        return RelaySettings(
            topic_prefix=self.kafka_topic_prefix,
            value_format=ValueFormat(self.kafka_value_format),
            retention=self.outbox_retention(),
        )


class PostsSettings(_Group):
    """What a user may ask: scheduling bounds and media quotas."""

    # How far in the past a requested time may be (clock skew, slow clients), and
    # how far ahead posts may be scheduled.
    schedule_past_grace_seconds: float = Field(default=60.0, ge=0, le=3600)
    schedule_horizon_days: float = Field(default=365.0, gt=0, le=3650)
    # What one user may keep stored in uploaded media at once (0: no limit); an
    # upload beyond it is RESOURCE_EXHAUSTED (MEDIA_QUOTA_EXCEEDED).
    media_quota_items: int = Field(default=100, ge=0, le=1_000_000)
    media_quota_bytes: int = Field(default=2 * 1024**3, ge=0, le=2**50)

    def past_grace(self) -> timedelta:
        return timedelta(seconds=self.schedule_past_grace_seconds)

    def horizon(self) -> timedelta:
        return timedelta(days=self.schedule_horizon_days)

    def media_quota(self) -> MediaQuota:
        return MediaQuota(self.media_quota_items, self.media_quota_bytes)


class PublishingSettings(_Group):
    """The publishing engine. The dispatcher may run in every replica."""

    dispatcher_enabled: bool = True
    dispatch_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    reconcile_interval_seconds: float = Field(default=2.0, gt=0, le=300)
    # Longer than any X call can take: a publisher that dies frees its post after it.
    publish_lease_seconds: float = Field(default=90.0, ge=5, le=3600)
    # How long after an unknown outcome the reconciler first looks at X's timeline
    # (and then how often it looks again); most posts are adopted at the first look.
    publish_settle_seconds: float = Field(default=30.0, ge=0, le=3600)
    # How long after the send "not on the timeline" proves nothing (docs/reliability.md,
    # "Timing settings"): X's timeline lag plus X finishing a request after we gave up.
    x_timeline_lag_seconds: float = Field(default=120.0, ge=0, le=3600)
    # Posts one process holds between claim and settlement (tasks, not threads).
    publish_max_in_flight: int = Field(default=256, ge=1, le=1024)
    retry_base_seconds: float = Field(default=30.0, gt=0, le=86400)
    retry_factor: float = Field(default=2.0, ge=1, le=10)
    retry_cap_seconds: float = Field(default=1800.0, gt=0, le=86400)
    retry_max_attempts: int = Field(default=5, ge=1, le=100)
    # How long the reconciler waits for X's timeline to answer about a post whose
    # outcome is unknown before dead-lettering it (an operator then checks X).
    reconcile_give_up_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)

    @model_validator(mode="after")
    def _give_up_after_settling(self) -> PublishingSettings:
        # Giving up before a post could even be listed (X's timeline lag, or a lost
        # publisher's lease, then the settle delay) would dead-letter posts only late.
        waits = {
            "X_TIMELINE_LAG_SECONDS": self.x_timeline_lag_seconds,
            "PUBLISH_LEASE_SECONDS": self.publish_lease_seconds,
        }
        for name, seconds in waits.items():
            if self.reconcile_give_up_seconds <= seconds + self.publish_settle_seconds:
                raise ValueError(
                    f"RECONCILE_GIVE_UP_SECONDS ({self.reconcile_give_up_seconds:g}) must "
                    f"exceed {name} ({seconds:g}) plus "
                    f"PUBLISH_SETTLE_SECONDS ({self.publish_settle_seconds:g})"
                )
        return self

    def engine(self, x_call_seconds: float) -> EngineSettings:
        """The engine's settings; `x_call_seconds` is XSettings.x_call_seconds."""
        return EngineSettings(
            timing=Timing(
                policy=RetryPolicy(
                    base=timedelta(seconds=self.retry_base_seconds),
                    factor=self.retry_factor,
                    cap=timedelta(seconds=self.retry_cap_seconds),
                    max_attempts=self.retry_max_attempts,
                ),
                settle_delay=timedelta(seconds=self.publish_settle_seconds),
                give_up=timedelta(seconds=self.reconcile_give_up_seconds),
                lag_bound=timedelta(seconds=self.x_timeline_lag_seconds),
            ),
            lease=timedelta(seconds=self.publish_lease_seconds),
            x_call=timedelta(seconds=x_call_seconds),
            max_in_flight=self.publish_max_in_flight,
        )


class AnalyticsSettings(_Group):
    """docs/analytics.md: the collector's tick, the answer cache, the benchmark table
    (a JSON object of engagement rates by post kind: text, media, reply)."""

    metrics_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    analytics_cache_ttl_seconds: float = Field(default=60.0, ge=0, le=86400)
    analytics_benchmarks: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None

    def answers(self) -> AnalyticsAnswerSettings:
        return AnalyticsAnswerSettings(
            self.analytics_cache_ttl_seconds,
            self.analytics_benchmarks or dict(DEFAULT_BENCHMARKS),
        )


class RetentionSettings(_Group):
    """docs/security.md: stored metric snapshots, dead-lettered posts, finished
    removals on X and media are purged after these periods by an hourly job."""

    metrics_retention_days: float = Field(default=400.0, gt=0, le=3650)
    dead_letter_retention_days: float = Field(default=90.0, gt=0, le=3650)
    removal_retention_days: float = Field(default=30.0, gt=0, le=3650)
    # Uploaded media no post attaches are purged this long after their upload, media
    # whose every post was published this long after the last publication.
    media_unattached_ttl_days: float = Field(default=7.0, gt=0, le=3650)
    media_published_retention_days: float = Field(default=30.0, gt=0, le=3650)
    retention_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # How often erased users' posts are deleted on X (promised within 24 hours).
    x_removal_interval_seconds: float = Field(default=60.0, gt=0, le=3600)

    def periods(self) -> RetentionPeriods:
        return RetentionPeriods(
            metric_snapshots=timedelta(days=self.metrics_retention_days),
            dead_letters=timedelta(days=self.dead_letter_retention_days),
            finished_removals=timedelta(days=self.removal_retention_days),
            unattached_media=timedelta(days=self.media_unattached_ttl_days),
            published_media=timedelta(days=self.media_published_retention_days),
        )


class ServerSettings(_Group):
    """The gRPC server, the Envoy that `serve` starts for REST (unless --no-envoy),
    and what each caller may ask of them."""

    grpc_host: str = "127.0.0.1"
    grpc_port: Port = 50051
    # Threads for the blocking work of RPCs, apart from the health checks' thread
    # (0: min(32, CPUs + 4), Python's default).
    grpc_request_threads: int = Field(default=0, ge=0, le=256)
    # Calls served at once (beyond: RESOURCE_EXHAUSTED) and the largest message
    # received, which Envoy's body limits match (docs/security.md).
    grpc_max_concurrent_rpcs: int = Field(default=256, ge=1, le=100_000)
    max_request_bytes: int = Field(default=MIB, ge=64 * 1024, le=64 * MIB)
    max_upload_bytes: int = Field(default=16 * MIB, ge=64 * 1024, le=64 * MIB)
    http_host: str = "127.0.0.1"
    http_port: Port = 8080
    envoy_admin_port: Port = 9901
    shutdown_grace_seconds: float = Field(default=20.0, gt=0, le=300)
    # Requests per minute per token subject (0: no limit); RESOURCE_EXHAUSTED beyond.
    rpc_rate_limit_per_minute: int = Field(default=600, ge=0, le=1_000_000)
    rpc_rate_limit_service_per_minute: int = Field(default=6000, ge=0, le=1_000_000)
    # X webhook calls (CRC and deliveries) per minute, all callers and replicas together
    # (0: no limit); Envoy's local rate limit sits in front of it.
    webhook_rate_limit_per_minute: int = Field(default=1200, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _upload_fits(self) -> ServerSettings:
        if self.max_upload_bytes < self.max_request_bytes:
            raise ValueError(
                f"MAX_UPLOAD_BYTES ({self.max_upload_bytes}) must be at least "
                f"MAX_REQUEST_BYTES ({self.max_request_bytes})"
            )
        return self

    def limits(self) -> ServerLimits:
        return ServerLimits(
            max_concurrent_rpcs=self.grpc_max_concurrent_rpcs,
            max_receive_bytes=self.max_upload_bytes,
        )

    def edge_limits(self) -> EdgeLimits:
        return EdgeLimits(
            max_request_bytes=self.max_request_bytes,
            max_upload_bytes=self.max_upload_bytes,
            max_upstream_requests=self.grpc_max_concurrent_rpcs,
        )

    def request_budget(self) -> RequestBudget:
        return RequestBudget(
            user_limit=self.rpc_rate_limit_per_minute,
            service_limit=self.rpc_rate_limit_service_per_minute,
            webhook_limit=self.webhook_rate_limit_per_minute,
        )


class DiscoverySettings(_Group):
    """The Consul agent (host:port or URL). Set: `serve` registers the gRPC service
    with a gRPC health check and deregisters it on shutdown."""

    consul_http_addr: str | None = None
    consul_http_token: SecretStr | None = None
    consul_service_name: str = "post-management"
    # The address Consul's check dials. Unset: GRPC_HOST, or this host's name
    # when GRPC_HOST is a wildcard.
    consul_service_address: str | None = None


class TelemetrySettings(_Group):
    """Logs, /metrics for Prometheus, and OpenTelemetry's own variables
    (docs/observability.md)."""

    log_level: str = "INFO"
    # 0.0.0.0 in a pod so Prometheus can scrape it.
    metrics_host: str = "127.0.0.1"
    metrics_port: Port = 9095
    # Traces are exported when either endpoint is set; the traces endpoint is the
    # full URL, the other a base.
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_protocol: OtlpProtocol = "grpc"
    otel_exporter_otlp_traces_protocol: OtlpProtocol | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def otlp_traces(self) -> tuple[str, OtlpProtocol] | None:
        """(endpoint, protocol) of the trace exporter, or None: tracing not exported."""
        protocol = self.otel_exporter_otlp_traces_protocol or self.otel_exporter_otlp_protocol
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint, protocol
        if not self.otel_exporter_otlp_endpoint:
            return None
        if protocol == "http/protobuf":
            # The spec's rule for the base endpoint: the signal's path is appended.
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces", protocol
        return self.otel_exporter_otlp_endpoint, protocol


class Settings(BaseModel):
    """All settings, by group. Built by `load_settings`."""

    model_config = ConfigDict(frozen=True)

    database: DatabaseSettings
    auth: AuthSettings
    x: XSettings
    redis: RedisSettings
    kafka: KafkaSettings
    posts: PostsSettings
    publishing: PublishingSettings
    analytics: AnalyticsSettings
    retention: RetentionSettings
    server: ServerSettings
    discovery: DiscoverySettings
    telemetry: TelemetrySettings

    @classmethod
    def groups(cls) -> dict[str, type[_Group]]:
        return {
            name: field.annotation
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, _Group)
        }

    @classmethod
    def variables(cls) -> dict[str, FieldInfo]:
        """Every setting by its variable's name (in lower case), whatever its group."""
        return {
            name: field
            for group in cls.groups().values()
            for name, field in group.model_fields.items()
        }

    @property
    def local_defaults(self) -> bool:
        """The embedded local defaults of `make run`: no database and no secrets
        configured. Only here may the service pick the emulator and print a token."""
        return self.database.database_url is None and self.auth.jwt_secret is None

    @model_validator(mode="after")
    def _publishing_outlasts_x_calls(self) -> Settings:
        x, publishing = self.x, self.publishing
        # A publisher's claim must still be held when its X call ends, or the
        # reconciler looks at X while the call may still land.
        call = x.x_call_seconds
        if publishing.publish_lease_seconds <= call:
            raise ValueError(
                f"PUBLISH_LEASE_SECONDS ({publishing.publish_lease_seconds:g}) must exceed "
                f"X_TIMEOUT_SECONDS ({x.x_timeout_seconds:g}) plus the connect timeout "
                f"({x.x_connect_timeout_seconds:g})"
            )
        # "Not on X" must not be concluded while X may still be acting on our call.
        if publishing.x_timeline_lag_seconds < call:
            raise ValueError(
                f"X_TIMELINE_LAG_SECONDS ({publishing.x_timeline_lag_seconds:g}) must be at "
                f"least X_TIMEOUT_SECONDS ({x.x_timeout_seconds:g}) plus the connect timeout "
                f"({x.x_connect_timeout_seconds:g})"
            )
        return self


def x_mode(settings: Settings) -> Literal["emulator", "x"]:
    """The X the service talks to; ConfigError for an unsafe or partial choice."""
    given = [name for name in X_CREDENTIALS if getattr(settings.x, name) is not None]
    if given and len(given) < len(X_CREDENTIALS):
        missing = [name.upper() for name in X_CREDENTIALS if name not in given]
        raise ConfigError(
            f"X credentials are partial: {', '.join(missing)} unset "
            "(set all three TWITTER_* variables, or none)"
        )
    mode = settings.x.x_mode
    if mode is None:
        if not settings.local_defaults:
            raise ConfigError(
                "X_MODE: must be set to x or emulator (only the embedded local defaults, "
                "with DATABASE_URL and JWT_SECRET unset, pick the emulator by themselves)"
            )
        mode = "emulator"
    if mode == "x" and not given:
        raise ConfigError(
            "X_MODE=x needs TWITTER_CONSUMER_KEY, TWITTER_CONSUMER_SECRET and TWITTER_BEARER_TOKEN"
        )
    return mode


def load_settings(**overrides: object) -> Settings:
    """Read the environment, each override (by its variable's name in lower case)
    winning over it; raise ConfigError naming each bad variable."""
    unknown = set(overrides) - set(Settings.variables())
    if unknown:
        raise TypeError(f"no such setting: {', '.join(sorted(unknown))}")
    groups: dict[str, _Group] = {}
    problems: list[str] = []
    for name, group in Settings.groups().items():
        given = {key: value for key, value in overrides.items() if key in group.model_fields}
        try:
            groups[name] = group(**given)
        except ValidationError as exc:
            problems += _problems(exc)
    if not problems:
        try:
            return Settings(**groups)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems += _problems(exc)
    raise ConfigError("invalid configuration: " + "; ".join(problems))


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        variable = "_".join(str(part) for part in error["loc"]).upper()
        # The input is never echoed: it may be a secret. Checks across variables
        # have no location; their message names the variables.
        problems.append(f"{variable}: {error['msg']}" if variable else error["msg"])
    return problems
