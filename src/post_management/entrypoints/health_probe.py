"""`post-management health-probe`: grpc_health_probe's flags, output and exit codes.

For exec probes (Kubernetes clusters without native gRPC probes, Docker's HEALTHCHECK)
where the grpc_health_probe binary is not available. It imports only grpc, so it
starts in a fraction of a second. Flags follow Go's flag package, as the original:
`-addr=host:port`, `-addr host:port` and `--addr` are the same; booleans are `-tls` or
`-tls=false`; durations are Go durations (`1s`, `500ms`, `1m30s`).

The service speaks plaintext gRPC only (TLS ends at Envoy or a mesh), so the `-tls`
family, `-alts` and `-spiffe` are checked like the original checks them and then
refused with exit 1: a probe that cannot work fails loudly instead of reporting on a
connection the operator did not ask for.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = 0
INVALID_ARGUMENTS = 1
CONNECTION_FAILURE = 2
RPC_FAILURE = 3
UNHEALTHY = 4

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class UsageError(Exception):
    """Bad flags: exit 1, as grpc_health_probe does."""

    def __init__(self, message: str, *, show_usage: bool = False) -> None:
        super().__init__(message)
        # Like Go's flag package: flags it cannot read print the usage; values the
        # probe then refuses print only the error.
        self.show_usage = show_usage


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds (`1s`, `1.5s`, `300ms`, `1m30s`, `-1s`, `0`)."""
    sign, rest = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.lstrip("+"))
    if rest == "0":
        return 0.0
    total, position = 0.0, 0
    while position < len(rest):
        match = _DURATION_PART.match(rest, position)
        if match is None:
            raise UsageError(f'invalid duration "{text}"', show_usage=True)
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not rest:
        raise UsageError(f'invalid duration "{text}"', show_usage=True)
    return sign * total


def format_duration(seconds: float) -> str:
    """Roughly Go's Duration.String(), for messages."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


@dataclass
class Flags:
    addr: str = ""
    service: str = ""
    user_agent: str = "grpc_health_probe"
    connect_timeout: float = 1.0
    rpc_timeout: float = 1.0
    rpc_headers: list[tuple[str, str]] = field(default_factory=list)
    gzip: bool = False
    verbose: bool = False
    tls: bool = False
    tls_no_verify: bool = False
    tls_ca_cert: str = ""
    tls_client_cert: str = ""
    tls_client_key: str = ""
    tls_server_name: str = ""
    alts: bool = False
    spiffe: bool = False


_BOOLEAN = {"gzip", "v", "tls", "tls-no-verify", "alts", "spiffe"}
_VALUED = {
    "addr",
    "service",
    "user-agent",
    "connect-timeout",
    "rpc-timeout",
    "rpc-header",
    "tls-ca-cert",
    "tls-client-cert",
    "tls-client-key",
    "tls-server-name",
}
USAGE = """usage: post-management health-probe -addr HOST:PORT [flags]
  -addr string             (required) host:port of the gRPC server
  -service string          service name to check (default "": the whole server)
  -connect-timeout value   timeout for establishing the connection (default 1s)
  -rpc-timeout value       timeout for the health check RPC (default 1s)
  -rpc-header value        extra metadata "key: value" (repeatable)
  -user-agent string       user-agent header (default "grpc_health_probe")
  -gzip                    gzip-compress the request
  -v                       verbose: also print the time taken
  -tls, -tls-no-verify, -tls-ca-cert, -tls-client-cert, -tls-client-key,
  -tls-server-name, -alts, -spiffe
                           refused (exit 1): the service serves plaintext gRPC only
exit codes: 0 SERVING, 1 bad arguments, 2 connection failure, 3 RPC failure,
4 not SERVING"""


def _boolean(name: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f'invalid boolean value "{value}" for -{name}', show_usage=True)


def _split(args: Sequence[str]) -> list[tuple[str, str | None]]:
    """(name, value) pairs the way Go's flag package reads them."""
    pairs: list[tuple[str, str | None]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            raise UsageError(f"unexpected argument {arg!r}", show_usage=True)
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name.startswith("-") or name.startswith("="):
            raise UsageError(f"bad flag syntax: {arg}", show_usage=True)
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("h", "help"):
            raise UsageError("", show_usage=True)
        if name in _BOOLEAN:
            pairs.append((name, value))
        elif name in _VALUED:
            if value is None:
                if index >= len(args):
                    raise UsageError(f"flag needs an argument: -{name}", show_usage=True)
                value = args[index]
                index += 1
            pairs.append((name, value))
        else:
            raise UsageError(f"flag provided but not defined: -{name}", show_usage=True)
    if index < len(args):
        raise UsageError(f"unexpected argument {args[index]!r}", show_usage=True)
    return pairs


def parse(args: Sequence[str]) -> Flags:
    flags = Flags()
    setters: dict[str, Callable[[str | None], None]] = {
        "addr": lambda v: setattr(flags, "addr", v),
        "service": lambda v: setattr(flags, "service", v),
        "user-agent": lambda v: setattr(flags, "user_agent", v),
        "connect-timeout": lambda v: setattr(flags, "connect_timeout", parse_duration(v or "")),
        "rpc-timeout": lambda v: setattr(flags, "rpc_timeout", parse_duration(v or "")),
        "rpc-header": lambda v: flags.rpc_headers.append(_header(v or "")),
        "tls-ca-cert": lambda v: setattr(flags, "tls_ca_cert", v),
        "tls-client-cert": lambda v: setattr(flags, "tls_client_cert", v),
        "tls-client-key": lambda v: setattr(flags, "tls_client_key", v),
        "tls-server-name": lambda v: setattr(flags, "tls_server_name", v),
    }
    for name, value in _split(args):
        if name in _BOOLEAN:
            attribute = {"v": "verbose", "tls-no-verify": "tls_no_verify"}.get(name, name)
            setattr(flags, attribute, True if value is None else _boolean(name, value))
        else:
            setters[name](value)
    _validate(flags)
    return flags


def _header(value: str) -> tuple[str, str]:
    key, separator, content = value.partition(":")
    if not separator or not key.strip():
        raise UsageError(f'rpc header "{value}" is not in "key: value" form')
    return key.strip().lower(), content.strip()


def _validate(flags: Flags) -> None:
    """grpc_health_probe's checks, in its order, then this service's TLS refusal."""
    if not flags.addr:
        raise UsageError("-addr not specified")
    if flags.connect_timeout <= 0:
        raise UsageError(
            "-connect-timeout must be greater than zero "
            f"(specified: {format_duration(flags.connect_timeout)})"
        )
    if flags.rpc_timeout <= 0:
        specified = format_duration(flags.rpc_timeout)
        raise UsageError(f"-rpc-timeout must be greater than zero (specified: {specified})")
    if flags.alts and flags.spiffe:
        raise UsageError("-alts and -spiffe are mutually incompatible")
    if flags.tls and (flags.alts or flags.spiffe):
        raise UsageError("cannot specify -tls with -alts or -spiffe")
    for name, value in (
        ("-tls-no-verify", flags.tls_no_verify),
        ("-tls-ca-cert", flags.tls_ca_cert),
        ("-tls-client-cert", flags.tls_client_cert),
        ("-tls-server-name", flags.tls_server_name),
    ):
        if value and not flags.tls:
            raise UsageError(f"specified {name} without specifying -tls")
    if flags.tls_no_verify and flags.tls_ca_cert:
        raise UsageError(
            "cannot specify -tls-ca-cert with -tls-no-verify (CA cert would not be used)"
        )
    if flags.tls_no_verify and flags.tls_server_name:
        raise UsageError(
            "cannot specify -tls-server-name with -tls-no-verify (server name would not be used)"
        )
    if bool(flags.tls_client_cert) != bool(flags.tls_client_key):
        raise UsageError("specify both -tls-client-cert and -tls-client-key")
    if flags.tls or flags.alts or flags.spiffe:
        raise UsageError(
            "-tls, -alts and -spiffe are not supported: post-management serves plaintext "
            "gRPC only (TLS ends at Envoy or the mesh); probe the pod's gRPC port without them"
        )


def probe(flags: Flags, err: TextIO) -> int:
    """One Check call; grpc_health_probe's messages on stderr and its exit code."""
    started = time.monotonic()
    options = [("grpc.primary_user_agent", flags.user_agent)]
    compression = grpc.Compression.Gzip if flags.gzip else None
    with grpc.insecure_channel(flags.addr, options=options, compression=compression) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=flags.connect_timeout)
        except grpc.FutureTimeoutError:
            timeout = format_duration(flags.connect_timeout)
            print(f'timeout: failed to connect service "{flags.addr}" within {timeout}', file=err)
            return CONNECTION_FAILURE
        connected = time.monotonic()
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=flags.service),
                timeout=flags.rpc_timeout,
                metadata=flags.rpc_headers or None,
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            if code == grpc.StatusCode.UNIMPLEMENTED:
                print(
                    "error: this server does not implement the grpc health protocol "
                    f"(grpc.health.v1.Health): {details}",
                    file=err,
                )
            elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
                timeout = format_duration(flags.rpc_timeout)
                print(f"timeout: health rpc did not complete within {timeout}", file=err)
            else:
                name = code.name if code is not None else "UNKNOWN"
                print(
                    f"error: health rpc failed: rpc error: code = {name} desc = {details}", file=err
                )
            return RPC_FAILURE
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if flags.verbose:
        print(f"connection established (took {connected - started:.3f}s)", file=err)
        print(
            f"time elapsed: connect={connected - started:.3f}s "
            f"rpc={time.monotonic() - connected:.3f}s",
            file=err,
        )
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        print(f'service unhealthy (responded with "{status}")', file=err)
        return UNHEALTHY
    print(f"status: {status}", file=err)
    return SERVING


def main(args: Sequence[str], err: TextIO | None = None) -> int:
    stream = err if err is not None else sys.stderr
    try:
        flags = parse(args)
    except UsageError as exc:
        if str(exc):
            print(f"error: {exc}", file=stream)
        if exc.show_usage:
            print(USAGE, file=stream)
        return INVALID_ARGUMENTS
    return probe(flags, stream)
