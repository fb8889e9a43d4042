"""Outbox payload -> Kafka record value and CloudEvents headers, and back.

Payloads are stored as proto3 JSON (domain/events.py); parsing them into the
generated message both validates them and gives the binary form.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from post_management.adapters.kafka.registry import message_class

JSON_CONTENT_TYPE = "application/json"
PROTOBUF_CONTENT_TYPE = "application/protobuf"
CLOUDEVENTS_SPEC_VERSION = "1.0"
# Trace context stored with the row is forwarded so consumers join the trace.
FORWARDED_HEADERS = ("traceparent", "tracestate", "x-request-id")


class ValueFormat(enum.StrEnum):
    JSON = "json"
    PROTOBUF = "protobuf"


class InvalidPayload(ValueError):
    """A payload (or record value) that does not parse as its event's message."""


def to_message(event_type: str, payload: Mapping[str, Any]) -> Message:
    """Parse a stored payload; unknown fields and wrong types are refused."""
    message = message_class(event_type)()
    try:
        json_format.ParseDict(dict(payload), message)
    except json_format.ParseError as exc:
        raise InvalidPayload(f"{event_type}: {exc}") from exc
    return message


def to_json_dict(message: Message) -> dict[str, Any]:
    # Every field present (zeros too) so consumers need no schema defaults.
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def content_type(message: Message, value_format: ValueFormat) -> str:
    if value_format is ValueFormat.JSON:
        return JSON_CONTENT_TYPE
    return f"{PROTOBUF_CONTENT_TYPE}; proto={message.DESCRIPTOR.full_name}"


def encode(message: Message, value_format: ValueFormat) -> tuple[bytes, str]:
    """The record value and its content type."""
    if value_format is ValueFormat.JSON:
        text = json.dumps(to_json_dict(message), separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8"), content_type(message, value_format)
    return message.SerializeToString(deterministic=True), content_type(message, value_format)


def decode(event_type: str, value: bytes, content_type_header: str) -> Message:
    """For consumers: the message of a record, whichever format it was sent in."""
    message = message_class(event_type)()
    media_type = content_type_header.split(";", 1)[0].strip().lower()
    try:
        if media_type == JSON_CONTENT_TYPE:
            json_format.Parse(value.decode("utf-8"), message)
        elif media_type == PROTOBUF_CONTENT_TYPE:
            message.ParseFromString(value)
        else:
            raise InvalidPayload(f"unsupported content-type {content_type_header!r}")
    except (json_format.ParseError, DecodeError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"{event_type}: {exc}") from exc
    return message


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cloudevent_headers(
    *,
    event_id: str,
    event_type: str,
    source: str,
    occurred_at: datetime,
    content_type_value: str,
    subject: str,
    row_headers: Mapping[str, Any] | None = None,
) -> list[tuple[str, bytes]]:
    """CloudEvents Kafka binary-mode headers, plus forwarded trace context."""
    headers = [
        ("ce_specversion", CLOUDEVENTS_SPEC_VERSION),
        ("ce_id", event_id),
        ("ce_type", event_type),
        ("ce_source", source),
        ("ce_time", rfc3339(occurred_at)),
        ("ce_subject", subject),
        ("content-type", content_type_value),
    ]
    for name in FORWARDED_HEADERS:
        value = (row_headers or {}).get(name)
        if isinstance(value, str) and value:
            headers.append((name, value))
    return [(name, value.encode("utf-8")) for name, value in headers]


def header_map(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Record headers as text (the last value wins), for consumers and tests."""
    return {name: value.decode("utf-8") for name, value in headers or []}
