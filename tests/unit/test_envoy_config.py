"""The Envoy configuration renderer and the rendered envoy/envoy.yaml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from post_management.entrypoints.envoy_config import (
    DEFAULT_DESCRIPTOR_PATH,
    SERVICES,
    envoy_binary,
    render_default_envoy_config,
    render_envoy_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = REPO_ROOT / "gen" / "xmp_posts_v1.binpb"
VALIDATE_TIMEOUT_S = 60


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
    assert set(SERVICES) == declared
    for service in SERVICES:
        assert f"- {service}\n" in config
    assert "address: 127.0.0.1, port_value: 9901" in config  # admin on loopback only
    assert "convert_grpc_status: true" in config
    assert "reject_unknown_method: true" in config
    assert "reject_unknown_query_parameters: true" in config
    assert "http2_protocol_options: {}" in config
    assert f'proto_descriptor: "{DEFAULT_DESCRIPTOR_PATH}"' in config


def test_envoy_accepts_the_default_config(tmp_path: Path) -> None:
    # The default points at the image's descriptor path; validate against gen/'s copy.
    config = render_default_envoy_config().replace(DEFAULT_DESCRIPTOR_PATH, str(DESCRIPTOR))
    path = tmp_path / "envoy.yaml"
    path.write_text(config)
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


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
