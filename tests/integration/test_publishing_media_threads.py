"""Media and threads through the publishing engine, on real PostgreSQL and the X emulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from post_management.adapters.x.client import TweepyXApi
from post_management.domain.post import PostState
from post_management.ports.x_api import NewPost, Published, PublishOutcome, XCredentials
from tests.fixtures.emulator import Emulator
from tests.integration.publishing_fixtures import Engine_, make_engine_
from x_emulator import EmulatorControl

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 4096
# Over two of the client's 1 MiB chunks: three APPENDs.
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x02" * (2 * 1024 * 1024 + 512)
UPLOAD = "POST /1.1/media/upload.json"


class FaultOnCall:
    """The real client, with an emulator fault armed just before the n-th create-post
    call: the fault lands on one segment of a thread and not on the ones before."""

    def __init__(self, api: TweepyXApi, control: EmulatorControl, n: int, **fault: Any) -> None:
        self._api = api
        self._control = control
        self._n = n
        self._fault = fault
        self.calls = 0

    def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        self.calls += 1
        if self.calls == self._n:
            self._control.inject_fault("POST", "/2/tweets", **self._fault)
        return self._api.create_post(creds, post)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


def _uploads(control: EmulatorControl) -> dict[str, int]:
    return {key: n for key, n in control.counters().items() if key.startswith(UPLOAD)}


def _x_media_ids(engine: Engine_, media_id: object) -> list[str]:
    with engine.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT x_media_id FROM media_uploads WHERE media_id = :id"), {"id": media_id}
        ).all()
    return [row[0] for row in rows]


def _settle_and_retry(engine: Engine_) -> None:
    """Let the reconciler look (nothing on X: retry), then let the retry come due."""
    engine.clock.advance(engine.settings.timing.settle_delay)
    engine.run_until_idle()
    engine.clock.advance(engine.settings.timing.policy.cap)
    engine.run_until_idle()


# --- media ------------------------------------------------------------------


def test_two_images_are_uploaded_then_attached(engine_: Engine_) -> None:
    account = engine_.account()
    images = (engine_.media(PNG, "image/png"), engine_.media(JPEG, "image/jpeg"))
    post = engine_.post(account, "two pictures", attachments=images)

    engine_.run_until_idle()

    published = engine_.load(post.id)
    assert published.state is PostState.PUBLISHED
    (on_x,) = engine_.emulator.control.posts(text="two pictures")
    uploaded = [_x_media_ids(engine_, media_id) for media_id in images]
    assert on_x["media_ids"] == [ids[0] for ids in uploaded]  # both, in order
    assert _uploads(engine_.emulator.control) == {UPLOAD: 2, f"{UPLOAD} command=SIMPLE": 2}


def test_a_video_goes_through_chunked_upload_and_processing(engine_: Engine_) -> None:
    account = engine_.account()
    video = engine_.media(MP4, "video/mp4")
    post = engine_.post(account, "a clip", attachments=(video,))

    engine_.run_until_idle()

    assert engine_.load(post.id).state is PostState.PUBLISHED
    counters = engine_.emulator.control.counters()
    assert counters[f"{UPLOAD} command=INIT"] == 1
    assert counters[f"{UPLOAD} command=APPEND"] == 3
    assert counters[f"{UPLOAD} command=FINALIZE"] == 1
    assert counters.get(f"{UPLOAD} command=SIMPLE") is None
    # X processes video asynchronously: the post waited for STATUS to succeed.
    assert counters["GET /1.1/media/upload.json command=STATUS"] >= 1
    (on_x,) = engine_.emulator.control.posts(text="a clip")
    assert on_x["media_ids"] == _x_media_ids(engine_, video)


def test_an_upload_is_not_repeated_when_the_post_is_retried(engine_: Engine_) -> None:
    account = engine_.account()
    image = engine_.media(PNG, "image/png")
    post = engine_.post(account, "retried with its picture", attachments=(image,))
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "status", status=503)

    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHING  # unknown: reconciler decides
    _settle_and_retry(engine_)

    published = engine_.load(post.id)
    assert published.state is PostState.PUBLISHED and published.attempt_count == 2
    counters = engine_.emulator.control.counters()
    assert counters["POST /2/tweets"] == 2
    assert counters[f"{UPLOAD} command=SIMPLE"] == 1
    (on_x,) = engine_.emulator.control.posts(text="retried with its picture")
    assert on_x["media_ids"] == _x_media_ids(engine_, image)


def test_an_upload_with_a_lost_answer_is_retried_before_anything_is_posted(
    engine_: Engine_,
) -> None:
    account = engine_.account()
    image = engine_.media(PNG, "image/png")
    post = engine_.post(account, "upload failed first", attachments=(image,))
    engine_.emulator.control.inject_fault("POST", "/1.1/media/upload.json", "status", status=503)

    engine_.run_until_idle()

    waiting = engine_.load(post.id)
    # Nothing reached the timeline, so no reconciliation: straight to a backoff.
    assert waiting.state is PostState.SCHEDULED and "media" in waiting.last_error
    assert engine_.emulator.control.counters().get("POST /2/tweets") is None
    engine_.clock.advance(engine_.settings.timing.policy.cap)
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHED
    assert len(engine_.emulator.control.posts(text="upload failed first")) == 1


def test_a_refused_upload_fails_the_post(engine_: Engine_) -> None:
    account = engine_.account()
    image = engine_.media(PNG, "image/png")
    post = engine_.post(account, "refused picture", attachments=(image,))
    engine_.emulator.control.inject_fault("POST", "/1.1/media/upload.json", "status", status=400)

    engine_.run_until_idle()

    failed = engine_.load(post.id)
    assert failed.state is PostState.FAILED and failed.attempt_count == 1
    assert "post.failed" in engine_.events(post.id)
    assert engine_.emulator.control.posts(text="refused picture") == []


def test_a_rate_limited_upload_waits_without_spending_an_attempt(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.set_limits(media_per_window=0)
    image = engine_.media(PNG, "image/png")
    post = engine_.post(account, "picture later", attachments=(image,))

    engine_.run_until_idle()

    waiting = engine_.load(post.id)
    assert waiting.state is PostState.SCHEDULED and waiting.attempt_count == 0
    assert "rate_limit.reached" in engine_.events()


# --- threads ----------------------------------------------------------------

THREAD = ("1/3 the news", "2/3 the details", "3/3 the end")


def _chain(control: EmulatorControl) -> list[dict[str, Any]]:
    """The thread's posts on X in segment order; each text must be there exactly once."""
    found = []
    for segment in THREAD:
        posts = control.posts(text=segment)
        assert len(posts) == 1, f"{segment!r} is on X {len(posts)} times"
        found.append(posts[0])
    return found


def _assert_reply_chain(engine: Engine_, post_id: object, reply_to: str | None = None) -> None:
    published = engine.load(post_id)  # type: ignore[arg-type]
    assert published.state is PostState.PUBLISHED
    chain = _chain(engine.emulator.control)
    ids = [p["id"] for p in chain]
    assert [p["in_reply_to_tweet_id"] for p in chain] == [reply_to, ids[0], ids[1]]
    assert published.x_post_id == ids[0]
    assert published.segment_x_post_ids == ids == published.published_segment_ids


def test_a_thread_publishes_as_a_reply_chain(engine_: Engine_) -> None:
    account = engine_.account()
    image = engine_.media(PNG, "image/png")
    post = engine_.post(account, THREAD[0], thread=THREAD[1:], attachments=(image,))

    engine_.run_until_idle()

    _assert_reply_chain(engine_, post.id)
    first, second, third = _chain(engine_.emulator.control)
    # Media go with the first segment only.
    assert first["media_ids"] == _x_media_ids(engine_, image)
    assert second["media_ids"] == third["media_ids"] == []
    assert engine_.events(post.id) == ["post.published", "post.queue_processed"]


def test_a_thread_replying_to_another_post_starts_its_chain_there(engine_: Engine_) -> None:
    account = engine_.account()
    other = engine_.emulator.control.seed_post(account.x_user_id, "someone said", age_seconds=60)
    post = engine_.post(account, THREAD[0], thread=THREAD[1:])
    with engine_.engine.begin() as connection:
        connection.execute(
            text("UPDATE posts SET reply_to_x_post_id = :x WHERE id = :id"),
            {"x": other["id"], "id": post.id},
        )
    engine_.run_until_idle()
    _assert_reply_chain(engine_, post.id, reply_to=other["id"])


@pytest.fixture
def faulty(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator, request: pytest.FixtureRequest
) -> Iterator[tuple[Engine_, FaultOnCall]]:
    proxy = FaultOnCall(x_api, emulator.control, 2, **request.param)
    built = make_engine_(machine_database, proxy, emulator)  # type: ignore[arg-type]
    yield built, proxy
    built.dispatcher.close()
    built.engine.dispose()


@pytest.mark.parametrize(
    "faulty",
    [{"kind": "status", "status": 503}, {"kind": "status", "status": 500, "count": 2}],
    indirect=True,
    ids=["5xx-once", "5xx-twice"],
)
def test_a_5xx_on_segment_two_resumes_at_segment_two(
    faulty: tuple[Engine_, FaultOnCall],
) -> None:
    engine, proxy = faulty
    account = engine.account()
    post = engine.post(account, THREAD[0], thread=THREAD[1:])

    engine.run_until_idle()
    stuck = engine.load(post.id)
    assert stuck.state is PostState.PUBLISHING  # segment 2's outcome is unknown
    assert len(stuck.segment_x_post_ids) == 1  # segment 1 was recorded before it

    for _ in range(3):
        _settle_and_retry(engine)
    _assert_reply_chain(engine, post.id)
    assert proxy.calls == len(THREAD) + len(engine.attempts(post.id)) - 1


@pytest.mark.parametrize(
    "faulty",
    [{"kind": "accept_then_drop"}, {"kind": "timeout", "accept": True}],
    indirect=True,
    ids=["accept-then-drop", "stored-then-timeout"],
)
def test_a_lost_answer_on_segment_two_is_adopted_and_the_rest_follows(
    faulty: tuple[Engine_, FaultOnCall],
) -> None:
    engine, proxy = faulty
    account = engine.account()
    post = engine.post(account, THREAD[0], thread=THREAD[1:])

    engine.run_until_idle()
    assert engine.load(post.id).state is PostState.PUBLISHING
    engine.clock.advance(engine.settings.timing.settle_delay)
    engine.run_until_idle()  # adopt segment 2 from the timeline, then publish segment 3

    _assert_reply_chain(engine, post.id)
    assert proxy.calls == len(THREAD)  # no segment was sent twice
    assert [outcome for _, outcome in engine.attempts(post.id)] == ["adopted_segment", "published"]


def test_a_publisher_that_died_after_segment_two_resumes_at_segment_three(
    engine_: Engine_,
) -> None:
    account = engine_.account()
    post = engine_.post(account, THREAD[0], thread=THREAD[1:])
    (claim,) = engine_.queue.claim_due(10, engine_.settings.lease)
    assert claim.credentials is not None
    creds = XCredentials(claim.credentials.access_token, claim.credentials.access_token_secret)
    # Segments 1 and 2 reach X; only the first id is recorded before the process dies.
    assert engine_.queue.sending(claim, engine_.settings.lease)  # as the publisher does
    first = engine_.publisher._x.create_post(creds, NewPost(THREAD[0]))
    assert isinstance(first, Published)
    assert engine_.queue.record_segment(claim, 0, first.x_post_id, timedelta(seconds=1))
    assert engine_.queue.sending(claim, engine_.settings.lease)
    engine_.publisher._x.create_post(creds, NewPost(THREAD[1], in_reply_to=first.x_post_id))

    engine_.clock.advance(engine_.settings.lease + timedelta(seconds=1))
    engine_.run_until_idle()

    _assert_reply_chain(engine_, post.id)
    # The dead holder cannot record anything any more.
    assert not engine_.queue.record_segment(claim, 1, "1", timedelta(0))


def test_a_published_segment_cannot_be_recorded_twice(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.post(account, THREAD[0], thread=THREAD[1:])
    (claim,) = engine_.queue.claim_due(10, engine_.settings.lease)
    lease = engine_.settings.lease
    assert engine_.queue.record_segment(claim, 0, "101", lease)
    assert not engine_.queue.record_segment(claim, 0, "102", lease)  # replayed
    assert not engine_.queue.record_segment(claim, 2, "103", lease)  # out of order
    assert engine_.load(claim.post_id).segment_x_post_ids == ["101"]


def test_a_thread_whose_settlement_was_lost_is_published_without_calling_x(
    engine_: Engine_,
) -> None:
    account = engine_.account()
    post = engine_.post(account, THREAD[0], thread=THREAD[1:])
    (claim,) = engine_.queue.claim_due(10, engine_.settings.lease)
    for index, x_id in enumerate(("201", "202", "203")):
        assert engine_.queue.record_segment(claim, index, x_id, timedelta(0))

    engine_.clock.advance(engine_.settings.lease + timedelta(seconds=1))
    engine_.run_until_idle()

    published = engine_.load(post.id)
    assert published.state is PostState.PUBLISHED and published.x_post_id == "201"
    # Neither a create-post call nor a timeline read: the stored ids say it all.
    assert not [key for key in engine_.emulator.control.counters() if "tweets" in key]
