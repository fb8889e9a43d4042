"""Safe choices at start-up and at the edges of the webhook and token code: X is an
explicit choice, partial X credentials are refused, webhooks are off without a secret,
only X-shaped CRC tokens are signed, token lifetimes are capped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from post_management import bootstrap
from post_management.bootstrap.settings import ConfigError, Settings, load_settings, x_mode
from post_management.domain.auth import Role
from post_management.domain.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from post_management.entrypoints import cli
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.services.analytics.webhooks import XWebhooks, signature

SECRET = "consumer-secret"
JWT_SECRET = "unit-test-jwt-secret-0123456789abcdef"
CREDENTIALS = {
    "twitter_consumer_key": "ck",
    "twitter_consumer_secret": "cs",
    "twitter_bearer_token": "bt",
}
DEPLOYED = {"database_url": "postgresql://db/posts", "jwt_secret": JWT_SECRET}


def webhooks(secret: str | None = SECRET) -> XWebhooks:
    # The CRC answer and the signature check touch neither the database nor the cache.
    return XWebhooks(None, None, None, secret)  # type: ignore[arg-type]


# --- CRC tokens -------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["abc123", "A" * 128, "Zm9vYmFy+/==", "MTIzNDU2Nzg5MA-_", "0"],
)
def test_crc_tokens_shaped_like_xs_are_signed(token: str) -> None:
    assert webhooks().crc_response(token) == signature(SECRET, token.encode())


@pytest.mark.parametrize(
    "token",
    [
        '{"favorite_events":[{"id":"1","favorited_status":{"id_str":"2"}}]}',
        " {}",
        "A" * 129,
        "abc def",
        "abc\n",
        "tökën",
        "a.b",
        "%7B%7D",
    ],
)
def test_other_crc_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        webhooks().crc_response(token)
    assert refused.value.reason == "CRC_TOKEN_INVALID"
    assert refused.value.violations[0].field == "crc_token"


def test_no_json_delivery_can_be_signed_through_the_crc_endpoint() -> None:
    body = json.dumps({"for_user_id": "1", "favorite_events": []})
    with pytest.raises(InvalidArgument):
        webhooks().crc_response(body)


def test_without_a_secret_both_webhook_calls_are_off() -> None:
    off = webhooks(None)
    assert not off.enabled
    for call in (lambda: off.crc_response("abc"), lambda: off.verify(b"{}", "sha256=x")):
        with pytest.raises(FailedPrecondition) as refused:
            call()
        assert refused.value.reason == "WEBHOOKS_DISABLED"
    # Not the old public fallback: "emulator" signs nothing.
    with pytest.raises(FailedPrecondition):
        off.verify(b"{}", signature("emulator", b"{}"))


def test_webhook_secret_is_the_consumer_secret_or_none() -> None:
    assert load_settings(**CREDENTIALS).x.webhook_secret() == "cs"
    assert load_settings().x.webhook_secret() is None


# --- X mode -------------------------------------------------------------------------


def settings(**values: Any) -> Settings:
    return load_settings(**values)


def test_the_embedded_local_defaults_pick_the_emulator() -> None:
    assert settings().local_defaults
    assert x_mode(settings()) == "emulator"


@pytest.mark.parametrize(
    "configured",
    [{"database_url": "postgresql://db/posts"}, {"jwt_secret": JWT_SECRET}, DEPLOYED],
)
def test_outside_the_local_defaults_x_mode_must_be_chosen(configured: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="X_MODE: must be set"):
        x_mode(settings(**configured))
    assert x_mode(settings(**configured, x_mode="emulator")) == "emulator"
    assert x_mode(settings(**configured, **CREDENTIALS, x_mode="x")) == "x"


@pytest.mark.parametrize("missing", sorted(CREDENTIALS))
@pytest.mark.parametrize("mode", ["x", "emulator", None])
def test_partial_x_credentials_are_refused(missing: str, mode: str | None) -> None:
    partial = {name: value for name, value in CREDENTIALS.items() if name != missing}
    with pytest.raises(ConfigError, match=f"partial: {missing.upper()} unset"):
        x_mode(settings(**DEPLOYED, **partial, x_mode=mode))


def test_x_mode_x_needs_the_credentials() -> None:
    with pytest.raises(ConfigError, match="X_MODE=x needs"):
        x_mode(settings(**DEPLOYED, x_mode="x"))


def test_an_unknown_x_mode_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_MODE", "twitter")
    with pytest.raises(ConfigError, match="X_MODE"):
        load_settings()


def test_build_refuses_before_starting_anything(tmp_path: Path) -> None:
    # No database is reachable at this URL: the X check must come first.
    deployed = settings(**DEPLOYED, data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match="X_MODE"):
        bootstrap.build(deployed)
    assert not (tmp_path / "data").exists()


# --- tokens -------------------------------------------------------------------------


def raw_token(lifetime: timedelta) -> str:
    now = datetime.now(UTC)
    claims = {"sub": "alice", "role": "user", "iss": "i", "aud": "a", "exp": now + lifetime}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def test_tokens_living_longer_than_the_cap_are_refused() -> None:
    codec = TokenCodec(JWT_SECRET, issuer="i", audience="a", max_lifetime=timedelta(hours=2))
    assert codec.verify(raw_token(timedelta(hours=2))).subject == "alice"
    with pytest.raises(Unauthenticated) as refused:
        codec.verify(raw_token(timedelta(hours=3)))
    assert refused.value.reason == "TOKEN_TOO_LONG_LIVED"
    # The default cap is a day: a year-long token minted elsewhere is refused.
    default = TokenCodec(JWT_SECRET, issuer="i", audience="a")
    with pytest.raises(Unauthenticated):
        default.verify(raw_token(timedelta(days=365)))
    assert bootstrap.token_codec(settings(jwt_secret=JWT_SECRET)).max_lifetime == timedelta(days=1)


def run_token_command(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("JWT_SECRET", JWT_SECRET)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cli.main(["token", *argv])


@pytest.mark.parametrize(
    ("ttl", "env"),
    [("1441", {}), ("0", {}), ("-5", {}), ("11", {"TOKEN_MAX_LIFETIME_MINUTES": "10"})],
)
def test_token_command_caps_the_lifetime(
    ttl: str,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_token_command(["--ttl-minutes", ttl], monkeypatch, tmp_path, **env)
    assert "--ttl-minutes must be 1-" in str(exited.value.code)
    assert "TOKEN_MAX_LIFETIME_MINUTES" in str(exited.value.code)
    assert capsys.readouterr().out == ""  # no token printed


def test_token_command_mints_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_token_command(["--ttl-minutes", "1440"], monkeypatch, tmp_path)
    token = capsys.readouterr().out.strip()
    codec = TokenCodec(JWT_SECRET, issuer="post-management", audience="post-management")
    assert codec.verify(token).role is Role.USER


def test_jwt_refresh_secret_is_no_setting() -> None:
    assert "jwt_refresh_secret" not in Settings.variables()
