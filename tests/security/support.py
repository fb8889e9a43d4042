"""A running server with Envoy in front, generic gRPC/REST calls built from the
descriptors, and a CPU-time meter, shared by the security tests."""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import requests
from google.api import annotations_pb2
from google.protobuf import descriptor, json_format, message_factory
from google.protobuf.message import Message

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto" / "xmp" / "posts" / "v1"
NO_PROXY = [("grpc.enable_http_proxy", 0)]
TIMEOUT = 10.0


def all_methods() -> Iterator[descriptor.MethodDescriptor]:
    """Every RPC of every xmp.posts.v1 service: each proto file's generated module is
    loaded, so a new file or a new RPC shows up here by itself."""
    for proto in sorted(PROTO_DIR.glob("*.proto")):
        module = importlib.import_module(f"xmp.posts.v1.{proto.stem}_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            yield from service.methods


def method_named(full_name: str) -> descriptor.MethodDescriptor:
    for method in all_methods():
        if f"{method.containing_service.name}.{method.name}" == full_name:
            return method
    raise KeyError(full_name)


def request_for(method: descriptor.MethodDescriptor, fields: dict[str, Any]) -> Message:
    cls = message_factory.GetMessageClass(method.input_type)
    return json_format.ParseDict(fields, cls())


def call_grpc(
    channel: grpc.Channel, method: descriptor.MethodDescriptor, request: Message, token: str
) -> tuple[grpc.StatusCode, Message | None]:
    response_cls = message_factory.GetMessageClass(method.output_type)
    stub: Any = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    try:
        answer = stub(request, metadata=(("authorization", f"Bearer {token}"),), timeout=TIMEOUT)
    except grpc.RpcError as error:
        failed: Any = error  # a grpc.Call as well
        return failed.code(), None
    return grpc.StatusCode.OK, answer


@dataclass(frozen=True)
class RestCall:
    verb: str
    path: str
    query: dict[str, str]
    body: Any


def _get_path(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(_camel(part), "") if isinstance(value, dict) else ""
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def rest_call(method: descriptor.MethodDescriptor, request: Message) -> RestCall:
    """The REST request Envoy transcodes into `request`, from the http rule."""
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    template = getattr(rule, verb)
    document = json_format.MessageToDict(request)
    used: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        used.append(match.group(1))
        return str(_get_path(document, match.group(1)))

    path = re.sub(r"\{([a-z_.]+)\}", substitute, template)
    top_used = {_camel(name.split(".")[0]) for name in used if "." not in name}
    if rule.body == "*":
        body = {k: v for k, v in document.items() if k not in top_used}
        return RestCall(verb.upper(), path, {}, body)
    if rule.body:
        return RestCall(verb.upper(), path, {}, document.get(_camel(rule.body), {}))
    query = {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in document.items()
        if k not in top_used and not isinstance(v, dict | list)
    }
    return RestCall(verb.upper(), path, query, None)


def call_rest(
    session: requests.Session, base_url: str, call: RestCall, token: str
) -> requests.Response:
    return session.request(
        call.verb,
        base_url + call.path,
        params=call.query or None,
        json=call.body if call.body is not None else None,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


@dataclass
class CpuTime:
    seconds: float = 0.0


@contextmanager
def cpu_time() -> Iterator[CpuTime]:
    """CPU seconds this process (client and in-process server) spent in the block."""
    spent = CpuTime()
    start = time.process_time()
    try:
        yield spent
    finally:
        spent.seconds = time.process_time() - start
