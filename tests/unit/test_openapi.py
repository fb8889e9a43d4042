"""docs/openapi.yaml: true to the http rules and the contract.

tests/tools/test_generate_openapi.py runs the script that writes it (the committed file
is fresh, the output deterministic) and validates the document as OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTORS = ROOT / "gen" / "xmp_posts_v1.binpb"
DOCUMENT = ROOT / "docs" / "openapi.yaml"
PACKAGE = "xmp.posts.v1"
VERBS = ("get", "put", "post", "delete", "patch")
ERROR_RESPONSE = {"$ref": "#/components/responses/Error"}


@cache
def document() -> dict[str, Any]:
    # libyaml's safe loader: what yaml.safe_load reads, several times faster.
    loaded = yaml.load(DOCUMENT.read_text(), Loader=yaml.CSafeLoader)
    assert isinstance(loaded, dict)
    return loaded


@cache
def files() -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    return tuple(descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes()).file)


def messages() -> dict[str, descriptor_pb2.DescriptorProto]:
    return {f"{f.package}.{m.name}": m for f in files() for m in f.message_type}


def http_rules() -> Iterator[tuple[str, str, str, Any]]:
    """(service, method, input type, rule) for every binding of every RPC in the package."""
    for file in files():
        if file.package != PACKAGE:
            continue
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    yield service.name, method.name, method.input_type.lstrip("."), binding


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document()["paths"].items():
        for verb, op in item.items():
            if verb in VERBS:
                yield path, verb, op


def operation(verb: str, path: str) -> dict[str, Any]:
    op = document()["paths"].get(path, {}).get(verb)
    assert op is not None, f"{verb.upper()} {path} is not in docs/openapi.yaml"
    return op


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and single-item allOf wrappers to the schema itself."""
    while True:
        if "$ref" in schema:
            name = schema["$ref"].removeprefix("#/components/schemas/")
            schema = document()["components"]["schemas"][name]
        elif list(schema.get("allOf", [])) and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def body_properties(verb: str, path: str) -> dict[str, Any]:
    schema = operation(verb, path)["requestBody"]["content"]["application/json"]["schema"]
    properties = resolve(schema)["properties"]
    assert isinstance(properties, dict)
    return properties


def query_names(verb: str, path: str) -> set[str]:
    return {p["name"] for p in operation(verb, path).get("parameters", []) if p["in"] == "query"}


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


# Structure -----------------------------------------------------------------------------


def test_document_structure() -> None:
    doc = document()
    assert doc["openapi"] == "3.0.3"
    assert {"title", "version"} <= doc["info"].keys()
    schemas = doc["components"]["schemas"]
    responses = doc["components"]["responses"]
    for ref in set(refs(doc)):
        kind, _, name = ref.removeprefix("#/components/").partition("/")
        assert name in doc["components"][kind], f"dangling {ref}"
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids))
    tags = {tag["name"] for tag in doc["tags"]}
    for path, _, op in operations():
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), path
        assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")
        assert set(op["tags"]) <= tags
        assert op["responses"]["4XX"] == ERROR_RESPONSE
        assert op["responses"]["5XX"] == ERROR_RESPONSE
        assert "application/json" in op["responses"]["200"]["content"]
    assert responses["Error"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/google.rpc.Status"
    }
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in schemas)


def test_error_schema_is_code_message_and_typed_details() -> None:
    error = resolve(
        document()["components"]["responses"]["Error"]["content"]["application/json"]["schema"]
    )
    properties = error["properties"]
    assert properties["code"]["type"] == "integer"
    assert properties["message"]["type"] == "string"
    assert properties["details"]["type"] == "array"
    detail = resolve(properties["details"]["items"])
    assert detail["type"] == "object"
    assert detail["required"] == ["@type"]
    assert detail["properties"]["@type"] == {"type": "string"}
    schemas = document()["components"]["schemas"]
    assert {"google.rpc.ErrorInfo", "google.rpc.BadRequest"} <= schemas.keys()


# The http rules ------------------------------------------------------------------------


def test_every_http_rule_appears_exactly_once_with_its_verb_and_path() -> None:
    expected: dict[str, tuple[str, str]] = {}
    for service, method, _, rule in http_rules():
        verb = next(v for v in VERBS if getattr(rule, v))
        path = re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", getattr(rule, verb))
        base = f"{service}_{method}"
        operation_id = base
        index = 1
        while operation_id in expected:
            index += 1
            operation_id = f"{base}{index}"
        expected[operation_id] = (verb, path)
    found = [(op["operationId"], (verb, _bound_path(path, op))) for path, verb, op in operations()]
    assert len(found) == len(expected)
    assert dict(found) == expected
    # Every RPC of the package has an http rule: Envoy serves every service over REST.
    rpcs = [m for f in files() if f.package == PACKAGE for s in f.service for m in s.method]
    assert all(m.options.HasExtension(annotations_pb2.http) for m in rpcs)
    assert len(rpcs) >= 26


def _bound_path(path: str, op: dict[str, Any]) -> str:
    """The template with each variable named by the field it binds (x-grpc-field-path)."""
    fields = {
        p["name"]: p["x-grpc-field-path"] for p in op.get("parameters", []) if p["in"] == "path"
    }
    return re.sub(r"\{([^}]+)\}", lambda m: "{" + fields[m.group(1)] + "}", path)


def _document_path(verb: str, template: str) -> str:
    """The document's path of the operation an http rule binds."""
    for path, op_verb, op in operations():
        if op_verb == verb and _bound_path(path, op) == template:
            return path
    raise AssertionError(f"{verb.upper()} {template} is not in docs/openapi.yaml")


def test_query_parameters_are_every_field_the_path_and_body_leave() -> None:
    all_messages = messages()
    for service, method, request, rule in http_rules():
        verb = next(v for v in VERBS if getattr(rule, v))
        template = getattr(rule, verb)
        path = _document_path(verb, re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", template))
        bound = {name.split(".")[0] for name in re.findall(r"\{([^}=]+)", template)}
        if rule.body == "*":
            assert query_names(verb, path) == set(), f"{service}.{method}"
            continue
        bound.add(rule.body)
        # The package's request messages hold only scalars, enums and well-known
        # types besides the body field, so every other field is one query parameter.
        expected = {f.json_name for f in all_messages[request].field if f.name not in bound}
        assert query_names(verb, path) == expected, f"{service}.{method}"


def test_one_template_per_resource_with_the_field_path_in_an_extension() -> None:
    patch = operation("patch", "/v1/posts/{post_id}")
    (parameter,) = [p for p in patch["parameters"] if p["in"] == "path"]
    assert parameter["name"] == "post_id" and parameter["x-grpc-field-path"] == "post.id"
    assert query_names("patch", "/v1/posts/{post_id}") == {"updateMask"}
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Post"
    }
    get = operation("get", "/v1/posts/{post_id}")
    assert [p["x-grpc-field-path"] for p in get["parameters"] if p["in"] == "path"] == ["post_id"]
    assert "patch" in document()["paths"]["/v1/accounts/{account_id}"]
    # No two templates differ only in their variables' names (OpenAPI forbids it).
    shapes = [re.sub(r"\{[^}]+\}", "{}", path) for path in document()["paths"]]
    assert len(shapes) == len(set(shapes))


# The contract --------------------------------------------------------------------------


def test_schedule_post_body() -> None:
    path = "/api/posts/{post_id}/schedule"
    properties = body_properties("post", path)
    assert {"userId", "scheduledFor", "timezone", "priority"} <= properties.keys()
    assert "postId" not in properties  # carried by the path
    assert operation("post", path)["operationId"] == "PostSchedulingService_SchedulePost"


def test_list_scheduled_posts_query() -> None:
    path = "/api/posts/{user_id}/scheduled"
    assert {"limit", "offset", "fromDate", "toDate"} <= query_names("get", path)
    assert "requestBody" not in operation("get", path)


def test_cancel_schedule_body() -> None:
    properties = body_properties("delete", "/api/posts/{post_id}/schedule")
    assert "userId" in properties


def test_publish_post_body() -> None:
    properties = body_properties("post", "/api/posts/{post_id}/publish")
    assert {"userId", "accountId", "immediatePublish", "overrideSchedule"} <= properties.keys()


@pytest.mark.parametrize(
    "path",
    [
        "/api/posts/{post_id}/metrics",
        "/api/posts/{post_id}/analytics",
        "/api/posts/{user_id}/stats",
        "/health",
        "/ready",
        "/info",
    ],
)
def test_contract_reads_exist(path: str) -> None:
    assert operation("get", path)["responses"]["200"]


def test_health_response_uses_json_names() -> None:
    info = resolve(
        operation("get", "/info")["responses"]["200"]["content"]["application/json"]["schema"]
    )
    assert {"name", "version", "gitCommit", "startTime", "uptime", "components"} == set(
        info["properties"]
    )


# Security ------------------------------------------------------------------------------


def test_bearer_jwt_everywhere_but_service_info() -> None:
    from post_management.entrypoints.grpc.edge import PUBLIC_METHODS, PUBLIC_PREFIXES

    doc = document()
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    public_tags = {
        prefix.strip("/").removeprefix(f"{PACKAGE}.")
        for prefix in PUBLIC_PREFIXES
        if prefix.startswith(f"/{PACKAGE}.")
    }
    assert public_tags == {"ServiceInfoService"}
    # Single public methods (X's signed webhooks), by operation id.
    public_methods = {
        method.strip("/").removeprefix(f"{PACKAGE}.").replace("/", "_") for method in PUBLIC_METHODS
    }
    assert public_methods == {"AnalyticsService_VerifyXWebhook", "AnalyticsService_ReceiveXWebhook"}
    for path, verb, op in operations():
        effective = op.get("security", doc["security"])
        if op["tags"] == ["ServiceInfoService"] or op["operationId"] in public_methods:
            assert effective == [], f"{verb} {path}"
        else:
            assert effective == [{"bearerAuth": []}], f"{verb} {path}"


# The JSON mapping ----------------------------------------------------------------------


def schema_of(message: str) -> dict[str, Any]:
    schema = document()["components"]["schemas"][message]
    assert isinstance(schema, dict)
    return schema


def test_field_behavior_becomes_read_only_write_only_and_required() -> None:
    post = schema_of("Post")
    assert post["properties"]["id"]["type"] == "string"
    assert post["properties"]["id"]["readOnly"] is True
    assert post["properties"]["state"]["readOnly"] is True  # a $ref wrapped in allOf
    assert "readOnly" not in post["properties"]["text"]
    assert post["required"] == ["userId", "accountId"]
    credentials = schema_of("XCredentials")["properties"]
    assert credentials["accessToken"]["writeOnly"] is True
    assert schema_of("Account")["properties"]["credentials"]["writeOnly"] is True


def test_scalar_and_well_known_types() -> None:
    snapshot = schema_of("MetricsSnapshot")["properties"]
    assert snapshot["impressions"] == {
        "type": "string",
        "format": "int64",
        "pattern": "^-?[0-9]{1,19}$",
    }
    assert snapshot["collectedAt"] == {"type": "string", "format": "date-time"}
    info = schema_of("ServiceInfo")["properties"]
    assert info["uptime"]["type"] == "string"
    assert re.fullmatch(info["uptime"]["pattern"], "1.5s")
    assert info["components"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": info["components"]["description"],
    }
    assert schema_of("PostAnalytics")["properties"]["series"]["type"] == "array"
    assert schema_of("UpdatePostRequest")["properties"]["updateMask"]["type"] == "string"
    assert schema_of("google.protobuf.Empty")["type"] == "object"
    assert operation("delete", "/v1/posts/{post_id}")["responses"]["200"]["content"][
        "application/json"
    ]["schema"] == {"$ref": "#/components/schemas/google.protobuf.Empty"}


def test_enums_are_names_with_their_comments() -> None:
    state = schema_of("PostState")
    assert state["type"] == "string"
    assert state["enum"][0] == "POST_STATE_UNSPECIFIED"
    assert "POST_STATE_DEAD_LETTERED" in state["enum"]
    assert "`POST_STATE_DRAFT`: Editable; not queued." in state["description"]


def test_descriptions_come_from_proto_comments() -> None:
    doc = document()
    assert schema_of("Post")["description"] == (
        "A post to be published on X for one of a user's accounts."
    )
    limit = next(
        p
        for p in operation("get", "/api/posts/{user_id}/scheduled")["parameters"]
        if p["name"] == "limit"
    )
    assert limit["description"] == "At most 100; 0 means 20."
    tags = {tag["name"]: tag.get("description", "") for tag in doc["tags"]}
    assert tags["AnalyticsService"] == "How posts perform, and when to post."
    assert operation("get", "/ready")["description"].startswith("UNAVAILABLE (HTTP 503)")


def test_kafka_events_stay_out_of_the_rest_document() -> None:
    # Event messages share the package but are no RPC's request or response.
    assert "PostScheduled" not in document()["components"]["schemas"]
