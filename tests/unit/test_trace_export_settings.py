"""OpenTelemetry's standard variables choose where and how traces are exported."""

from __future__ import annotations

import pytest

from post_management.bootstrap.settings import ConfigError, load_settings
from post_management.observability import tracing


def test_no_endpoint_no_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert load_settings().telemetry.otlp_traces is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317"}, ("http://jaeger:4317", "grpc")),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318/",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            ("http://jaeger:4318/v1/traces", "http/protobuf"),
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/custom",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ("http://collector:4318/custom", "http/protobuf"),
        ),
    ],
)
def test_endpoint_and_protocol(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().telemetry.otlp_traces == expected


def test_an_unsupported_protocol_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        load_settings()


def test_resource_names_the_service_and_lets_the_environment_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    resource = tracing.resource().attributes
    assert resource["service.name"] == "post-management"
    assert resource["deployment.environment"] == "staging"
    assert resource["service.instance.id"] != tracing.resource().attributes["service.instance.id"]
    monkeypatch.setenv("OTEL_SERVICE_NAME", "posts-eu")
    assert tracing.resource().attributes["service.name"] == "posts-eu"
