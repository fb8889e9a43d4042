"""What `serve` puts around the services: Envoy for REST, the Consul registration,
and the telemetry exports."""

from __future__ import annotations

import atexit

from post_management.adapters.consul import (
    ConsulAgent,
    Registrar,
    ServiceRegistration,
    advertised_address,
)
from post_management.bootstrap.settings import Settings
from post_management.entrypoints.envoy_config import default_descriptor_path, render_envoy_config
from post_management.entrypoints.envoy_process import EnvoyProcess
from post_management.observability import metrics, tracing


def start_envoy(settings: Settings, grpc_port: int) -> EnvoyProcess:
    server, data_dir = settings.server, settings.database.data_dir
    upstream = server.grpc_host if server.grpc_host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - comparing, not binding
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "envoy.yaml"
    config_path.write_text(
        render_envoy_config(
            http_port=server.http_port,
            grpc_host=upstream,
            grpc_port=grpc_port,
            admin_port=server.envoy_admin_port,
            descriptor_path=default_descriptor_path(),
            listen_address=server.http_host,
            edge=server.edge_limits(),
        )
    )
    envoy = EnvoyProcess(
        http_port=server.http_port,
        admin_port=server.envoy_admin_port,
        config_path=config_path,
        log_path=data_dir / "envoy.log",
        host=server.http_host,
    )
    envoy.start()
    return envoy


def service_registrar(settings: Settings, grpc_port: int) -> Registrar | None:
    """Consul registration of the gRPC server when CONSUL_HTTP_ADDR is set."""
    consul = settings.discovery
    if not consul.consul_http_addr:
        return None
    token = consul.consul_http_token
    agent = ConsulAgent(
        consul.consul_http_addr, token.get_secret_value() if token is not None else None
    )
    address = advertised_address(settings.server.grpc_host, consul.consul_service_address)
    return Registrar(agent, ServiceRegistration(consul.consul_service_name, address, grpc_port))


def start_telemetry(settings: Settings) -> None:
    """Traces to the OTLP endpoint when one is set; /metrics for Prometheus."""
    telemetry = settings.telemetry
    endpoint, protocol = telemetry.otlp_traces or (None, "grpc")
    tracing.configure(endpoint, protocol)
    atexit.register(tracing.shutdown)  # flush spans still queued for export
    port = metrics.serve(telemetry.metrics_host, telemetry.metrics_port)
    if port is not None:
        print(f"metrics on http://{telemetry.metrics_host}:{port}/metrics", flush=True)
