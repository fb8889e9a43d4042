"""The emulator returns text as X does (t.co links, HTML escaping, a media link) and
the adapter maps media keys and expanded links from the timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import requests

from post_management.adapters.x import TweepyXApi
from post_management.ports.x_api import (
    MediaUploaded,
    NewPost,
    PostsFound,
    Published,
    Timeline,
    XCredentials,
)
from tests.fixtures.emulator import Emulator

CAROL = XCredentials("carol-access-token", "carol-access-secret")
TCO = r"https://t\.co/[0-9A-Za-z]{10}"
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 256


def _publish(api: TweepyXApi, post: NewPost) -> str:
    outcome = api.create_post(CAROL, post)
    assert isinstance(outcome, Published), outcome
    return outcome.x_post_id


def test_text_comes_back_rewritten_but_is_stored_raw(x_api: TweepyXApi, emulator: Emulator) -> None:
    raw = "Q&A <live> at https://example.com/talk?a=1&b=2 and http://x.org"
    x_id = _publish(x_api, NewPost(raw))

    found = x_api.lookup_posts(CAROL, [x_id])
    assert isinstance(found, PostsFound)
    assert re.fullmatch(f"Q&amp;A &lt;live&gt; at {TCO} and {TCO}", found.posts[0].text)
    # The control API keeps what was sent, so tests count posts by their text.
    assert [p["id"] for p in emulator.control.posts(text=raw)] == [x_id]


def test_create_post_answers_with_x_text(emulator: Emulator) -> None:
    response = requests.post(
        f"{emulator.base_url}/2/tweets",
        json={"text": "fish & chips https://example.com"},
        headers={
            "Authorization": 'OAuth oauth_consumer_key="ck", oauth_token="carol-access-token"'
        },
        timeout=5,
    )
    assert response.status_code == 201, response.text
    assert re.fullmatch(f"fish &amp; chips {TCO}", response.json()["data"]["text"])


def test_the_timeline_maps_media_keys_and_expanded_links(
    x_api: TweepyXApi, emulator: Emulator
) -> None:
    uploaded = x_api.upload_media(CAROL, PNG, "image/png")
    assert isinstance(uploaded, MediaUploaded)
    with_media = _publish(
        x_api, NewPost("look https://example.com/pic", media_ids=(uploaded.media_id,))
    )
    media_only = _publish(x_api, NewPost("", media_ids=(uploaded.media_id,)))
    plain = _publish(x_api, NewPost("plain words"))

    timeline = x_api.recent_posts(CAROL, datetime.now(UTC) - timedelta(minutes=5))

    assert isinstance(timeline, Timeline)
    posts = {p.id: p for p in timeline.posts}
    assert re.fullmatch(f"look {TCO} {TCO}", posts[with_media].text)
    assert posts[with_media].media_keys == (f"3_{uploaded.media_id}",)
    urls = posts[with_media].urls
    assert urls is not None and urls[0] == "https://example.com/pic"
    assert re.fullmatch(TCO, posts[media_only].text)
    assert posts[media_only].media_keys == (f"3_{uploaded.media_id}",)
    assert (posts[plain].text, posts[plain].media_keys, posts[plain].urls) == (
        "plain words",
        (),
        (),
    )
