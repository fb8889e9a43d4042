"""What `serve` puts around the services: the gRPC server's limits, Envoy for REST,
the Consul registration, and the telemetry exports."""

from __future__ import annotations

import atexit

from post_management.adapters.consul import (
    ConsulAgent,
    Registrar,
    ServiceRegistration,
    advertised_address,
)
from post_management.config import Settings
from post_management.entrypoints.envoy_config import (
    EdgeLimits,
    default_descriptor_path,
    render_envoy_config,
)
from post_management.entrypoints.envoy_process import EnvoyProcess
from post_management.entrypoints.grpc.server import ServerLimits
from post_management.observability import metrics, tracing


def server_limits(settings: Settings) -> ServerLimits:
    return ServerLimits(
        max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        max_receive_bytes=settings.max_upload_bytes,
    )


def start_envoy(settings: Settings, grpc_port: int) -> EnvoyProcess:
    upstream = settings.grpc_host if settings.grpc_host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - comparing, not binding
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config_path = settings.data_dir / "envoy.yaml"
    config_path.write_text(
        render_envoy_config(
            http_port=settings.http_port,
            grpc_host=upstream,
            grpc_port=grpc_port,
            admin_port=settings.envoy_admin_port,
            descriptor_path=default_descriptor_path(),
            listen_address=settings.http_host,
            edge=EdgeLimits(
                max_request_bytes=settings.max_request_bytes,
                max_upload_bytes=settings.max_upload_bytes,
                max_upstream_requests=settings.grpc_max_concurrent_rpcs,
            ),
        )
    )
    envoy = EnvoyProcess(
        http_port=settings.http_port,
        admin_port=settings.envoy_admin_port,
        config_path=config_path,
        log_path=settings.data_dir / "envoy.log",
        host=settings.http_host,
    )
    envoy.start()
    return envoy


def service_registrar(settings: Settings, grpc_port: int) -> Registrar | None:
    """Consul registration of the gRPC server when CONSUL_HTTP_ADDR is set."""
    if not settings.consul_http_addr:
        return None
    token = settings.consul_http_token
    agent = ConsulAgent(
        settings.consul_http_addr, token.get_secret_value() if token is not None else None
    )
    address = advertised_address(settings.grpc_host, settings.consul_service_address)
    return Registrar(agent, ServiceRegistration(settings.consul_service_name, address, grpc_port))


def start_telemetry(settings: Settings) -> None:
    """Traces to the OTLP endpoint when one is set; /metrics for Prometheus."""
    endpoint, protocol = settings.otlp_traces or (None, "grpc")
    tracing.configure(endpoint, protocol)
    atexit.register(tracing.shutdown)  # flush spans still queued for export
    port = metrics.serve(settings.metrics_host, settings.metrics_port)
    if port is not None:
        print(f"metrics on http://{settings.metrics_host}:{port}/metrics", flush=True)
