"""The tweepy-based X adapter against the emulator: what only the synchronous client
does. The create-post outcomes it gives like the dispatcher's asynchronous poster are
checked through both in tests/integration/test_x_create_post.py."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from post_management.adapters.x import TweepyXApi, XClientSettings
from post_management.adapters.x.transport import XTransport, mount
from post_management.ports.x_api import (
    Deleted,
    Duplicate,
    MediaUploaded,
    NewPost,
    PermanentFailure,
    PostsFound,
    Published,
    RateLimited,
    Timeline,
    Unauthorized,
    UnknownOutcome,
    XApi,
    XCredentials,
    XUser,
)
from tests.fixtures.emulator import Emulator
from tests.integration.x_clients import ALICE, BOB


def publish(api: XApi, text: str, creds: XCredentials = ALICE) -> str:
    outcome = api.create_post(creds, NewPost(text))
    assert isinstance(outcome, Published), outcome
    return outcome.x_post_id


def user_id(api: XApi, creds: XCredentials = ALICE) -> str:
    me = api.me(creds)
    assert isinstance(me, XUser)
    return me.id


def test_adapter_satisfies_the_port(x_api: TweepyXApi) -> None:
    port: XApi = x_api
    assert port is x_api


def test_reply_and_reply_to_a_deleted_post(x_api: TweepyXApi, emulator: Emulator) -> None:
    parent = publish(x_api, "thread start")
    reply = x_api.create_post(ALICE, NewPost("thread reply", in_reply_to=parent))
    assert isinstance(reply, Published)
    stored = emulator.control.posts(text="thread reply")
    assert stored[0]["in_reply_to_tweet_id"] == parent
    assert x_api.delete_post(ALICE, parent) == Deleted(existed=True)
    orphan = x_api.create_post(ALICE, NewPost("late reply", in_reply_to=parent))
    assert isinstance(orphan, PermanentFailure)
    assert orphan.status == 403


def test_revoked_tokens_cannot_read_the_account(x_api: TweepyXApi, emulator: Emulator) -> None:
    emulator.control.revoke(ALICE.access_token)
    assert isinstance(x_api.me(ALICE), Unauthorized)
    assert isinstance(x_api.me(BOB), XUser)


def test_accepted_then_dropped_is_unknown_and_the_post_exists(
    x_api: TweepyXApi, emulator: Emulator
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    outcome = x_api.create_post(ALICE, NewPost("answer lost"))
    assert isinstance(outcome, UnknownOutcome)
    assert outcome.request_sent
    stored = emulator.control.posts(text="answer lost")
    assert len(stored) == 1
    # the reconciler finds it on the account's timeline
    timeline = x_api.recent_posts(ALICE, datetime.now(UTC) - timedelta(minutes=5))
    assert isinstance(timeline, Timeline)
    assert [p.id for p in timeline.posts] == [stored[0]["id"]]
    # and a blind retry would be refused as a duplicate, not published twice
    assert isinstance(x_api.create_post(ALICE, NewPost("answer lost")), Duplicate)
    assert emulator.control.counters()["POST /2/tweets"] == 2


def test_app_daily_cap_is_rate_limited_until_the_day_resets(
    x_api: TweepyXApi, emulator: Emulator
) -> None:
    emulator.control.set_limits(app_posts_per_day=1)
    publish(x_api, "only one today", BOB)
    outcome = x_api.create_post(ALICE, NewPost("over the app cap"))
    assert isinstance(outcome, RateLimited)
    assert outcome.rate_limit is not None and outcome.rate_limit.app_day is not None
    assert outcome.reset_at == outcome.rate_limit.app_day.reset_at
    assert outcome.reset_at - datetime.now(UTC) > timedelta(hours=23)


def test_simple_media_upload_then_post_with_it(x_api: TweepyXApi, emulator: Emulator) -> None:
    uploaded = x_api.upload_media(ALICE, b"\x89PNG\r\n\x1a\n" + b"0" * 256, "image/png")
    assert isinstance(uploaded, MediaUploaded)
    assert emulator.control.counters()["POST /1.1/media/upload.json command=SIMPLE"] == 1
    outcome = x_api.create_post(ALICE, NewPost("with a picture", media_ids=(uploaded.media_id,)))
    assert isinstance(outcome, Published)
    assert emulator.control.posts(text="with a picture")[0]["media_ids"] == [uploaded.media_id]


def test_chunked_video_upload_waits_for_processing(x_api: TweepyXApi, emulator: Emulator) -> None:
    emulator.control.set_limits(media_processing_seconds=0.3)
    started = time.monotonic()
    uploaded = x_api.upload_media(ALICE, b"v" * 3000, "video/mp4")
    assert isinstance(uploaded, MediaUploaded)
    assert time.monotonic() - started >= 0.3
    counters = emulator.control.counters()
    assert counters["POST /1.1/media/upload.json command=INIT"] == 1
    assert counters["POST /1.1/media/upload.json command=APPEND"] == 1
    assert counters["POST /1.1/media/upload.json command=FINALIZE"] == 1
    assert counters["GET /1.1/media/upload.json command=STATUS"] >= 1
    outcome = x_api.create_post(ALICE, NewPost("", media_ids=(uploaded.media_id,)))
    assert isinstance(outcome, Published)


def test_chunked_upload_in_several_segments(emulator: Emulator) -> None:
    api = TweepyXApi(
        XClientSettings("ck", "cs", base_url=emulator.base_url, media_chunk_bytes=1000)
    )
    try:
        uploaded = api.upload_media(ALICE, b"i" * 2500, "image/png", chunked=True)
    finally:
        api.close()
    assert isinstance(uploaded, MediaUploaded)
    assert emulator.control.counters()["POST /1.1/media/upload.json command=APPEND"] == 3


def test_media_processing_that_outlasts_the_deadline_is_unknown(emulator: Emulator) -> None:
    emulator.control.set_limits(media_processing_seconds=60)
    api = TweepyXApi(
        XClientSettings(
            "ck",
            "cs",
            base_url=emulator.base_url,
            media_processing_timeout=0.3,
            media_poll_interval_cap=0.05,
        )
    )
    try:
        outcome = api.upload_media(ALICE, b"v" * 100, "video/mp4")
    finally:
        api.close()
    assert isinstance(outcome, UnknownOutcome)
    assert "processing" in outcome.reason


def test_lookup_of_100_ids_is_one_request(x_api: TweepyXApi, emulator: Emulator) -> None:
    ids = [publish(x_api, f"post number {i}") for i in range(99)]
    gone = publish(x_api, "to be deleted")
    assert x_api.delete_post(ALICE, gone) == Deleted(existed=True)
    before = emulator.control.counters().get("GET /2/tweets", 0)
    outcome = x_api.lookup_posts(ALICE, [*ids, gone])
    assert emulator.control.counters()["GET /2/tweets"] == before + 1
    assert isinstance(outcome, PostsFound)
    assert sorted(p.id for p in outcome.posts) == sorted(ids)
    assert outcome.missing == (gone,)
    first = outcome.posts[0]
    assert first.metrics is not None and first.metrics.engagements is not None
    assert first.created_at is not None and first.created_at.tzinfo is not None
    assert outcome.rate_limit is not None and outcome.rate_limit.window is not None
    with pytest.raises(ValueError, match="100"):
        x_api.lookup_posts(ALICE, [*ids, gone, "1"])


def test_lookup_metrics_grow_and_bearer_reads_are_public_only(
    x_api: TweepyXApi, emulator: Emulator
) -> None:
    post_id = publish(x_api, "watch me grow")
    emulator.control.advance_clock(600)
    early = x_api.lookup_posts(ALICE, [post_id])
    emulator.control.advance_clock(3600)
    later = x_api.lookup_posts(ALICE, [post_id])
    assert isinstance(early, PostsFound) and isinstance(later, PostsFound)
    early_metrics, later_metrics = early.posts[0].metrics, later.posts[0].metrics
    assert early_metrics is not None and later_metrics is not None
    assert 0 < early_metrics.impressions < later_metrics.impressions
    assert later_metrics.url_link_clicks is not None
    public = x_api.lookup_posts(None, [post_id])
    assert isinstance(public, PostsFound)
    assert public.posts[0].metrics is not None
    assert public.posts[0].metrics.impressions == later_metrics.impressions
    assert public.posts[0].metrics.engagements is None


def test_recent_posts_filters_by_time_and_pages_through(
    x_api: TweepyXApi, emulator: Emulator
) -> None:
    alice = user_id(x_api)
    emulator.control.seed_post(alice, "yesterday", age_seconds=86400)
    for i in range(105):
        emulator.control.seed_post(alice, f"recent {i}")
    publish(x_api, "someone else's", BOB)
    outcome = x_api.recent_posts(ALICE, datetime.now(UTC) - timedelta(hours=1), user_id=alice)
    assert isinstance(outcome, Timeline)
    assert len(outcome.posts) == 105
    assert outcome.complete
    assert outcome.posts[0].text == "recent 104"  # newest first
    assert emulator.control.counters()["GET /2/users/{id}/tweets"] == 2
    newest = outcome.posts[0].id
    since = datetime.now(UTC) - timedelta(hours=1)
    nothing_newer = x_api.recent_posts(ALICE, since, since_id=newest)
    assert isinstance(nothing_newer, Timeline)
    assert nothing_newer.posts == ()
    publish(x_api, "newest")
    one_newer = x_api.recent_posts(ALICE, since, since_id=newest)
    assert isinstance(one_newer, Timeline)
    assert [p.text for p in one_newer.posts] == ["newest"]


def test_recent_posts_says_when_the_page_limit_cut_it_short(emulator: Emulator) -> None:
    api = TweepyXApi(XClientSettings("ck", "cs", base_url=emulator.base_url, timeline_max_pages=1))
    try:
        alice = user_id(api)
        for i in range(101):
            emulator.control.seed_post(alice, f"post {i}")
        outcome = api.recent_posts(ALICE, datetime.now(UTC) - timedelta(hours=1))
    finally:
        api.close()
    assert isinstance(outcome, Timeline)
    assert len(outcome.posts) == 100
    assert not outcome.complete


def test_delete_is_idempotent(x_api: TweepyXApi) -> None:
    post_id = publish(x_api, "short lived")
    assert x_api.delete_post(ALICE, post_id) == Deleted(existed=True)
    assert x_api.delete_post(ALICE, post_id) == Deleted(existed=False)


def test_me_names_the_account(x_api: TweepyXApi, emulator: Emulator) -> None:
    emulator.control.register_user(ALICE.access_token, user_id="777", username="alice")
    me = x_api.me(ALICE)
    assert isinstance(me, XUser) and (me.id, me.username, me.name) == ("777", "alice", "alice")
    # users/me is asked for public_metrics: the account's own counts come back.
    assert me.metrics is not None and me.metrics.posts == 0 and me.metrics.followers > 0


def test_transport_rewrites_the_x_com_hosts_too(emulator: Emulator) -> None:
    transport = XTransport(emulator.base_url, (1.0, 1.0))
    assert transport.rewrite("https://upload.x.com/1.1/media/upload.json") == (
        emulator.base_url + "/1.1/media/upload.json"
    )
    assert transport.rewrite("https://example.com/x") == "https://example.com/x"
    with requests.Session() as session:
        mount(session, transport)
        response = session.get("https://api.x.com/_emulator/clock")
    assert response.status_code == 200


def test_bearer_reads_never_log_the_token(
    x_api: TweepyXApi, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        x_api.lookup_posts(None, ["1"])
    assert caplog.records  # the request is logged ...
    assert "test-bearer-token" not in caplog.text  # ... but not the token
