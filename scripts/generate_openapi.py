"""Write docs/openapi.yaml, the OpenAPI 3.0.3 description of the REST API that Envoy's
gRPC-JSON transcoder serves, from the descriptor set in gen/.

    python scripts/generate_openapi.py [--descriptor FILE] [--out FILE]

Everything comes from the `google.api.http` rules, the `google.api.field_behavior`
annotations and the proto comments. The JSON mapping is the one Envoy is configured
with (see docs/rest.md): camelCase names, enums as names, int64 as strings, Timestamp
as RFC 3339, Duration as "1.5s", FieldMask as a comma-separated string. The freshness
test renders the document again and compares it with the committed file.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DESCRIPTOR = ROOT / "gen" / "xmp_posts_v1.binpb"
DEFAULT_OUT = ROOT / "docs" / "openapi.yaml"

PACKAGE = "xmp.posts.v1"
# Same set as PUBLIC_PREFIXES in entrypoints/grpc/edge.py (a test keeps them equal):
# every other service needs a bearer token.
PUBLIC_SERVICES = frozenset({f"{PACKAGE}.ServiceInfoService"})
# Same set as PUBLIC_METHODS there: X's webhooks authenticate by an HMAC signature.
PUBLIC_METHODS = frozenset(
    {f"{PACKAGE}.AnalyticsService.VerifyXWebhook", f"{PACKAGE}.AnalyticsService.ReceiveXWebhook"}
)
# Detail types the service puts into errors (entrypoints/grpc/errors.py); documented
# so clients can decode `details`.
ERROR_DETAIL_TYPES = (
    "google.rpc.ErrorInfo",
    "google.rpc.BadRequest",
    "google.rpc.PreconditionFailure",
)
ERROR_STATUS = "google.rpc.Status"
# The port render_default_envoy_config() listens on.
LOCAL_SERVER = "http://localhost:8080"

Json = dict[str, Any]

_FD = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[int, Json] = {
    _FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _FD.TYPE_FLOAT: {"type": "number", "format": "float"},
    # 64-bit integers are JSON strings (proto3 JSON mapping).
    _FD.TYPE_INT64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]{1,19}$"},
    _FD.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]{1,19}$"},
    _FD.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]{1,19}$"},
    _FD.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": r"^[0-9]{1,20}$"},
    _FD.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": r"^[0-9]{1,20}$"},
    _FD.TYPE_INT32: {"type": "integer", "format": "int32"},
    _FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _FD.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    _FD.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    _FD.TYPE_BOOL: {"type": "boolean"},
    _FD.TYPE_STRING: {"type": "string"},
    _FD.TYPE_BYTES: {"type": "string", "format": "byte"},
}

_INT64_WRAPPER: Json = {"type": "string", "format": "int64", "pattern": r"^-?[0-9]{1,19}$"}
# Well-known types with a JSON form of their own, written inline where they are used.
_INLINE_WELL_KNOWN: dict[str, Json] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "description": "Seconds with up to 9 decimals and an `s` suffix.",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "example": "1.5s",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths in camelCase, e.g. `text,mediaIds`.",
    },
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int64Value": _INT64_WRAPPER,
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    # Envoy passes an HttpBody through raw, in both directions.
    "google.api.HttpBody": {"description": "The raw HTTP body, passed through unchanged."},
}
# Well-known types kept as components, with a fixed JSON shape.
_COMPONENT_WELL_KNOWN: dict[str, Json] = {
    "google.protobuf.Empty": {
        "type": "object",
        "description": "An empty JSON object, `{}`.",
        "properties": {},
    },
    "google.protobuf.Any": {
        "type": "object",
        "description": (
            "A message of any type: its fields plus `@type`, the type URL, e.g. "
            "`type.googleapis.com/google.rpc.ErrorInfo`."
        ),
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
}

# Constraints the service enforces on fields by their name (entrypoints/grpc/mapping.py,
# services/shared/pagination.py, services/shared/idempotency.py, domain/content.py), so generated
# clients can validate before they call. Ids the service assigns are UUIDs; an empty
# string stands for "none" where a UUID field is optional.
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID_OR_EMPTY = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
_UUID_FIELDS = frozenset(
    {"post_id", "account_id", "campaign_id", "media_id", "attachment_ids", "post_ids"}
)
# Messages whose `id` is a UUID the service assigned.
_UUID_RESOURCES = frozenset(
    f"{PACKAGE}.{name}" for name in ("Post", "Account", "Campaign", "Media")
)
_NUMERIC_X_ID = r"^[0-9]{1,19}$"
_NUMERIC_X_FIELDS = frozenset({"media_ids", "reply_to_x_post_id"})
_TEXT_LIMITS: dict[str, Json] = {
    "user_id": {"maxLength": 128},
    "request_id": {"maxLength": 128},
    "page_token": {"maxLength": 4096},
}

_HTTP_VERBS = ("get", "put", "post", "delete", "patch")
_PATH_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")

# source_code_info path elements (descriptor.proto field numbers).
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2


@dataclass
class Catalog:
    """Every message, enum and service of the descriptor set, by full name."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: list[tuple[str, descriptor_pb2.ServiceDescriptorProto]] = field(default_factory=list)
    comments: dict[str, str] = field(default_factory=dict)

    def comment(self, name: str) -> str:
        return self.comments.get(name, "")


def _clean_comment(location: descriptor_pb2.SourceCodeInfo.Location) -> str:
    text = location.leading_comments or location.trailing_comments
    return textwrap.dedent(text).strip()


def load_catalog(data: bytes) -> Catalog:
    catalog = Catalog()
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        _index_file(catalog, file)
    return catalog


def _index_file(catalog: Catalog, file: descriptor_pb2.FileDescriptorProto) -> None:
    located = {tuple(loc.path): _clean_comment(loc) for loc in file.source_code_info.location}

    def note(name: str, path: tuple[int, ...]) -> None:
        if located.get(path):
            catalog.comments[name] = located[path]

    def add_enum(
        enum: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple[int, ...]
    ) -> None:
        name = f"{scope}.{enum.name}"
        catalog.enums[name] = enum
        note(name, path)
        for i, value in enumerate(enum.value):
            note(f"{name}.{value.name}", (*path, _ENUM_VALUE, i))

    def add_message(
        message: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...]
    ) -> None:
        name = f"{scope}.{message.name}"
        catalog.messages[name] = message
        note(name, path)
        for i, item in enumerate(message.field):
            note(f"{name}.{item.name}", (*path, _MESSAGE_FIELD, i))
        for i, nested in enumerate(message.nested_type):
            add_message(nested, name, (*path, _MESSAGE_NESTED, i))
        for i, enum in enumerate(message.enum_type):
            add_enum(enum, name, (*path, _MESSAGE_ENUM, i))

    for i, message in enumerate(file.message_type):
        add_message(message, file.package, (_FILE_MESSAGE, i))
    for i, enum in enumerate(file.enum_type):
        add_enum(enum, file.package, (_FILE_ENUM, i))
    for i, service in enumerate(file.service):
        name = f"{file.package}.{service.name}"
        catalog.services.append((name, service))
        note(name, (_FILE_SERVICE, i))
        for j, method in enumerate(service.method):
            note(f"{name}.{method.name}", (_FILE_SERVICE, i, _SERVICE_METHOD, j))


def component_name(full_name: str) -> str:
    """The project's own types go by their short name, others by their full name."""
    if full_name.startswith(f"{PACKAGE}."):
        return full_name[len(PACKAGE) + 1 :]
    return full_name


def _ref(full_name: str) -> Json:
    return {"$ref": f"#/components/schemas/{component_name(full_name)}"}


def _behaviors(item: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(item.options.Extensions[field_behavior_pb2.field_behavior])


def is_required(item: descriptor_pb2.FieldDescriptorProto) -> bool:
    return field_behavior_pb2.REQUIRED in _behaviors(item)


def _with_notes(schema: Json, notes: Json) -> Json:
    """A schema plus description/readOnly/...; a $ref takes no siblings in 3.0, so wrap it."""
    if not notes:
        return schema
    if "$ref" in schema:
        return {"allOf": [schema], **notes}
    merged = {**schema, **notes}
    if "description" in schema and "description" in notes:
        merged["description"] = f"{notes['description']}\n\n{schema['description']}"
    return merged


class Builder:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        # Full names of the messages and enums that need a component schema.
        self.wanted: set[str] = set()
        # Request bodies of `body: "*"` rules with path fields, by component name.
        self.bodies: dict[str, Json] = {}

    # Field and message schemas -------------------------------------------------

    def _is_map(self, item: descriptor_pb2.FieldDescriptorProto) -> bool:
        if item.type != _FD.TYPE_MESSAGE or item.label != _FD.LABEL_REPEATED:
            return False
        return self.catalog.messages[item.type_name.lstrip(".")].options.map_entry

    def value_schema(self, item: descriptor_pb2.FieldDescriptorProto) -> Json:
        """The JSON schema of one value of the field (an element, for repeated fields)."""
        if item.type in _SCALARS:
            return dict(_SCALARS[item.type])
        name = item.type_name.lstrip(".")
        if name in _INLINE_WELL_KNOWN:
            return dict(_INLINE_WELL_KNOWN[name])
        self.wanted.add(name)
        return _ref(name)

    def constrained(
        self, owner: str, item: descriptor_pb2.FieldDescriptorProto, *, path: bool = False
    ) -> Json:
        """The field's schema with the limits the service enforces on it."""
        schema = self.field_schema(item)
        target = schema["items"] if schema.get("type") == "array" else schema
        if target.get("type") == "string" and "format" not in target and "enum" not in target:
            is_uuid = item.name in _UUID_FIELDS or (item.name == "id" and owner in _UUID_RESOURCES)
            if is_uuid:
                strict = path or is_required(item) or item.label == _FD.LABEL_REPEATED
                target["pattern"] = _UUID if strict else _UUID_OR_EMPTY
                if strict:
                    target["format"] = "uuid"
            elif item.name in _NUMERIC_X_FIELDS:
                strict = item.label == _FD.LABEL_REPEATED
                target["pattern"] = _NUMERIC_X_ID if strict else r"^([0-9]{1,19})?$"
            elif item.name in _TEXT_LIMITS:
                target.update(_TEXT_LIMITS[item.name])
                if path or is_required(item):
                    target["minLength"] = 1
        if target.get("type") == "integer" and item.name in ("page_size", "limit", "offset"):
            target["minimum"] = 0
        return schema

    def field_schema(self, item: descriptor_pb2.FieldDescriptorProto) -> Json:
        if self._is_map(item):
            entry = self.catalog.messages[item.type_name.lstrip(".")]
            value = next(f for f in entry.field if f.name == "value")
            # JSON object keys are strings whatever the proto key type.
            return {"type": "object", "additionalProperties": self.value_schema(value)}
        schema = self.value_schema(item)
        if item.label == _FD.LABEL_REPEATED:
            return {"type": "array", "items": schema}
        return schema

    def field_notes(self, owner: str, item: descriptor_pb2.FieldDescriptorProto) -> Json:
        notes: Json = {}
        description = self.catalog.comment(f"{owner}.{item.name}")
        if description:
            notes["description"] = description
        behaviors = _behaviors(item)
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            notes["readOnly"] = True
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            notes["writeOnly"] = True
        if item.options.deprecated:
            notes["deprecated"] = True
        return notes

    def object_schema(
        self,
        full_name: str,
        *,
        skip: frozenset[str] = frozenset(),
        description: str | None = None,
    ) -> Json:
        """The message as a JSON object, without the fields named in `skip`."""
        message = self.catalog.messages[full_name]
        properties: Json = {}
        required: list[str] = []
        for item in message.field:
            if item.name in skip:
                continue
            value = self.constrained(full_name, item)
            properties[item.json_name] = _with_notes(value, self.field_notes(full_name, item))
            if is_required(item):
                required.append(item.json_name)
        schema: Json = {"type": "object"}
        text = self.catalog.comment(full_name) if description is None else description
        oneofs = self._oneof_notes(message)
        if oneofs:
            text = "\n\n".join(part for part in (text, oneofs) if part)
        if text:
            schema["description"] = text
        schema["properties"] = properties
        if required:
            schema["required"] = required
        return schema

    @staticmethod
    def _oneof_notes(message: descriptor_pb2.DescriptorProto) -> str:
        lines = []
        for index, oneof in enumerate(message.oneof_decl):
            members = [
                f"`{f.json_name}`"
                for f in message.field
                if f.HasField("oneof_index") and f.oneof_index == index and not f.proto3_optional
            ]
            if len(members) > 1:
                lines.append(f"At most one of {', '.join(members)} is set (oneof {oneof.name}).")
        return "\n".join(lines)

    def enum_schema(self, full_name: str) -> Json:
        enum = self.catalog.enums[full_name]
        lines = []
        for value in enum.value:
            comment = self.catalog.comment(f"{full_name}.{value.name}")
            if comment:
                lines.append(f"- `{value.name}`: {' '.join(comment.split())}")
        description = "\n".join(
            part for part in (self.catalog.comment(full_name), "\n".join(lines)) if part
        )
        schema: Json = {"type": "string"}
        if description:
            schema["description"] = description
        schema["enum"] = [value.name for value in enum.value]
        return schema

    def components(self) -> Json:
        """Schemas for everything wanted, following references until none are new."""
        done: Json = {}
        while pending := sorted(self.wanted - done.keys()):
            for name in pending:
                if name in _COMPONENT_WELL_KNOWN:
                    done[name] = dict(_COMPONENT_WELL_KNOWN[name])
                elif name in self.catalog.enums:
                    done[name] = self.enum_schema(name)
                else:
                    done[name] = self.object_schema(name)
        return {component_name(name): schema for name, schema in sorted(done.items())}

    # Operations ----------------------------------------------------------------

    def _resolve(
        self, message: str, dotted: str
    ) -> tuple[str, descriptor_pb2.FieldDescriptorProto]:
        """The field a dotted proto path (`post.id`) names, with its owning message."""
        owner = message
        *heads, last = dotted.split(".")
        for head in heads:
            item = self._field(owner, head)
            owner = item.type_name.lstrip(".")
        return owner, self._field(owner, last)

    def _field(self, message: str, name: str) -> descriptor_pb2.FieldDescriptorProto:
        for item in self.catalog.messages[message].field:
            if item.name == name:
                return item
        raise SystemExit(f"{message} has no field {name!r} (named by an http rule)")

    def query_parameters(
        self, message: str, bound: set[str], prefix: str = "", json_prefix: str = ""
    ) -> list[Json]:
        """Every leaf field not bound to the path or body, as Envoy binds it: a dotted
        path of JSON names (`post.mediaIds`). Maps cannot be sent in a query string."""
        parameters: list[Json] = []
        for item in self.catalog.messages[message].field:
            path = f"{prefix}{item.name}"
            if path in bound or self._is_map(item):
                continue
            name = f"{json_prefix}{item.json_name}"
            type_name = item.type_name.lstrip(".")
            nested = (
                item.type == _FD.TYPE_MESSAGE
                and item.label != _FD.LABEL_REPEATED
                and type_name not in _INLINE_WELL_KNOWN
                and type_name not in _COMPONENT_WELL_KNOWN
            )
            if nested:
                if path.count(".") < 8:  # recursive messages: stop somewhere
                    parameters += self.query_parameters(type_name, bound, f"{path}.", f"{name}.")
                continue
            if item.type == _FD.TYPE_MESSAGE and type_name not in _INLINE_WELL_KNOWN:
                continue  # repeated messages, Empty and Any have no query-string form
            parameter: Json = {"name": name, "in": "query"}
            notes = self.field_notes(message, item)
            if "description" in notes:
                parameter["description"] = notes["description"]
            if is_required(item) and not prefix:
                parameter["required"] = True
            if item.options.deprecated:
                parameter["deprecated"] = True
            parameter["schema"] = self.constrained(message, item)
            parameters.append(parameter)
        return parameters

    def operation(
        self,
        service: str,
        method: descriptor_pb2.MethodDescriptorProto,
        rule: Any,
        operation_id: str,
    ) -> tuple[str, str, Json]:
        verb = next((v for v in _HTTP_VERBS if getattr(rule, v)), None)
        if verb is None:
            if rule.WhichOneof("pattern") == "custom":
                raise SystemExit(f"{operation_id}: custom verbs are not supported")
            raise SystemExit(f"{operation_id}: http rule without a pattern")
        template = getattr(rule, verb)
        request = method.input_type.lstrip(".")
        response = method.output_type.lstrip(".")
        path_fields = _PATH_VARIABLE.findall(template)
        path = _PATH_VARIABLE.sub(lambda m: "{" + m.group(1) + "}", template)

        op: Json = {"operationId": operation_id, "tags": [service.rsplit(".", 1)[-1]]}
        description = self.catalog.comment(f"{service}.{method.name}")
        if description:
            op["description"] = description
        if method.options.deprecated:
            op["deprecated"] = True

        parameters: list[Json] = []
        for dotted in path_fields:
            owner, item = self._resolve(request, dotted)
            parameter: Json = {
                "name": dotted,
                "in": "path",
                "required": True,
                # The request field Envoy binds the segment to.
                "x-grpc-field-path": dotted,
            }
            if self.catalog.comment(f"{owner}.{item.name}"):
                parameter["description"] = self.catalog.comment(f"{owner}.{item.name}")
            parameter["schema"] = self.constrained(owner, item, path=True)
            parameters.append(parameter)

        body = rule.body
        if body != "*":  # with `*`, every field the path leaves is in the body
            bound = {*path_fields, body} if body else set(path_fields)
            parameters += self.query_parameters(request, bound)
        if parameters:
            op["parameters"] = parameters

        if body:
            op["requestBody"] = self.request_body(service, method, request, body, path_fields)

        if rule.response_body:
            owner, item = self._resolve(response, rule.response_body)
            schema = self.field_schema(item)
        else:
            schema = self.value_schema_of(response)
        op["responses"] = {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": schema}},
            },
            "4XX": {"$ref": "#/components/responses/Error"},
            "5XX": {"$ref": "#/components/responses/Error"},
        }
        if service in PUBLIC_SERVICES or f"{service}.{method.name}" in PUBLIC_METHODS:
            op["security"] = []  # no token needed
        return path, verb, op

    def value_schema_of(self, message: str) -> Json:
        if message in _INLINE_WELL_KNOWN:
            return dict(_INLINE_WELL_KNOWN[message])
        self.wanted.add(message)
        return _ref(message)

    def request_body(
        self,
        service: str,
        method: descriptor_pb2.MethodDescriptorProto,
        request: str,
        body: str,
        path_fields: list[str],
    ) -> Json:
        if body != "*":
            _, item = self._resolve(request, body)
            schema = self.field_schema(item)
            required = is_required(item)
        elif not path_fields:
            schema = self.value_schema_of(request)
            required = any(is_required(f) for f in self.catalog.messages[request].field)
        else:
            # The request minus what the path carries. A nested path field
            # (`{post.id}`) leaves its message in the body: the path value wins.
            top = frozenset(p for p in path_fields if "." not in p)
            name = f"{service.rsplit('.', 1)[-1]}_{method.name}Body"
            description = self.catalog.comment(request)
            path_note = ", ".join(f"`{p}`" for p in path_fields)
            note = f"{component_name(request)} without {path_note}, which the path carries."
            self.bodies[name] = self.object_schema(
                request, skip=top, description="\n\n".join(x for x in (description, note) if x)
            )
            schema = {"$ref": f"#/components/schemas/{name}"}
            required = bool(self.bodies[name].get("required"))
        return {"required": required, "content": {"application/json": {"schema": schema}}}


def build_document(catalog: Catalog) -> Json:
    builder = Builder(catalog)
    # Every request and response message, and all they refer to; messages no RPC
    # uses (the Kafka events) are not part of the REST surface.
    for service, descriptor in catalog.services:
        if service.startswith(f"{PACKAGE}."):
            for method in descriptor.method:
                builder.wanted.add(method.input_type.lstrip("."))
                builder.wanted.add(method.output_type.lstrip("."))
    builder.wanted -= _INLINE_WELL_KNOWN.keys()
    builder.wanted.update((ERROR_STATUS, *ERROR_DETAIL_TYPES))

    paths: dict[str, Json] = {}
    tags: list[Json] = []
    for service, descriptor in sorted(catalog.services, key=lambda s: s[0]):
        if not service.startswith(f"{PACKAGE}."):
            continue
        tag: Json = {"name": descriptor.name}
        if catalog.comment(service):
            tag["description"] = catalog.comment(service)
        tags.append(tag)
        for method in descriptor.method:
            if not method.options.HasExtension(annotations_pb2.http):
                continue
            rule = method.options.Extensions[annotations_pb2.http]
            base_id = f"{descriptor.name}_{method.name}"
            bindings = [rule, *rule.additional_bindings]
            for index, binding in enumerate(bindings):
                operation_id = base_id if index == 0 else f"{base_id}{index + 1}"
                path, verb, op = builder.operation(service, method, binding, operation_id)
                if verb in paths.setdefault(path, {}):
                    raise SystemExit(f"{verb.upper()} {path} is bound twice")
                paths[path][verb] = op

    paths = _one_template_per_resource(paths)
    schemas = builder.components()
    overlap = schemas.keys() & builder.bodies.keys()
    if overlap:
        raise SystemExit(f"body schema names clash with messages: {sorted(overlap)}")
    schemas.update(builder.bodies)

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Post management REST API",
            "version": PACKAGE.rsplit(".", 1)[-1],
            "description": _INFO_DESCRIPTION,
        },
        "servers": [{"url": LOCAL_SERVER, "description": "Envoy with the default settings"}],
        "security": [{"bearerAuth": []}],
        "tags": tags,
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "HS256 access token (`post-management` CLI).",
                }
            },
            "responses": {
                "Error": {
                    "description": _ERROR_DESCRIPTION,
                    "content": {"application/json": {"schema": _ref(ERROR_STATUS)}},
                }
            },
            "schemas": {name: schemas[name] for name in sorted(schemas)},
        },
    }


def _one_template_per_resource(paths: dict[str, Json]) -> dict[str, Json]:
    """OpenAPI forbids two templates that differ only in their variables' names
    (`/v1/posts/{post_id}` and `/v1/posts/{post.id}`): such operations move to the
    template whose variables are plain field names; each parameter keeps the field it
    binds in `x-grpc-field-path`."""
    by_shape: dict[str, list[str]] = {}
    for path in paths:
        by_shape.setdefault(_PATH_VARIABLE.sub("{}", path), []).append(path)
    merged: dict[str, Json] = {}
    for shape, templates in by_shape.items():
        canonical = min(templates, key=lambda t: (t.count("."), t))
        names = _PATH_VARIABLE.findall(canonical)
        for template in templates:
            renames = dict(zip(_PATH_VARIABLE.findall(template), names, strict=True))
            for verb, op in paths[template].items():
                for parameter in op.get("parameters", []):
                    if parameter["in"] == "path":
                        parameter["name"] = renames[parameter["name"]]
                if verb in merged.setdefault(canonical, {}):
                    raise SystemExit(f"{verb.upper()} {shape} is bound twice")
                merged[canonical][verb] = op
    return merged


_INFO_DESCRIPTION = """\
REST is the gRPC API of package `xmp.posts.v1` transcoded by Envoy; see docs/rest.md.
JSON conventions: field names are camelCase; enums are names (matched
case-insensitively on input); zero values (`false`, `0`, `""`) are printed;
int64 values are strings; Timestamps are RFC 3339 strings in UTC; Durations are
strings such as `"1.5s"`; FieldMasks are comma-separated strings. Query parameters
are documented in camelCase; the snake_case names are accepted too. Unknown query
parameters are rejected with 400; unknown body fields are ignored.

Generated from the protos by scripts/generate_openapi.py; do not edit by hand."""

_ERROR_DESCRIPTION = """\
A google.rpc.Status as JSON. HTTP status from the gRPC code: INVALID_ARGUMENT,
FAILED_PRECONDITION, OUT_OF_RANGE 400; UNAUTHENTICATED 401; PERMISSION_DENIED 403;
NOT_FOUND 404 (also an unknown path or method); ALREADY_EXISTS, ABORTED 409; a body
over 1 MiB 413; RESOURCE_EXHAUSTED 429; INTERNAL 500; UNIMPLEMENTED 501; UNAVAILABLE
503; DEADLINE_EXCEEDED 504. `details` carry google.rpc.ErrorInfo (always: `reason`
names the error), google.rpc.BadRequest (INVALID_ARGUMENT: the bad fields) or
google.rpc.PreconditionFailure (FAILED_PRECONDITION with reason CONTENT_POLICY: one
violation per finding), each with its `@type`."""


class _Dumper(yaml.SafeDumper):
    """Block style, and multi-line strings as literal blocks so descriptions read well."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(descriptor: Path = DEFAULT_DESCRIPTOR) -> str:
    document = build_document(load_catalog(descriptor.read_bytes()))
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--descriptor", type=Path, default=DEFAULT_DESCRIPTOR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="'-' for stdout")
    args = parser.parse_args()
    text = render(args.descriptor)
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
