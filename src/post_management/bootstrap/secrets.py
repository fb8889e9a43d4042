"""The service's secrets: configured ones win, the rest are generated once into
DATA_DIR (the embedded local defaults); and the token codec keyed by them."""

from __future__ import annotations

from dataclasses import dataclass

from post_management.adapters.local import local_secrets
from post_management.bootstrap.settings import Settings
from post_management.entrypoints.grpc.tokens import TokenCodec


@dataclass(frozen=True)
class Secrets:
    jwt_secret: str
    encryption_keys: str
    hmac_secret: str


def resolve_secrets(settings: Settings) -> Secrets:
    """Configured secrets win; the rest are generated once into DATA_DIR."""
    auth = settings.auth
    configured = {
        "jwt_secret": auth.jwt_secret,
        "encryption_keys": auth.encryption_keys,
        "hmac_secret": auth.hmac_secret,
    }
    generated: dict[str, str] = {}
    if any(value is None for value in configured.values()):
        generated = local_secrets(settings.database.data_dir)
    values = {
        name: value.get_secret_value() if value is not None else generated[name]
        for name, value in configured.items()
    }
    return Secrets(**values)


def token_codec(settings: Settings, secrets: Secrets | None = None) -> TokenCodec:
    secrets = secrets or resolve_secrets(settings)
    return TokenCodec(
        secrets.jwt_secret,
        issuer=settings.auth.jwt_issuer,
        audience=settings.auth.jwt_audience,
        max_lifetime=settings.auth.token_lifetime(),
    )
