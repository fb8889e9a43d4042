"""The emulator where it behaves like X (timeline lag, duplicate window, late stores,
reads with replies and media), every answer decoded through tweepy."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import tweepy

from post_management.adapters.x import TweepyXApi
from post_management.adapters.x.transport import XTransport, mount
from post_management.ports.x_api import (
    NewPost,
    Published,
    Timeline,
    UnknownOutcome,
    XCredentials,
)
from tests.fixtures.emulator import Emulator
from tests.support.ports import free_port
from x_emulator import EmulatorControl, EmulatorThread
from x_emulator.behaviour import Behaviour

ALICE_TOKEN = "alice-access-token"
ALICE = XCredentials(ALICE_TOKEN, "alice-access-secret")
LOOKUP_FIELDS = ["referenced_tweets", "attachments", "author_id", "created_at"]
EXPANSIONS = ["attachments.media_keys", "referenced_tweets.id"]


def png(width: int, height: int) -> bytes:
    """A real (tiny) PNG: X's image object reports its size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline SOF0 carrying the size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


@pytest.fixture
def client(emulator: Emulator) -> Iterator[tweepy.Client]:
    """tweepy's v2 client for Alice, decoding answers into its own models."""
    made = tweepy.Client(
        bearer_token="app-bearer",
        consumer_key="ck",
        consumer_secret="cs",
        access_token=ALICE_TOKEN,
        access_token_secret="alice-access-secret",
    )
    mount(made.session, XTransport(emulator.base_url, (1.0, 5.0)))
    try:
        yield made
    finally:
        made.session.close()


@pytest.fixture
def media_api(emulator: Emulator) -> Iterator[tweepy.API]:
    auth = tweepy.OAuth1UserHandler("ck", "cs", ALICE_TOKEN, "alice-access-secret")
    api = tweepy.API(auth)
    mount(api.session, XTransport(emulator.base_url, (1.0, 5.0)))
    try:
        yield api
    finally:
        api.session.close()


def me_id(client: tweepy.Client) -> str:
    return str(client.get_me(user_auth=True).data.id)


def timeline(client: tweepy.Client, user_id: str, **params: Any) -> tweepy.Response:
    return client.get_users_tweets(user_id, user_auth=True, max_results=100, **params)


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# --- timeline lag ---------------------------------------------------------------------


def test_timeline_lags_behind_the_store_and_lookups_by_id_do_not(
    emulator: Emulator, client: tweepy.Client, x_api: TweepyXApi
) -> None:
    emulator.control.set_behaviour(timeline_lag_seconds=45)
    user = me_id(client)
    created = client.create_tweet(text="propagating", user_auth=True)
    post_id = created.data["id"]

    assert timeline(client, user).data is None
    assert timeline(client, user).meta["result_count"] == 0
    hidden = x_api.recent_posts(ALICE, emulator_now_minus(emulator, 60))
    assert isinstance(hidden, Timeline) and hidden.posts == ()
    assert [t.id for t in client.get_tweets([post_id], user_auth=True).data] == [int(post_id)]
    assert client.get_tweet(post_id, user_auth=True).data.text == "propagating"

    emulator.control.advance_clock(44)
    assert timeline(client, user).data is None
    emulator.control.advance_clock(2)
    assert [t.id for t in timeline(client, user).data] == [int(post_id)]
    shown = x_api.recent_posts(ALICE, emulator_now_minus(emulator, 120))
    assert isinstance(shown, Timeline) and [p.id for p in shown.posts] == [post_id]


def emulator_now_minus(emulator: Emulator, seconds: float) -> datetime:
    return datetime.fromtimestamp(emulator.control.now() - seconds, UTC)


def test_a_lag_range_draws_each_posts_delay_from_the_range(
    emulator: Emulator, client: tweepy.Client
) -> None:
    assert emulator.control.set_behaviour(timeline_lag_seconds=(10, 60)) == {
        "timeline_lag_seconds": [10.0, 60.0],
        "duplicate_window_seconds": None,
    }
    user = me_id(client)
    for i in range(12):
        client.create_tweet(text=f"post {i}", user_auth=True)
    lags = [p["visible_at"] - p["created_at"] for p in emulator.control.posts()]
    assert all(10 <= lag <= 60 for lag in lags)
    assert len({round(lag, 3) for lag in lags}) > 6  # drawn per post, not one value
    emulator.control.advance_clock(35)

    def visible_at(now: float) -> set[str]:
        return {p["id"] for p in emulator.control.posts() if p["visible_at"] <= now}

    before = visible_at(emulator.control.now())
    seen = {str(t.id) for t in timeline(client, user).data or []}
    after = visible_at(emulator.control.now())
    assert before <= seen <= after and 0 < len(seen) < 12
    emulator.control.advance_clock(26)
    assert len(timeline(client, user).data) == 12


def test_behaviour_is_validated_and_reset_restores_the_start_options(emulator: Emulator) -> None:
    url = f"{emulator.base_url}/_emulator/behaviour"
    for bad in (
        {"timeline_lag_seconds": -1},
        {"timeline_lag_seconds": [5, 1]},
        {"timeline_lag_seconds": "soon"},
        {"duplicate_window_seconds": -3},
        {"no_such_setting": 1},
    ):
        assert requests.put(url, json=bad, timeout=5).status_code == 400, bad
    emulator.control.set_behaviour(timeline_lag_seconds=3, duplicate_window_seconds=9)
    emulator.control.reset()
    assert emulator.control.behaviour() == {
        "timeline_lag_seconds": 0.0,
        "duplicate_window_seconds": None,
    }
    with EmulatorThread(behaviour=Behaviour((1.0, 2.0), 30.0)) as started:
        control = EmulatorControl(started.base_url)
        control.set_behaviour(timeline_lag_seconds=0, duplicate_window_seconds=None)
        control.reset()
        assert control.behaviour() == {
            "timeline_lag_seconds": [1.0, 2.0],
            "duplicate_window_seconds": 30.0,
        }
        control.close()


def test_module_entry_point_takes_the_behaviour_as_start_options(tmp_path: Any) -> None:
    port = free_port()
    command = [sys.executable, "-m", "x_emulator", "--port", str(port)]
    bad = subprocess.run([*command, "--timeline-lag", "9,2"], capture_output=True, timeout=30)
    assert bad.returncode == 2 and b"min must not exceed max" in bad.stderr
    process = subprocess.Popen(
        [*command, "--timeline-lag", "5,10", "--duplicate-window", "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "listening" in process.stdout.readline()
        got = requests.get(f"http://127.0.0.1:{port}/_emulator/behaviour", timeout=5).json()
        assert got == {"timeline_lag_seconds": [5.0, 10.0], "duplicate_window_seconds": 30.0}
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- duplicate-content window -------------------------------------------------------------


def test_identical_text_is_refused_only_within_the_window(
    emulator: Emulator, client: tweepy.Client
) -> None:
    emulator.control.set_behaviour(duplicate_window_seconds=600)
    client.create_tweet(text="same words", user_auth=True)
    emulator.control.advance_clock(599)
    with pytest.raises(tweepy.Forbidden) as refused:
        client.create_tweet(text="same words", user_auth=True)
    assert "duplicate content" in refused.value.api_messages[0]
    emulator.control.advance_clock(2)
    client.create_tweet(text="same words", user_auth=True)
    assert len(emulator.control.posts(text="same words")) == 2


def test_without_a_window_identical_text_stays_refused(
    emulator: Emulator, client: tweepy.Client
) -> None:
    client.create_tweet(text="once only", user_auth=True)
    emulator.control.advance_clock(30 * 24 * 3600)
    with pytest.raises(tweepy.Forbidden):
        client.create_tweet(text="once only", user_auth=True)


def test_media_only_posts_are_never_refused_as_duplicates(
    emulator: Emulator, client: tweepy.Client, media_api: tweepy.API
) -> None:
    emulator.control.set_behaviour(duplicate_window_seconds=3600)
    first = media_api.simple_upload("a.png", file=io.BytesIO(png(4, 4))).media_id_string
    second = media_api.simple_upload("a.png", file=io.BytesIO(png(4, 4))).media_id_string
    client.create_tweet(media_ids=[first], user_auth=True)
    client.create_tweet(media_ids=[second], user_auth=True)
    client.create_tweet(media_ids=[first], user_auth=True)  # even the same image again
    assert len(emulator.control.posts(text="")) == 3
    assert emulator.control.counters().get("POST /2/tweets duplicate", 0) == 0


# --- replies and media in reads -------------------------------------------------------------


def test_replies_and_media_decode_through_tweepy_in_lookups_and_timelines(
    emulator: Emulator, client: tweepy.Client, media_api: tweepy.API, x_api: TweepyXApi
) -> None:
    user = me_id(client)
    parent = client.create_tweet(text="thread start", user_auth=True).data["id"]
    image = media_api.simple_upload("p.png", file=io.BytesIO(png(6, 3)))
    reply = client.create_tweet(
        text="second part", in_reply_to_tweet_id=parent, media_ids=[image.media_id], user_auth=True
    ).data["id"]
    media_fields = ["width", "height"]

    def check(tweet: tweepy.Tweet, includes: dict[str, Any]) -> None:
        assert tweet.id == int(reply)
        assert [(r.type, str(r.id)) for r in tweet.referenced_tweets] == [("replied_to", parent)]
        assert tweet.attachments == {"media_keys": [image.media_key]}
        assert tweet.in_reply_to_user_id == int(user)
        [media] = includes["media"]
        assert isinstance(media, tweepy.Media)
        assert (media.media_key, media.type, media.width, media.height) == (
            image.media_key,
            "photo",
            6,
            3,
        )
        assert [t.id for t in includes["tweets"]] == [int(parent)]

    fields = [*LOOKUP_FIELDS, "in_reply_to_user_id"]
    many = client.get_tweets(
        [reply],
        tweet_fields=fields,
        expansions=EXPANSIONS,
        media_fields=media_fields,
        user_auth=True,
    )
    check(many.data[0], many.includes)
    one = client.get_tweet(
        reply, tweet_fields=fields, expansions=EXPANSIONS, media_fields=media_fields, user_auth=True
    )
    check(one.data, one.includes)
    listed = timeline(
        client, user, tweet_fields=fields, expansions=EXPANSIONS, media_fields=media_fields
    )
    assert [t.id for t in listed.data] == [int(reply), int(parent)]
    check(listed.data[0], listed.includes)
    assert listed.data[1].referenced_tweets is None

    # The adapter reads the same facts into XPost.
    read = x_api.recent_posts(ALICE, emulator_now_minus(emulator, 60))
    assert isinstance(read, Timeline)
    by_id = {p.id: p for p in read.posts}
    assert by_id[reply].in_reply_to == parent and by_id[reply].media_keys == (image.media_key,)
    assert by_id[parent].in_reply_to is None and by_id[parent].media_keys == ()


def test_unknown_expansions_and_fields_are_refused_like_x(
    emulator: Emulator, client: tweepy.Client
) -> None:
    post_id = client.create_tweet(text="x", user_auth=True).data["id"]
    with pytest.raises(tweepy.BadRequest) as refused:
        client.get_tweets([post_id], expansions=["no.such.expansion"], user_auth=True)
    assert "expansions" in refused.value.api_messages[0]
    with pytest.raises(tweepy.BadRequest):
        client.get_me(user_fields=["shoe_size"], user_auth=True)


def test_video_media_keys_carry_xs_video_prefix(
    emulator: Emulator, client: tweepy.Client, media_api: tweepy.API
) -> None:
    emulator.control.set_limits(media_processing_seconds=0)
    video = media_api.chunked_upload(
        "v.mp4",
        file=io.BytesIO(b"v" * 3000),
        file_type="video/mp4",
        media_category="tweet_video",
    )
    assert video.media_key == f"7_{video.media_id_string}"
    post_id = client.create_tweet(media_ids=[video.media_id], user_auth=True).data["id"]
    found = client.get_tweet(
        post_id, tweet_fields=["attachments"], expansions=EXPANSIONS, user_auth=True
    )
    assert found.data.attachments == {"media_keys": [video.media_key]}
    assert found.includes["media"][0].type == "video"


# --- single lookup -----------------------------------------------------------------------------


def test_single_lookup_answers_one_post_or_a_not_found_error(
    emulator: Emulator, client: tweepy.Client
) -> None:
    post_id = client.create_tweet(text="look me up", user_auth=True).data["id"]
    found = client.get_tweet(post_id, tweet_fields=["author_id", "public_metrics"])  # bearer
    assert isinstance(found.data, tweepy.Tweet)
    assert (str(found.data.id), found.data.text) == (post_id, "look me up")
    assert found.data.public_metrics["impression_count"] == 0
    missing = client.get_tweet("1234567", user_auth=True)
    assert missing.data is None
    assert missing.errors[0]["title"] == "Not Found Error"
    assert missing.errors[0]["parameter"] == "id"
    client.delete_tweet(post_id, user_auth=True)
    assert client.get_tweet(post_id, user_auth=True).data is None
    counters = emulator.control.counters()
    assert counters["GET /2/tweets/{id}"] == 3


# --- late stores and lost answers -----------------------------------------------------------------


def test_late_store_lands_after_the_caller_gave_up(
    emulator: Emulator, x_api: TweepyXApi, client: tweepy.Client
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "late_store", delay_seconds=1.5)
    started = time.monotonic()
    outcome = x_api.create_post(ALICE, NewPost("finished late"))
    assert isinstance(outcome, UnknownOutcome) and "timeout" in outcome.reason
    assert time.monotonic() - started < 1.2
    assert emulator.control.posts(text="finished late") == []
    wait_for(lambda: len(emulator.control.posts(text="finished late")) == 1)
    assert time.monotonic() - started >= 1.4
    stored = emulator.control.posts(text="finished late")[0]
    # Then X knows the text: a resend of it is a duplicate.
    assert isinstance(x_api.create_post(ALICE, NewPost("another")), Published)
    with pytest.raises(tweepy.Forbidden):
        client.create_tweet(text="finished late", user_auth=True)
    assert client.get_tweet(stored["id"], user_auth=True).data.text == "finished late"


def test_late_store_answers_a_caller_that_waited(emulator: Emulator, client: tweepy.Client) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "late_store", delay_seconds=0.3)
    started = time.monotonic()
    created = client.create_tweet(text="slow but fine", user_auth=True)
    assert time.monotonic() - started >= 0.3
    assert [p["id"] for p in emulator.control.posts(text="slow but fine")] == [created.data["id"]]


def test_late_store_of_a_media_only_post_and_reset_cancels_pending_stores(
    emulator: Emulator, x_api: TweepyXApi, media_api: tweepy.API
) -> None:
    image = media_api.simple_upload("a.png", file=io.BytesIO(png(2, 2))).media_id_string
    emulator.control.inject_fault("POST", "/2/tweets", "late_store", delay_seconds=0.8)
    assert isinstance(x_api.create_post(ALICE, NewPost("", (image,))), UnknownOutcome)
    wait_for(lambda: len(emulator.control.posts(text="")) == 1)
    assert emulator.control.posts(text="")[0]["media_ids"] == [image]

    emulator.control.inject_fault("POST", "/2/tweets", "late_store", delay_seconds=0.8)
    assert isinstance(x_api.create_post(ALICE, NewPost("never lands")), UnknownOutcome)
    emulator.control.reset()
    time.sleep(1.0)
    assert emulator.control.posts() == []


def test_answer_lost_after_the_store_is_an_unknown_outcome_with_the_post_on_x(
    emulator: Emulator, x_api: TweepyXApi
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=503, accept=True)
    outcome = x_api.create_post(ALICE, NewPost("stored, answer lost"))
    assert isinstance(outcome, UnknownOutcome) and "503" in outcome.reason
    assert len(emulator.control.posts(text="stored, answer lost")) == 1


# --- media upload answers ---------------------------------------------------------------------


def test_simple_upload_answers_xs_image_object(media_api: tweepy.API) -> None:
    uploaded = media_api.simple_upload("p.png", file=io.BytesIO(png(40, 30)))
    assert uploaded.image == {"image_type": "image/png", "w": 40, "h": 30}
    jpeg = media_api.simple_upload("j.jpg", file=io.BytesIO(jpeg_header(800, 320)))
    assert jpeg.image == {"image_type": "image/jpeg", "w": 800, "h": 320}
    gif = media_api.simple_upload("g.gif", file=io.BytesIO(b"GIF89a" + struct.pack("<HH", 7, 5)))
    assert gif.image == {"image_type": "image/gif", "w": 7, "h": 5}
    assert uploaded.media_key == f"3_{uploaded.media_id_string}"


def test_finalize_answers_xs_video_object_and_images_their_size(
    emulator: Emulator, media_api: tweepy.API
) -> None:
    emulator.control.set_limits(media_processing_seconds=30)
    video = media_api.chunked_upload(
        "v.mp4",
        file=io.BytesIO(b"v" * 3000),
        file_type="video/mp4",
        wait_for_async_finalize=False,
        media_category="tweet_video",
    )
    assert video.video == {"video_type": "video/mp4"}
    assert video.processing_info["state"] == "pending"
    assert not hasattr(video, "image")
    image = media_api.chunked_upload(
        "big.png", file=io.BytesIO(png(12, 9)), file_type="image/png", media_category="tweet_image"
    )
    assert image.image == {"image_type": "image/png", "w": 12, "h": 9}


# --- users/me public_metrics -------------------------------------------------------------------


def test_me_public_metrics_count_posts_and_followers_grow_with_the_clock(
    emulator: Emulator, client: tweepy.Client
) -> None:
    emulator.control.set_behaviour(timeline_lag_seconds=20)

    def metrics() -> dict[str, int]:
        user = client.get_me(user_fields=["public_metrics", "created_at"], user_auth=True).data
        assert isinstance(user, tweepy.User) and user.created_at is not None
        counts: dict[str, int] = user.public_metrics
        return counts

    first = metrics()
    assert set(first) == {"followers_count", "following_count", "tweet_count", "listed_count"}
    assert first["tweet_count"] == 0 and first["followers_count"] >= 50
    assert metrics() == first  # same clock, same answer
    client.create_tweet(text="one", user_auth=True)
    client.create_tweet(text="two", user_auth=True)
    assert metrics()["tweet_count"] == 0  # still propagating, like the timeline
    emulator.control.advance_clock(3600)
    later = metrics()
    assert later["tweet_count"] == 2
    assert first["followers_count"] < later["followers_count"] <= first["followers_count"] + 20
    assert later["following_count"] == first["following_count"]
    assert later["listed_count"] == later["followers_count"] // 200


# --- rate-limit headers ---------------------------------------------------------------------------


def test_every_authenticated_answer_carries_rate_limit_headers(
    emulator: Emulator, client: tweepy.Client, media_api: tweepy.API
) -> None:
    raw = tweepy.Client(
        consumer_key="ck",
        consumer_secret="cs",
        access_token=ALICE_TOKEN,
        access_token_secret="alice-access-secret",
        return_type=requests.Response,
    )
    mount(raw.session, XTransport(emulator.base_url, (1.0, 5.0)))
    user = me_id(client)
    post_id = client.create_tweet(text="counted", user_auth=True).data["id"]
    answers: list[requests.Response] = [
        raw.get_me(user_fields=["public_metrics"], user_auth=True),
        raw.get_tweet(post_id, user_auth=True),
        raw.get_tweet("999", user_auth=True),  # not found is still an answer
        raw.get_tweets([post_id], user_auth=True),
        raw.get_users_tweets(user, user_auth=True),
        raw.create_tweet(text="fresh", user_auth=True),
    ]
    refusals: list[Any] = [
        lambda: raw.create_tweet(text="counted", user_auth=True),  # 403 duplicate
        lambda: raw.delete_tweet("4242", user_auth=True),  # 404
        lambda: raw.get_users_tweets(user, max_results=1, user_auth=True),  # 400
    ]
    for call in refusals:
        with pytest.raises(tweepy.HTTPException) as refused:
            call()
        answers.append(refused.value.response)
    emulator.control.suspend(user)
    with pytest.raises(tweepy.Forbidden) as suspended:
        raw.get_me(user_auth=True)
    assert "suspended" in suspended.value.api_messages[0]
    answers.append(suspended.value.response)
    for response in answers:
        headers = response.headers
        assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(
            headers
        ), (response.request.method, response.url, response.status_code)
        assert int(headers["x-rate-limit-reset"]) > time.time() - 1
    assert answers[1].headers["x-rate-limit-limit"] == "900"
    raw.session.close()


def test_tweepy_sees_the_reset_time_of_a_spent_window(
    emulator: Emulator, client: tweepy.Client
) -> None:
    emulator.control.set_limits(tweet_per_window=2)
    post_id = client.create_tweet(text="read me", user_auth=True).data["id"]
    client.get_tweet(post_id, user_auth=True)
    client.get_tweet(post_id, user_auth=True)
    with pytest.raises(tweepy.TooManyRequests) as limited:
        client.get_tweet(post_id, user_auth=True)
    assert limited.value.response.headers["x-rate-limit-remaining"] == "0"
    reset = int(limited.value.response.headers["x-rate-limit-reset"])
    assert time.time() < reset <= time.time() + 15 * 60 + 1
