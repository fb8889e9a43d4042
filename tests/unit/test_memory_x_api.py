"""The memory X's scripts: queued answers are used in order, then X answers itself
(what it answers unscripted is proven against the emulator in tests/contract)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from post_management.adapters.memory.clock import SettableClock
from post_management.adapters.memory.x_api import ANSWER_LOST, AS_X, MemoryXApi
from post_management.ports.x_api import (
    Duplicate,
    MediaUploaded,
    NewPost,
    PermanentFailure,
    Published,
    RateLimited,
    Timeline,
    UnknownOutcome,
    XCredentials,
)

ALICE = XCredentials("alice-token", "secret")
START = datetime(2026, 6, 1, tzinfo=UTC)


def test_create_script_in_order_then_x_itself() -> None:
    x = MemoryXApi(SettableClock(START))
    x.register_user(ALICE.access_token, "42", "alice")
    limited = RateLimited(reset_at=START + timedelta(minutes=15))
    x.script_create(limited, AS_X, ANSWER_LOST, Duplicate())
    assert x.create_post(ALICE, NewPost("a")) == limited
    assert isinstance(x.create_post(ALICE, NewPost("b")), Published)
    lost = x.create_post(ALICE, NewPost("c"))
    assert isinstance(lost, UnknownOutcome) and lost.request_sent
    assert isinstance(x.create_post(ALICE, NewPost("d")), Duplicate)
    assert isinstance(x.create_post(ALICE, NewPost("e")), Published)
    # Every call is recorded; only the accepted ones are on X, stamped with the clock.
    assert [c.post.text for c in x.calls] == ["a", "b", "c", "d", "e"]
    assert [(p.text, p.author_id, p.created_at) for p in x.posts("42")] == [
        ("b", "42", START),
        ("c", "42", START),
        ("e", "42", START),
    ]
    assert x.posts("7") == []


def test_timeline_and_upload_scripts() -> None:
    x = MemoryXApi()
    cut = Timeline((), complete=False)
    x.script_timeline(cut, UnknownOutcome("down"))
    assert x.recent_posts(ALICE, START) == cut
    assert x.recent_posts(ALICE, START) == UnknownOutcome("down")
    assert x.recent_posts(ALICE, START) == Timeline(())
    x.script_upload(PermanentFailure("bad media", status=400))
    assert x.upload_media(ALICE, b"png", "image/png") == PermanentFailure("bad media", status=400)
    assert x.uploads == []
    assert isinstance(x.upload_media(ALICE, b"", "image/png"), PermanentFailure)
    uploaded = x.upload_media(ALICE, b"png", "image/png")
    assert isinstance(uploaded, MediaUploaded) and x.uploads == [uploaded.media_id]


def test_an_unknown_token_is_a_stable_user_of_its_own() -> None:
    first, second = MemoryXApi(), MemoryXApi()
    me, again = first.me(ALICE), second.me(ALICE)
    assert me == again
    assert me != first.me(XCredentials("bob-token", "secret"))
