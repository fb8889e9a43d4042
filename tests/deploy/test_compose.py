"""compose.yaml, checked offline (no container engine here): valid against the Compose
Specification's JSON schema, and consistent with the Helm chart, the Dockerfile and the
service's settings (image, ports, Envoy, metrics, alert rules, dashboards, secrets)."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from post_management.bootstrap.settings import Settings
from tests.deploy.test_helm_chart import (
    CHART,
    MONITORING_ON,
    REPO_ROOT,
    only,
    render,
    with_required,
)

COMPOSE = REPO_ROOT / "compose.yaml"
SCHEMA = REPO_ROOT / "third_party" / "compose-spec" / "compose-spec.json"
SERVICE = "post-management"
# Settings that are secrets in the chart (secrets.env): never a literal here.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?[?-][^}]*)?\}")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load(COMPOSE)
    return loaded


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded: dict[str, Any] = load(CHART / "values.yaml")
    return loaded


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    # The draft the schema declares ("draft/2019-09/schema#", spelt with a trailing #).
    assert schema["$schema"].startswith("http://json-schema.org/draft/2019-09/schema")
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port, from the short syntax "HOST:CONTAINER"."""
    ports = {}
    for entry in service.get("ports", []):
        host, container = str(entry).rsplit(":", 1)
        ports[int(container)] = int(host.rsplit(":", 1)[-1])
    return ports


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of every volume entry (short syntax)."""
    found = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        found[target] = source
    return found


def test_the_schema_is_vendored_with_its_license() -> None:
    folder = SCHEMA.parent
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "Compose Specification" in (folder / "NOTICE").read_text()
    assert json.loads(SCHEMA.read_text())["title"] == "Compose Specification"


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    assert schema_errors(compose) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["services"]["redis"]["healthcheck"].update(intervall="5s"),
        lambda d: d["services"]["postgres"].update(ports={"5432": 5432}),
        lambda d: d["services"][SERVICE]["depends_on"]["postgres"].update(condition="healthy"),
        lambda d: d.update(networks=[]),
    ],
)
def test_the_schema_catches_a_broken_file(compose: dict[str, Any], breakage: Any) -> None:
    broken = copy.deepcopy(compose)
    breakage(broken)
    assert schema_errors(broken) != []


def test_the_service_is_the_charts_image_built_from_the_dockerfile(
    compose: dict[str, Any], values: dict[str, Any]
) -> None:
    service = compose["services"][SERVICE]
    chart = load(CHART / "Chart.yaml")
    assert service["image"] == f"{values['image']['repository']}:{chart['appVersion']}"
    assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert (REPO_ROOT / service["build"]["dockerfile"]).exists()
    # Single-container run: `serve` starts Envoy itself (the chart runs it as a sidecar).
    assert service["command"] == ["serve"]


def test_ports_match_the_chart_the_settings_and_the_dockerfile(
    compose: dict[str, Any], values: dict[str, Any]
) -> None:
    service = compose["services"][SERVICE]
    settings = env(service)
    defaults = Settings.variables()
    ports = values["ports"]
    for name, variable in (
        ("grpc", "GRPC_PORT"),
        ("http", "HTTP_PORT"),
        ("metrics", "METRICS_PORT"),
    ):
        assert int(settings[variable]) == ports[name] == defaults[variable.lower()].default
        assert published(service)[ports[name]] == ports[name]
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {ports['grpc']} {ports['http']} {ports['metrics']}" in dockerfile
    # Every port is reachable from the other containers and the host.
    for host in ("GRPC_HOST", "HTTP_HOST", "METRICS_HOST"):
        assert settings[host] == "0.0.0.0"
    # Envoy (REST) listens on the chart's HTTP port and forwards to its gRPC port.
    rendered = render(with_required({}))
    envoy = yaml.safe_load(only(rendered, "ConfigMap")["data"]["envoy.yaml"])
    listener = envoy["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener["port_value"] == int(settings["HTTP_PORT"])


def test_every_setting_given_to_the_service_exists(compose: dict[str, Any]) -> None:
    known = {name.upper() for name in Settings.variables()}
    standard = {"OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"}  # read by the SDK itself
    assert set(env(compose["services"][SERVICE])) - known - standard == set()


def test_the_service_reaches_the_other_containers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    settings = env(services[SERVICE])
    # The password is a ${...} with its own message: split on the last "@".
    credentials, location = settings["DATABASE_URL"].removeprefix("postgresql://").rsplit("@", 1)
    user, password = credentials.split(":", 1)
    database = urlsplit("postgresql://" + location)
    postgres = env(services["postgres"])
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.path == "/" + postgres["POSTGRES_DB"]
    assert user == postgres["POSTGRES_USER"]
    assert INTERPOLATION.fullmatch(password)
    assert INTERPOLATION.fullmatch(postgres["POSTGRES_PASSWORD"])
    assert urlsplit(settings["REDIS_URL"]).hostname == "redis"
    assert settings["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    kafka = env(services["kafka"])
    assert "PLAINTEXT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    # Traces go to Jaeger over OTLP/gRPC on 4317; it also takes OTLP/HTTP on 4318.
    traces = urlsplit(settings["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (traces.hostname, traces.port) == ("jaeger", 4317)
    assert settings["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    jaeger = services["jaeger"]
    assert env(jaeger)["COLLECTOR_OTLP_ENABLED"] == "true"
    assert {4317, 4318, 16686} <= set(published(jaeger))
    assert set(services[SERVICE]["depends_on"]) == {"postgres", "redis", "kafka", "jaeger"}


def test_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert not any("zookeeper" in str(s.get("image", "")) for s in services.values())
    kafka = env(services["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:9093"
    # KRaft formats its storage for a 16-byte cluster id, base64url without padding.
    assert len(base64.urlsafe_b64decode(kafka["CLUSTER_ID"] + "==")) == 16
    assert mounts(services["kafka"])[kafka["KAFKA_LOG_DIRS"]] == "kafka-data"


def test_prometheus_scrapes_the_metrics_port_and_loads_the_charts_alert_rules(
    compose: dict[str, Any], values: dict[str, Any]
) -> None:
    prometheus = compose["services"]["prometheus"]
    volumes = mounts(prometheus)
    config_path = volumes["/etc/prometheus/prometheus.yml"]
    config = load(REPO_ROOT / config_path)
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == values["metrics"]["path"]
    (target,) = job["static_configs"][0]["targets"]
    assert target == f"{SERVICE}:{values['ports']['metrics']}"
    assert target.endswith(":" + env(compose["services"][SERVICE])["METRICS_PORT"])
    # The chart's alert folder itself, mounted where rule_files looks.
    alerts = CHART / "files" / "alerts"
    rules_dir = next(t for t, s in volumes.items() if Path(REPO_ROOT / s) == alerts)
    (pattern,) = config["rule_files"]
    assert pattern == f"{rules_dir}/*.yaml"
    files = sorted(alerts.glob("*.yaml"))
    assert [f.name for f in files] == ["post-management.yaml"]
    # Prometheus loads the file as it is; the chart's PrometheusRule has the same groups.
    groups = load(files[0])["groups"]
    assert groups and all(group["name"] and group["rules"] for group in groups)
    assert only(render(with_required(MONITORING_ON)), "PrometheusRule")["spec"]["groups"] == groups


def test_grafana_provisions_the_charts_dashboard_from_this_prometheus(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    volumes = mounts(grafana)
    provisioning = REPO_ROOT / volumes["/etc/grafana/provisioning"]
    (datasource,) = load(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus"
    assert url.port in published(compose["services"]["prometheus"])
    (provider,) = load(provisioning / "dashboards" / "post-management.yaml")["providers"]
    dashboards_dir = provider["options"]["path"]
    assert Path(REPO_ROOT / volumes[dashboards_dir]) == CHART / "files" / "dashboards"
    dashboard = json.loads((CHART / "files" / "dashboards" / "post-management.json").read_text())
    assert dashboard["uid"] == "post-management"
    assert INTERPOLATION.fullmatch(env(grafana)["GF_SECURITY_ADMIN_PASSWORD"])


def test_health_checks_named_volumes_and_pinned_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
        for source in mounts(service).values():
            assert source.startswith("./") or source in declared, (name, source)
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), source
    stateful = {SERVICE, "postgres", "redis", "kafka", "prometheus", "grafana"}
    for name in stateful:
        assert set(mounts(services[name]).values()) & declared, f"{name} keeps no named volume"
    # The service's own check is the gRPC health probe on its gRPC port.
    probe = services[SERVICE]["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "post-management", "health-probe"]
    assert f"-addr=127.0.0.1:{env(services[SERVICE])['GRPC_PORT']}" in probe


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    chart_secrets = set(load(CHART / "values.yaml")["secrets"]["env"])
    template = (REPO_ROOT / ".env.template").read_text()
    template_vars = dict(
        line.split("=", 1) for line in template.splitlines() if "=" in line and line[0] != "#"
    )
    for name, service in compose["services"].items():
        for key, value in env(service).items():
            secretish = re.search(r"PASSWORD|SECRET|TOKEN|KEYS?$", key) or key in chart_secrets
            if secretish and key not in {"REDIS_URL"}:
                assert INTERPOLATION.search(value), f"{name}.{key} is written in the file"
    # Every value taken from .env is listed (empty) in .env.template.
    for match in INTERPOLATION.finditer(text):
        assert template_vars.get(match.group("name")) == "", match.group("name")
    assert compose["services"][SERVICE]["env_file"] == ".env"
    assert ".env" in (REPO_ROOT / ".gitignore").read_text().splitlines()
