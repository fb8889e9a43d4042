"""Settings come in groups, but every variable keeps its name: the group a setting
sits in never shows in the environment, and `.env.template` lists each variable
under its group's heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from post_management.bootstrap.settings import ConfigError, Settings, load_settings

TEMPLATE = Path(__file__).resolve().parents[2] / ".env.template"
HEADING = re.compile(r"^# --- (?P<name>.+?) -+$")
# Read by the OpenTelemetry SDK itself, not by the service's settings.
SDK_VARIABLES = {"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"}
COMPOSE_ONLY = "compose.yaml only (not read by the service)"


def template_sections() -> dict[str, set[str]]:
    sections: dict[str, set[str]] = {}
    current = None
    for line in TEMPLATE.read_text().splitlines():
        if heading := HEADING.match(line):
            current = heading["name"]
            sections[current] = set()
        elif line and not line.startswith("#"):
            assert current is not None, f"{line} is listed before any group's heading"
            sections[current].add(line.split("=", 1)[0])
    return sections


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.variables():
        monkeypatch.delenv(name.upper(), raising=False)


def test_the_template_lists_every_variable_under_its_group() -> None:
    sections = template_sections()
    groups = Settings.groups()
    assert set(sections) == {*groups, COMPOSE_ONLY}
    for name, group in groups.items():
        expected = {field.upper() for field in group.model_fields}
        assert sections[name] - SDK_VARIABLES == expected, name


def test_no_variable_is_in_two_groups() -> None:
    names = [field for group in Settings.groups().values() for field in group.model_fields]
    assert len(names) == len(set(names)) == len(Settings.variables())


def test_a_variable_sets_its_groups_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISH_LEASE_SECONDS", "120")
    monkeypatch.setenv("GRPC_PORT", "50100")
    monkeypatch.setenv("X_PRICES", '{"post_read": [{"from": "2026-02-01", "usd": 0.005}]}')
    settings = load_settings()
    assert settings.publishing.publish_lease_seconds == 120
    assert settings.server.grpc_port == 50100
    assert settings.x.x_prices == {"post_read": [{"from": "2026-02-01", "usd": 0.005}]}


def test_an_override_beats_the_environment_and_goes_to_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_INTERVAL_SECONDS", "60")
    settings = load_settings(retention_interval_seconds=123, kafka_topic_prefix="")
    assert settings.retention.retention_interval_seconds == 123
    assert settings.kafka.kafka_topic_prefix == ""


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(TypeError, match="no such setting: publish_lease"):
        load_settings(publish_lease=30)


def test_problems_in_several_groups_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPC_PORT", "70000")
    monkeypatch.setenv("RETRY_FACTOR", "0.5")
    monkeypatch.setenv("ANALYTICS_BENCHMARKS", '{"text": 2}')
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    for variable in ("GRPC_PORT", "RETRY_FACTOR", "ANALYTICS_BENCHMARKS_TEXT"):
        assert f"{variable}: " in message


def test_the_settings_objects_come_from_their_groups() -> None:
    settings = load_settings(
        retry_max_attempts=7,
        kafka_value_format="protobuf",
        media_quota_items=3,
        rpc_rate_limit_per_minute=9,
        grpc_max_concurrent_rpcs=11,
        dead_letter_retention_days=2,
        analytics_cache_ttl_seconds=5,
        x_timeout_seconds=3,
    )
    assert settings.publishing.engine(25.0).timing.policy.max_attempts == 7
    assert settings.kafka.relay().value_format.value == "protobuf"
    assert settings.posts.media_quota().max_items == 3
    assert settings.server.request_budget().user_limit == 9
    assert settings.server.limits().max_concurrent_rpcs == 11
    assert settings.server.edge_limits().max_upstream_requests == 11
    assert settings.retention.periods().dead_letters.days == 2
    assert settings.analytics.answers().cache_ttl_seconds == 5
    client = settings.x.client("http://127.0.0.1:1")
    assert (client.read_timeout, client.connect_timeout) == (3, 3)
