"""Proto <-> domain conversion and request field checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.timestamp_pb2 import Timestamp
from xmp.posts.v1 import account_pb2, media_pb2, post_pb2

from post_management.domain.account import Account, AccountState
from post_management.domain.content_rules import Finding
from post_management.domain.errors import InvalidArgument
from post_management.domain.media import Media
from post_management.domain.post import Post, PostState, Priority
from post_management.domain.priority import parse_priority
from post_management.domain.reasons import Reason

MAX_ID_LENGTH = 128


def parse_uuid(value: str, field: str) -> UUID:
    if not value:
        raise InvalidArgument.for_field(field, "is required", reason=Reason.MISSING_FIELD)
    try:
        return UUID(value)
    except ValueError:
        raise InvalidArgument.for_field(
            field, "must be a UUID", reason=Reason.MALFORMED_ID
        ) from None


def required_user_id(value: str, field: str = "user_id") -> str:
    if not value:
        raise InvalidArgument.for_field(field, "is required", reason=Reason.MISSING_FIELD)
    return checked_user_id(value, field)


def checked_user_id(value: str, field: str = "user_id") -> str:
    if len(value) > MAX_ID_LENGTH or not value.isprintable() or value != value.strip():
        raise InvalidArgument.for_field(
            field, f"must be 1-{MAX_ID_LENGTH} printable characters", reason=Reason.MALFORMED_ID
        )
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_SECONDS = 86400


def instant(stamp: Timestamp, field: str) -> datetime:
    """A request's Timestamp as an aware datetime; INVALID_ARGUMENT when its seconds or
    nanos are outside Timestamp's range."""
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except ValueError:
        raise InvalidArgument.for_field(
            field, "is not a valid timestamp", reason=Reason.INVALID_TIMESTAMP
        ) from None


def timestamp(value: datetime | None) -> Timestamp | None:
    """As Timestamp.FromDatetime (naive means UTC) in integer arithmetic: FromDatetime's
    time tuple and calendar.timegm were a hot spot of list answers."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return Timestamp(
        seconds=delta.days * _DAY_SECONDS + delta.seconds, nanos=delta.microseconds * 1000
    )


def set_timestamp(stamp: Timestamp, value: datetime) -> None:
    """`timestamp` written into a message's own Timestamp field: no message built and
    copied in."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    stamp.seconds = delta.days * _DAY_SECONDS + delta.seconds
    stamp.nanos = delta.microseconds * 1000


# --- enums -----------------------------------------------------------------


def post_state_from_proto(value: int, field: str = "state") -> PostState | None:
    """None for UNSPECIFIED (no filter); INVALID_ARGUMENT for unknown numbers."""
    if value == post_pb2.POST_STATE_UNSPECIFIED:
        return None
    if value not in post_pb2.PostState.values():
        raise InvalidArgument.for_field(field, f"unknown state {value}", reason=Reason.UNKNOWN_ENUM)
    return PostState(post_pb2.PostState.Name(value).removeprefix("POST_STATE_"))  # type: ignore[arg-type]


def post_state_to_proto(state: PostState) -> post_pb2.PostState.ValueType:
    return post_pb2.PostState.Value(f"POST_STATE_{state.value}")


def priority_from_proto(value: int, field: str = "priority") -> Priority | None:
    if value == post_pb2.PRIORITY_UNSPECIFIED:
        return None
    if value not in post_pb2.Priority.values():
        raise InvalidArgument.for_field(
            field, f"unknown priority {value}", reason=Reason.UNKNOWN_ENUM
        )
    return Priority[post_pb2.Priority.Name(value).removeprefix("PRIORITY_")]  # type: ignore[arg-type]


def optional_priority(text: str, field: str = "priority") -> Priority | None:
    """A priority as the REST contract spells it ("high", any case); None when blank."""
    return parse_priority(text, field) if text.strip() else None


def priority_to_proto(priority: Priority) -> post_pb2.Priority.ValueType:
    return post_pb2.Priority.Value(f"PRIORITY_{priority.name}")


def account_state_to_proto(state: AccountState) -> account_pb2.AccountState.ValueType:
    return account_pb2.AccountState.Value(f"ACCOUNT_STATE_{state.value}")


# --- resources ---------------------------------------------------------------


_POST_STATES = {state: post_state_to_proto(state) for state in PostState}
_PRIORITIES = {priority: priority_to_proto(priority) for priority in Priority}


def post_to_proto(post: Post, findings: Sequence[Finding] = ()) -> post_pb2.Post:
    return fill_post(post_pb2.Post(), post, findings)


def add_posts(field: RepeatedCompositeFieldContainer[post_pb2.Post], posts: Iterable[Post]) -> None:
    """Posts appended to a response's repeated field, each written in place."""
    add = field.add
    for post in posts:
        fill_post(add(), post)


def fill_post(
    message: post_pb2.Post, post: Post, findings: Sequence[Finding] = ()
) -> post_pb2.Post:
    """Write `post` into an empty message, field by field: the message of a list answer
    is its repeated field's own (`response.posts.add()`), so no post is built apart and
    copied in. Empty and zero fields are left unset, as proto3 leaves them anyway."""
    message.id = str(post.id)
    message.user_id = post.user_id
    message.account_id = str(post.account_id)
    message.text = post.text
    if post.media_ids:
        message.media_ids.extend(post.media_ids)
    if post.reply_to_x_post_id:
        message.reply_to_x_post_id = post.reply_to_x_post_id
    message.state = _POST_STATES[post.state]
    message.priority = _PRIORITIES[post.priority]
    if post.scheduled_for is not None:
        set_timestamp(message.scheduled_for, post.scheduled_for)
    if post.timezone:
        message.timezone = post.timezone
    if post.published_at is not None:
        set_timestamp(message.published_at, post.published_at)
    if post.x_post_id:
        message.x_post_id = post.x_post_id
    if post.attempt_count:
        message.attempt_count = post.attempt_count
    if post.last_error:
        message.last_error = post.last_error
    set_timestamp(message.create_time, post.created_at)
    set_timestamp(message.update_time, post.updated_at)
    message.etag = post.etag
    if post.attachment_ids:
        message.attachment_ids.extend(str(media_id) for media_id in post.attachment_ids)
    if post.thread:
        message.thread.extend(post.thread)
    segments = post.published_segment_ids
    if segments:
        message.segment_x_post_ids.extend(segments)
    if post.campaign_id:
        message.campaign_id = str(post.campaign_id)
    for finding in findings:
        message.content_findings.add(
            rule=finding.rule.value, excerpt=finding.excerpt, score=finding.score
        )
    return message


def media_to_proto(media: Media) -> media_pb2.Media:
    return media_pb2.Media(
        id=str(media.id),
        user_id=media.user_id,
        mime_type=media.mime_type,
        kind=media_pb2.MediaKind.Value(f"MEDIA_KIND_{media.kind.value}"),
        size_bytes=media.size_bytes,
        create_time=timestamp(media.created_at),
    )


def parse_uuids(values: Iterable[str], field: str) -> list[UUID]:
    """Each value a UUID; a bad one is named by its index."""
    return [parse_uuid(value, f"{field}[{index}]") for index, value in enumerate(values)]


def account_to_proto(account: Account) -> account_pb2.Account:
    message = account_pb2.Account(
        id=str(account.id),
        user_id=account.user_id,
        handle=account.handle,
        x_user_id=account.x_user_id,
        has_credentials=account.credentials is not None or account.credentials_unreadable,
        state=account_state_to_proto(account.state),
        timezone=account.timezone,
        create_time=timestamp(account.created_at),
        update_time=timestamp(account.updated_at),
        etag=account.etag,
    )
    json_format.ParseDict(account.posting_rules, message.posting_rules)
    if account.x_monthly_budget_micros is not None:
        message.x_monthly_budget_micros = account.x_monthly_budget_micros
    message.x_budget_reached = account.budget_holds(datetime.now(UTC))
    return message


def posting_rules_to_dict(rules: account_pb2.PostingRules) -> dict[str, Any]:
    return json_format.MessageToDict(rules, preserving_proto_field_name=True)


def mask_paths(mask: FieldMask, writable: frozenset[str], message: str) -> set[str]:
    """The paths of an update mask, each checked to be writable."""
    paths = set(mask.paths)
    unknown = sorted(paths - writable)
    if unknown:
        raise InvalidArgument.for_field(
            "update_mask",
            f"cannot update {', '.join(unknown)}; writable {message} fields: "
            + ", ".join(sorted(writable)),
            reason=Reason.FIELD_NOT_WRITABLE,
        )
    return paths
