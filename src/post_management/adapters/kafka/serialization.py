"""Domain events -> events.proto messages -> outbox payloads and Kafka record values
and CloudEvents headers, and back.

`message_of` turns a typed domain event (domain/events.py) into its message: each
field of the event fills the message's field of the same name (ids as strings, times
as Timestamps and Durations, enums by their member's name). `outbox_payload` is that message
as proto3 JSON, the form the outbox stores (adapters/db/outbox.py); the relay parses
a stored payload back into the message, which both validates it and gives the binary
form.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import DecodeError, Message

from post_management.adapters.kafka.registry import message_class
from post_management.domain import events

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


def message_of(event: events.DomainEvent) -> Message:
    """The event as its message; `sequence` is left for the relay to set."""
    message = message_class(event.event_type)()
    _fill(message, _wire_fields(event))
    return message


def outbox_payload(event: events.DomainEvent) -> dict[str, Any]:
    """The outbox form of an event: its message as proto3 JSON (docs/events.md), without
    the `sequence` the outbox gives post events when it stores them."""
    rendered = to_json_dict(message_of(event))
    rendered.pop("sequence", None)
    return rendered


def _wire_fields(event: events.DomainEvent) -> dict[str, Any]:
    """The event's fields under its message's field names: the event's own names, and
    the few fields of another shape made to fit."""
    values = {item.name: getattr(event, item.name) for item in dataclasses.fields(event)}
    if isinstance(event, events.PostFailed):
        values["will_retry"] = event.will_retry
    elif isinstance(event, events.PostMetricsUpdated):
        counts = values.pop("counts")
        values["metrics"] = {"collected_at": values.pop("collected_at")} | {
            name: int(counts.get(name, 0)) for name in events.METRIC_NAMES
        }
    elif isinstance(event, events.OptimalTimingAnalyzed):
        values["suggestions"] = [dataclasses.asdict(s) for s in event.suggestions]
    return values


def _fill(message: Message, values: Mapping[str, Any]) -> None:
    """Set each field; a name the message lacks raises (KeyError), None leaves it unset."""
    for name, value in values.items():
        descriptor: Any = message.DESCRIPTOR.fields_by_name[name]
        if value is None:
            continue
        if descriptor.message_type is None:
            setattr(message, name, _scalar(descriptor.enum_type, value))
        elif descriptor.is_repeated:
            for item in value:
                _fill_message(getattr(message, name).add(), item)
        else:
            _fill_message(getattr(message, name), value)


def _fill_message(message: Any, value: Any) -> None:
    if isinstance(value, datetime):
        message.FromDatetime(value)  # a Timestamp, in UTC
    elif isinstance(value, timedelta):
        message.FromTimedelta(value)  # a Duration
    else:
        _fill(message, value)


def _scalar(enum_type: EnumDescriptor | None, value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if enum_type is not None:
        # Priority.HIGH -> PRIORITY_HIGH, PostState.FAILED -> POST_STATE_FAILED.
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum_type.name).upper()
        return enum_type.values_by_name[f"{prefix}_{value.name}"].number
    return value


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
