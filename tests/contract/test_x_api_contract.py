"""The X API port: the same outcomes from the memory X and from tweepy against the
emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from post_management.ports.x_api import (
    AccountSuspended,
    Deleted,
    Duplicate,
    MediaUploaded,
    NewPost,
    PermanentFailure,
    PostsFound,
    Published,
    Timeline,
    Unauthorized,
    UnknownOutcome,
    XCredentials,
    XUser,
)
from tests.contract.conftest import XWorld

ALICE = XCredentials("alice-contract-token", "alice-secret")
BOB = XCredentials("bob-contract-token", "bob-secret")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def publish(x: XWorld, text: str, creds: XCredentials = ALICE, **fields: object) -> str:
    outcome = x.api.create_post(creds, NewPost(text, **fields))  # type: ignore[arg-type]
    assert isinstance(outcome, Published), outcome
    return outcome.x_post_id


def since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


def test_published_posts_are_on_the_authors_timeline_newest_first(x_world: XWorld) -> None:
    first = publish(x_world, "contract one")
    reply = publish(x_world, "contract two", in_reply_to=first)
    publish(x_world, "bob's own", BOB)
    timeline = x_world.api.recent_posts(ALICE, since())
    assert isinstance(timeline, Timeline) and timeline.complete
    assert [p.id for p in timeline.posts] == [reply, first]
    assert [p.text for p in timeline.posts] == ["contract two", "contract one"]
    assert timeline.posts[0].in_reply_to == first
    assert timeline.posts[1].in_reply_to is None
    later = x_world.api.recent_posts(ALICE, datetime.now(UTC) + timedelta(minutes=5))
    assert isinstance(later, Timeline) and later.posts == ()


def test_duplicate_text_is_refused_per_author(x_world: XWorld) -> None:
    publish(x_world, "only once")
    assert isinstance(x_world.api.create_post(ALICE, NewPost("only once")), Duplicate)
    assert isinstance(x_world.api.create_post(BOB, NewPost("only once")), Published)


def test_too_long_is_a_permanent_failure_and_nothing_is_posted(x_world: XWorld) -> None:
    outcome = x_world.api.create_post(ALICE, NewPost("x" * 300))
    assert isinstance(outcome, PermanentFailure) and outcome.status == 400
    timeline = x_world.api.recent_posts(ALICE, since())
    assert isinstance(timeline, Timeline) and timeline.posts == ()


def test_a_lost_answer_is_unknown_yet_the_post_is_there(x_world: XWorld) -> None:
    x_world.lose_next_answer()
    outcome = x_world.api.create_post(ALICE, NewPost("answer lost"))
    assert isinstance(outcome, UnknownOutcome) and outcome.request_sent
    timeline = x_world.api.recent_posts(ALICE, since())
    assert isinstance(timeline, Timeline)
    assert [p.text for p in timeline.posts] == ["answer lost"]
    assert isinstance(x_world.api.create_post(ALICE, NewPost("answer lost")), Duplicate)


def test_a_failure_before_x_acted_is_unknown_and_nothing_is_there(x_world: XWorld) -> None:
    x_world.fail_next_create()
    outcome = x_world.api.create_post(ALICE, NewPost("during an outage"))
    assert isinstance(outcome, UnknownOutcome)
    timeline = x_world.api.recent_posts(ALICE, since())
    assert isinstance(timeline, Timeline) and timeline.posts == ()
    publish(x_world, "during an outage")


def test_suspended_and_revoked(x_world: XWorld) -> None:
    me = x_world.api.me(ALICE)
    assert isinstance(me, XUser)
    assert me.id != ""
    x_world.suspend(me.id)
    assert isinstance(x_world.api.create_post(ALICE, NewPost("suspended")), AccountSuspended)
    x_world.revoke(BOB.access_token)
    assert isinstance(x_world.api.create_post(BOB, NewPost("revoked")), Unauthorized)
    assert isinstance(x_world.api.me(BOB), Unauthorized)


def test_lookup_and_delete(x_world: XWorld) -> None:
    kept, gone = publish(x_world, "kept"), publish(x_world, "gone")
    assert x_world.api.delete_post(ALICE, gone) == Deleted(existed=True)
    assert x_world.api.delete_post(ALICE, gone) == Deleted(existed=False)
    found = x_world.api.lookup_posts(ALICE, [kept, gone])
    assert isinstance(found, PostsFound)
    assert [p.id for p in found.posts] == [kept]
    assert found.missing == (gone,)


def test_media_upload_then_a_post_carrying_it(x_world: XWorld) -> None:
    uploaded = x_world.api.upload_media(ALICE, PNG, "image/png")
    assert isinstance(uploaded, MediaUploaded)
    post = publish(x_world, "with a picture", media_ids=(uploaded.media_id,))
    timeline = x_world.api.recent_posts(ALICE, since())
    assert isinstance(timeline, Timeline)
    (found,) = [p for p in timeline.posts if p.id == post]
    assert found.media_keys is not None
    assert [k.partition("_")[2] for k in found.media_keys] == [uploaded.media_id]
    refused = x_world.api.upload_media(ALICE, PNG, "image/png", before_call=lambda: False)
    assert not isinstance(refused, MediaUploaded)


def test_only_the_author_deletes_and_reads_need_no_account(x_world: XWorld) -> None:
    mine = publish(x_world, "alice's post")
    refused = x_world.api.delete_post(BOB, mine)
    assert isinstance(refused, PermanentFailure) and refused.status == 403
    public = x_world.api.lookup_posts(None, [mine])
    assert isinstance(public, PostsFound) and [p.id for p in public.posts] == [mine]
    assert x_world.api.lookup_posts(ALICE, []) == PostsFound(())
    with pytest.raises(ValueError, match="100"):
        x_world.api.lookup_posts(ALICE, [mine] * 101)


def test_the_timeline_from_an_id_on_and_only_for_aware_times(x_world: XWorld) -> None:
    first = publish(x_world, "before the mark")
    second = publish(x_world, "after the mark")
    newer = x_world.api.recent_posts(ALICE, since(), since_id=first)
    assert isinstance(newer, Timeline) and [p.id for p in newer.posts] == [second]
    with pytest.raises(ValueError, match="timezone-aware"):
        x_world.api.recent_posts(ALICE, datetime(2026, 1, 1))
