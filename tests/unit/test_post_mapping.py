"""A post written field by field into its message (fill_post, add_posts) is the message
built from every field at once, for full and for empty posts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from xmp.posts.v1 import post_pb2, scheduling_service_pb2

from post_management.domain.content_rules import Finding, Rule
from post_management.domain.post import Post, PostState, Priority
from post_management.entrypoints.grpc.mapping import add_posts, post_to_proto

NOW = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)


def _stamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _reference(post: Post, findings: tuple[Finding, ...] = ()) -> post_pb2.Post:
    """Every field given to the constructor, as the mapping did before."""
    return post_pb2.Post(
        id=str(post.id),
        user_id=post.user_id,
        account_id=str(post.account_id),
        text=post.text,
        media_ids=post.media_ids,
        reply_to_x_post_id=post.reply_to_x_post_id,
        state=post_pb2.PostState.Value(f"POST_STATE_{post.state.value}"),
        priority=post_pb2.Priority.Value(f"PRIORITY_{post.priority.name}"),
        scheduled_for=_stamp(post.scheduled_for),
        timezone=post.timezone,
        published_at=_stamp(post.published_at),
        x_post_id=post.x_post_id,
        attempt_count=post.attempt_count,
        last_error=post.last_error,
        create_time=_stamp(post.created_at),
        update_time=_stamp(post.updated_at),
        etag=post.etag,
        attachment_ids=[str(media_id) for media_id in post.attachment_ids],
        thread=post.thread,
        segment_x_post_ids=post.published_segment_ids,
        campaign_id=str(post.campaign_id) if post.campaign_id else "",
        content_findings=[
            post_pb2.ContentFinding(rule=f.rule.value, excerpt=f.excerpt, score=f.score)
            for f in findings
        ],
    )


def _full() -> Post:
    return Post(
        id=uuid.uuid4(),
        user_id="alice",
        account_id=uuid.uuid4(),
        text="héllo 👋",
        created_at=NOW - timedelta(days=1),
        updated_at=NOW,
        media_ids=["1", "2"],
        reply_to_x_post_id="99",
        attachment_ids=[uuid.uuid4(), uuid.uuid4()],
        thread=["two", "three"],
        segment_x_post_ids=["5", "6", "7"],
        state=PostState.PUBLISHED,
        priority=Priority.URGENT,
        scheduled_for=NOW.replace(tzinfo=None),  # naive: UTC
        timezone="Europe/Paris",
        published_at=NOW + timedelta(seconds=2),
        x_post_id="5",
        attempt_count=2,
        last_error="boom",
        version=7,
        campaign_id=uuid.uuid4(),
    )


def _bare() -> Post:
    return Post(id=uuid.uuid4(), user_id="bob", account_id=uuid.uuid4(), text="", created_at=NOW,
                updated_at=NOW)  # fmt: skip


@pytest.mark.parametrize("make", [_full, _bare])
def test_fill_equals_the_constructor(make: object) -> None:
    post = make()  # type: ignore[operator]
    findings = (Finding(Rule.SPAM_SHORTENER, "bit.ly", 0.5),)
    assert post_to_proto(post) == _reference(post)
    assert post_to_proto(post, findings) == _reference(post, findings)
    assert post_to_proto(post).SerializeToString(deterministic=True) == _reference(
        post
    ).SerializeToString(deterministic=True)


def test_every_state_and_priority_maps() -> None:
    for state in PostState:
        for priority in Priority:
            post = _full()
            post.state, post.priority = state, priority
            assert post_to_proto(post) == _reference(post)


def test_a_published_post_without_segments_lists_its_x_id() -> None:
    post = _full()
    post.segment_x_post_ids = []
    assert list(post_to_proto(post).segment_x_post_ids) == ["5"]


def test_add_posts_appends_in_order() -> None:
    posts = [_full(), _bare(), _full()]
    response = scheduling_service_pb2.ListScheduledPostsResponse(total_count=3)
    add_posts(response.posts, posts)
    assert list(response.posts) == [_reference(post) for post in posts]
