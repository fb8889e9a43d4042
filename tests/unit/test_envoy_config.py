"""The Envoy configuration renderer and the rendered envoy/envoy.yaml (that Envoy itself
accepts it is checked offline in tests/deploy/test_envoy_yaml.py)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import descriptor_pb2

from post_management.entrypoints import envoy_config
from post_management.entrypoints.envoy_config import (
    DEFAULT_DESCRIPTOR_PATH,
    envoy_template,
    render_default_envoy_config,
    render_envoy_config,
    render_helm_envoy_template,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = REPO_ROOT / "gen" / "xmp_posts_v1.binpb"
HELM_COPY = REPO_ROOT / "helm" / "post-management" / "files" / "envoy.yaml"


def transcoder(config: str) -> dict[str, Any]:
    # libyaml's safe loader: what yaml.safe_load reads, several times faster.
    listener = yaml.load(config, Loader=yaml.CSafeLoader)["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    filters = {f["name"]: f["typed_config"] for f in hcm["http_filters"]}
    found: dict[str, Any] = filters["envoy.filters.http.grpc_json_transcoder"]
    return found


def test_committed_envoy_yaml_is_the_rendered_default() -> None:
    committed = (REPO_ROOT / "envoy" / "envoy.yaml").read_text()
    assert committed == render_default_envoy_config(), (
        "envoy/envoy.yaml is stale: python -m post_management.entrypoints.envoy_config "
        "> envoy/envoy.yaml"
    )


def test_default_config_serves_every_service_of_the_package() -> None:
    config = render_default_envoy_config()
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes()).file
    declared = {
        f"{file.package}.{service.name}"
        for file in files
        if file.package == "xmp.posts.v1"
        for service in file.service
    }
    services = transcoder(config)["services"]
    assert len(services) == len(set(services))
    assert set(services) == declared
    assert "address: 127.0.0.1, port_value: 9901" in config  # admin on loopback only
    assert "convert_grpc_status: true" in config
    assert "reject_unknown_method: true" in config
    assert "reject_unknown_query_parameters: true" in config
    assert "http2_protocol_options: {}" in config
    assert f'proto_descriptor: "{DEFAULT_DESCRIPTOR_PATH}"' in config


def test_dns_name_upstream_uses_strict_dns() -> None:
    config = render_envoy_config(
        http_port=8080,
        grpc_host="post-management.default.svc",
        grpc_port=50051,
        admin_port=9901,
        descriptor_path="/d.binpb",
    )
    assert "type: STRICT_DNS" in config
    assert "address: post-management.default.svc, port_value: 50051" in config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"http_port": 0},
        {"grpc_port": 70000},
        {"admin_port": True},
        {"grpc_host": "bad host: {x}"},
        {"grpc_host": "host\n"},
        {"listen_address": "everywhere"},
    ],
)
def test_bad_values_are_rejected(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "http_port": 8080,
        "grpc_host": "127.0.0.1",
        "grpc_port": 50051,
        "admin_port": 9901,
        "descriptor_path": "/d.binpb",
        **kwargs,
    }
    with pytest.raises(ValueError):
        render_envoy_config(**args)  # type: ignore[arg-type]


def test_descriptor_path_is_quoted() -> None:
    config = render_envoy_config(
        http_port=8080,
        grpc_host="127.0.0.1",
        grpc_port=50051,
        admin_port=9901,
        descriptor_path='/odd path/with "quotes".binpb',
    )
    assert 'proto_descriptor: "/odd path/with \\"quotes\\".binpb"' in config


def test_descriptor_set_can_render_error_details() -> None:
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(DESCRIPTOR.read_bytes())
    assert "google/rpc/error_details.proto" in {f.name for f in files.file}


def template_lines() -> list[str]:
    return envoy_template().template.splitlines()


@pytest.mark.parametrize(
    "rendered",
    [
        pytest.param(lambda: (REPO_ROOT / "envoy" / "envoy.yaml").read_text(), id="envoy-yaml"),
        pytest.param(lambda: HELM_COPY.read_text(), id="helm-copy"),
        pytest.param(
            lambda: render_envoy_config(
                http_port=8081,
                grpc_host="grpc.internal",
                grpc_port=50052,
                admin_port=9902,
                descriptor_path="/d.binpb",
                listen_address="127.0.0.1",
            ),
            id="serve",
        ),
    ],
)
def test_every_output_is_the_one_template_line_for_line(rendered: Any) -> None:
    # Placeholders never span lines: each output line is its template line with values in.
    lines = rendered().splitlines()
    template = template_lines()
    assert len(lines) == len(template)
    for number, (line, source) in enumerate(zip(lines, template, strict=True), start=1):
        if "$" not in source:
            assert line == source, f"line {number}"
        else:
            head, _, _ = source.partition("$")
            assert line.startswith(head), f"line {number}"


def test_template_is_package_data_beside_the_renderer() -> None:
    path = Path(envoy_config.__file__).with_name(envoy_config.TEMPLATE_NAME)
    assert envoy_template().template == path.read_text(encoding="utf-8")
    assert "{{" not in envoy_template().template  # Helm references come from the renderer


def test_every_placeholder_gets_a_value_in_both_renderings() -> None:
    identifiers = set(envoy_template().get_identifiers())
    assert identifiers >= set(envoy_config.HELM_VALUE_REFERENCES)
    assert "$" not in render_default_envoy_config()
    helm = render_helm_envoy_template()
    assert "$" not in helm
    for reference in envoy_config.HELM_VALUE_REFERENCES.values():
        assert helm.count(reference) == 1, reference


def test_no_yaml_in_python_strings() -> None:
    # Only docstrings may span lines in the renderer: the configuration lives in the template.
    source = Path(envoy_config.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    literals = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]
    assert literals  # the walk does see the module's strings
    assert [text for text in literals if "\n" in text] == []


def test_local_reply_mappers_differ_only_in_status_and_code() -> None:
    # The template writes each mapper out: they must stay alike but for status and code.
    listener = yaml.load(render_default_envoy_config(), Loader=yaml.CSafeLoader)[
        "static_resources"
    ]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    mappers = hcm["local_reply_config"]["mappers"]
    codes: list[tuple[str, int, int]] = []
    for mapper in mappers:
        status_filter, rest_only = mapper["filter"]["and_filter"]["filters"]
        assert rest_only == mappers[0]["filter"]["and_filter"]["filters"][1]
        comparison = status_filter["status_code_filter"]["comparison"]
        body = mapper["body_format_override"]
        assert body["content_type"] == "application/json"
        assert body["json_format"] == {
            "code": body["json_format"]["code"],
            "message": "%LOCAL_REPLY_BODY%",
            "details": [],
        }
        codes.append(
            (comparison["op"], comparison["value"]["default_value"], body["json_format"]["code"])
        )
    # HTTP status -> google.rpc.Code, as transcoded gRPC errors carry it; UNKNOWN last.
    assert codes == [
        ("EQ", 400, 3),
        ("EQ", 404, 5),
        ("EQ", 405, 12),
        ("EQ", 408, 4),
        ("EQ", 413, 8),
        ("EQ", 429, 8),
        ("EQ", 502, 14),
        ("EQ", 503, 14),
        ("EQ", 504, 4),
        ("GE", 400, 2),
    ]
