"""Domain events -> events.proto messages -> outbox payloads and Kafka record values
and CloudEvents headers, and back.

`message_of` turns a typed domain event (domain/events.py) into its message: each
field of the event fills the message's field of the same name (ids as strings, times
as Timestamps and Durations, enums by their member's name). `outbox_payload` is that message
as proto3 JSON, the form the outbox stores (adapters/db/outbox.py); the relay parses
a stored payload back into the message, which both validates it and gives the binary
form.

The outbox form of an event whose message holds only strings, integers, booleans,
enums, Timestamps and Durations (each event the publishing engine writes) is rendered
straight from the event by a plan made once per event class (`_plan_of`), without
building the message: the proto3 JSON that protobuf's `json_format` gives for
`message_of` (tests/unit/test_event_serialization.py holds every event type to it).
Events with nested messages, lists or floating-point fields go through `json_format`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
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
    kind = type(event)
    plan = _PLANS[kind] if kind in _PLANS else _PLANS.setdefault(kind, _plan_of(kind))
    return message_payload(event) if plan is None else _render(plan, event)


def message_payload(event: events.DomainEvent) -> dict[str, Any]:
    """`outbox_payload` by way of the message and protobuf's `json_format`: what the
    direct rendering must equal."""
    rendered = to_json_dict(message_of(event))
    rendered.pop("sequence", None)
    return rendered


# Fields an event gives its message beyond its dataclass fields (properties).
_DERIVED_FIELDS: dict[type[events.DomainEvent], tuple[str, ...]] = {
    events.PostFailed: ("will_retry",),
}


def _wire_fields(event: events.DomainEvent) -> dict[str, Any]:
    """The event's fields under its message's field names: the event's own names, and
    the few fields of another shape made to fit."""
    values = {item.name: getattr(event, item.name) for item in dataclasses.fields(event)}
    for name in _DERIVED_FIELDS.get(type(event), ()):
        values[name] = getattr(event, name)
    if isinstance(event, events.PostMetricsUpdated):
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


# One field of a directly rendered payload: its JSON name, the event's attribute and
# how its value is written (_OMIT: the field is left out, as an unset Timestamp is).
_Step = tuple[str, str, Callable[[Any], Any]]


@dataclasses.dataclass(frozen=True)
class _Plan:
    steps: tuple[_Step, ...]
    # The message's fields the event has no attribute for: their defaults, rendered.
    constants: Mapping[str, Any]


_OMIT = object()
# The longest Duration proto3 allows (10,000 years), in seconds.
_MAX_DURATION_SECONDS = 315_576_000_000
_INT32_TYPES = frozenset(
    (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_FIXED32,
    )
)
_INT64_TYPES = frozenset(
    (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    )
)


def _render(plan: _Plan, event: events.DomainEvent) -> dict[str, Any]:
    payload = dict(plan.constants)
    for name, attribute, render in plan.steps:
        value = render(getattr(event, attribute))
        if value is not _OMIT:
            payload[name] = value
    return payload


# Each event class's plan (None: json_format), made on its first event.
_PLANS: dict[type[events.DomainEvent], _Plan | None] = {}


def _plan_of(event_class: type[events.DomainEvent]) -> _Plan | None:
    """How to render an event class's payload without its message; None when its
    message has a field of a kind left to json_format, when _wire_fields reshapes
    its fields, or when the event has a field its message lacks (message_of raises)."""
    if event_class in (events.PostMetricsUpdated, events.OptimalTimingAnalyzed):
        return None
    descriptor = message_class(event_class.event_type).DESCRIPTOR
    attributes = {item.name for item in dataclasses.fields(event_class)}
    attributes.update(_DERIVED_FIELDS.get(event_class, ()))
    if not attributes <= set(descriptor.fields_by_name):
        return None
    steps: list[_Step] = []
    constants: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.name == "sequence":
            continue  # the outbox numbers post events
        render = _field_renderer(field)
        if render is None:
            return None
        if field.name in attributes:
            steps.append((field.json_name, field.name, render))
        elif (default := render(None)) is not _OMIT:
            constants[field.json_name] = default
    return _Plan(tuple(steps), constants)


def _field_renderer(field: Any) -> Callable[[Any], Any] | None:
    """A field's value (None: unset) as proto3 JSON writes it, with every field without
    presence printed (to_json_dict); None for a kind this module leaves to json_format."""
    if field.is_repeated:
        return None
    if field.message_type is not None:
        name = field.message_type.full_name
        if name == "google.protobuf.Timestamp":
            return _timestamp
        if name == "google.protobuf.Duration":
            return _duration
        return None
    if field.has_presence:
        return None  # a proto3 `optional` scalar: none in events.proto so far
    if field.enum_type is not None:
        return _enum_renderer(field.enum_type)
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string
    if kind == FieldDescriptor.TYPE_BOOL:
        return _bool
    if kind in _INT32_TYPES:
        return _int32
    if kind in _INT64_TYPES:
        return _int64
    return None  # floating point, bytes


def _string(value: Any) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, UUID) else _checked(value, str)


def _bool(value: Any) -> bool:
    return False if value is None else _checked(value, bool)


def _int32(value: Any) -> int:
    return 0 if value is None else _checked(value, int)


def _int64(value: Any) -> str:
    return "0" if value is None else str(_checked(value, int))


def _checked(value: Any, kind: type[Any]) -> Any:
    # As setting the message's field would: a value of another type is refused.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


def _enum_renderer(enum_type: EnumDescriptor) -> Callable[[Any], Any]:
    names: dict[Any, str] = {}
    default = enum_type.values_by_number[0].name if 0 in enum_type.values_by_number else 0

    def render(value: Any) -> Any:
        if value is None:
            return default
        name = names.get(value)
        if name is None:
            number = _scalar(enum_type, value)  # KeyError for a member the enum lacks
            name = names[value] = enum_type.values_by_number[number].name
        return name

    return render


def _timestamp(value: datetime | None) -> Any:
    """Timestamp.ToJsonString of Timestamp.FromDatetime(value): UTC, with 0, 3 or 6
    fraction digits, as few as hold the microseconds."""
    if value is None:
        return _OMIT
    if value.tzinfo is not None:  # a naive time counts as UTC, as FromDatetime reads it
        value = value.astimezone(UTC)
    micros = value.microsecond
    text = value.replace(microsecond=0, tzinfo=None).isoformat()
    if micros == 0:
        return text + "Z"
    if micros % 1000 == 0:
        return f"{text}.{micros // 1000:03d}Z"
    return f"{text}.{micros:06d}Z"


def _duration(value: timedelta | None) -> Any:
    """Duration.ToJsonString of Duration.FromTimedelta(value): "1.250s", "-1.500010s"."""
    if value is None:
        return _OMIT
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, micros = divmod(abs(micros), 1_000_000)
    if seconds > _MAX_DURATION_SECONDS:
        raise ValueError(f"Duration is not valid: {value}")
    if micros == 0:
        return f"{sign}{seconds}s"
    if micros % 1000 == 0:
        return f"{sign}{seconds}.{micros // 1000:03d}s"
    return f"{sign}{seconds}.{micros:06d}s"


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
