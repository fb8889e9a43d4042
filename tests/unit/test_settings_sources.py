"""Settings come from `.env` and `.env.local` when present; real variables win."""

from __future__ import annotations

from pathlib import Path

import pytest

from post_management.bootstrap.jobs import outbox_relay
from post_management.bootstrap.settings import load_settings


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("LOG_LEVEL", "KAFKA_TOPIC_PREFIX", "KAFKA_BOOTSTRAP_SERVERS", "JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_dot_env_is_read_and_dot_env_local_overrides_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=debug\nJWT_ISSUER=from-env-file\n")
    (tmp_path / ".env.local").write_text("JWT_ISSUER=from-local-file\n")
    settings = load_settings()
    assert settings.telemetry.log_level == "DEBUG"
    assert settings.auth.jwt_issuer == "from-local-file"


def test_real_environment_variables_win_over_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("JWT_ISSUER=from-env-file\n")
    (tmp_path / ".env.local").write_text("JWT_ISSUER=from-local-file\n")
    monkeypatch.setenv("JWT_ISSUER", "from-environment")
    assert load_settings().auth.jwt_issuer == "from-environment"


def test_without_files_the_defaults_hold() -> None:
    settings = load_settings()
    assert settings.auth.jwt_issuer == "post-management"
    assert settings.kafka.kafka_topic_prefix == "xmp.posts."


def test_an_empty_topic_prefix_means_bare_event_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    settings = load_settings()
    assert settings.kafka.kafka_topic_prefix == ""
    relay = outbox_relay(settings, engine=None)  # type: ignore[arg-type]
    assert relay is not None
    assert relay.settings.topic_prefix == ""
    assert relay.settings.dead_letter_topic == "dead_letter"


def test_an_empty_topic_prefix_in_the_env_file_counts_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("KAFKA_TOPIC_PREFIX=\n")
    assert load_settings().kafka.kafka_topic_prefix == ""


def test_a_real_variable_beats_an_empty_one_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("KAFKA_TOPIC_PREFIX=\n")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "team.")
    assert load_settings().kafka.kafka_topic_prefix == "team."


def test_an_empty_variable_beats_a_value_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("KAFKA_TOPIC_PREFIX=team.\n")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "")
    assert load_settings().kafka.kafka_topic_prefix == ""
