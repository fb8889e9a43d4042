"""The reconciler against an X that behaves like X where it matters: timelines that
list a post late, X finishing a request after the caller gave up, posts that look
alike. "Not on X" needs proof, and a post is never taken for another. Real
PostgreSQL and the X emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from post_management.adapters.x.client import TweepyXApi
from post_management.domain.post import PostState
from post_management.domain.publishing import Settlement, Timing
from post_management.domain.retry import RetryPolicy
from post_management.ports.publishing import XPostIdTaken
from post_management.ports.x_api import MediaUploaded, NewPost, Published, XCredentials
from tests.fixtures.emulator import Emulator
from tests.integration.publishing_fixtures import Engine_, make_engine_

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048
LAG = timedelta(seconds=60)  # this engine's X_TIMELINE_LAG_SECONDS


class SinceRecorder:
    """The real client, noting where each timeline read starts."""

    def __init__(self, api: TweepyXApi) -> None:
        self._api = api
        self.since: list[datetime] = []

    def recent_posts(self, creds: XCredentials, since: datetime, **kw: Any) -> Any:
        self.since.append(since)
        return self._api.recent_posts(creds, since, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


@pytest.fixture
def lagging(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator
) -> Iterator[tuple[Engine_, SinceRecorder]]:
    """An engine whose lag bound is a minute, in front of an X whose timeline lists
    each post 45 s after storing it (as an operator saw on X)."""
    timing = Timing(
        RetryPolicy(base=timedelta(seconds=10), factor=2, max_attempts=3),
        settle_delay=timedelta(seconds=5),
        lag_bound=LAG,
    )
    recorder = SinceRecorder(x_api)
    built = make_engine_(machine_database, recorder, emulator, timing=timing)  # type: ignore[arg-type]
    emulator.control.set_behaviour(timeline_lag_seconds=45)
    yield built, recorder
    built.dispatcher.close()
    built.engine.dispose()


def _sent_at(engine: Engine_, post_id: object) -> datetime:
    with engine.engine.connect() as connection:
        value: datetime = connection.execute(
            text("SELECT max(sent_at) FROM post_attempts WHERE post_id = :id"), {"id": post_id}
        ).scalar_one()
    return value


def _pass(engine: Engine_, seconds: float) -> None:
    engine.clock.advance(timedelta(seconds=seconds))
    engine.run_until_idle()


def _once_on_x_with_its_id(engine: Engine_, post_id: object, author: str) -> None:
    post = engine.load(post_id)
    assert post.state is PostState.PUBLISHED, post.last_error
    on_x = engine.emulator.control.posts(author_id=author)
    assert [p["id"] for p in on_x] == [post.x_post_id]


# --- "not on X" needs proof -------------------------------------------------------


@pytest.mark.parametrize("media_only", [False, True], ids=["text", "media-only"])
def test_a_lagging_timeline_is_read_again_until_the_post_shows(
    lagging: tuple[Engine_, SinceRecorder], media_only: bool
) -> None:
    engine, recorder = lagging
    account = engine.account()
    attachments = (engine.media(PNG, "image/png"),) if media_only else ()
    words = "" if media_only else "listed 45 s late"
    post = engine.post(account, words, attachments=attachments)
    engine.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    engine.run_until_idle()
    sent_at = _sent_at(engine, post.id)

    for _ in range(8):  # 40 s: looked at again and again, never retried
        _pass(engine, 5)
        assert engine.load(post.id).state is PostState.PUBLISHING
    _pass(engine, 10)  # listed now

    _once_on_x_with_its_id(engine, post.id, account.x_user_id)
    assert engine.emulator.control.counters().get("POST /2/tweets") == 1
    assert len(recorder.since) >= 8
    # Searched from the send, not from the claim.
    assert all(since >= sent_at - timedelta(minutes=2, seconds=1) for since in recorder.since)


def test_a_post_x_stores_after_the_call_timed_out_is_adopted(
    lagging: tuple[Engine_, SinceRecorder],
) -> None:
    engine, _ = lagging
    engine.emulator.control.set_behaviour(timeline_lag_seconds=0)
    account = engine.account()
    image = engine.media(PNG, "image/png")
    post = engine.post(account, "", attachments=(image,))
    # X stores it 3 s after the call, which times out after 0.5 s.
    engine.emulator.control.inject_fault("POST", "/2/tweets", "late_store", delay_seconds=3)
    engine.run_until_idle()
    assert engine.load(post.id).state is PostState.PUBLISHING

    _pass(engine, 5)  # not stored yet: no conclusion
    assert engine.load(post.id).state is PostState.PUBLISHING
    time.sleep(3)
    _pass(engine, 5)

    _once_on_x_with_its_id(engine, post.id, account.x_user_id)


def test_absence_after_the_lag_bound_is_retried(lagging: tuple[Engine_, SinceRecorder]) -> None:
    engine, _ = lagging
    account = engine.account()
    post = engine.post(account, "X stored nothing")
    engine.emulator.control.inject_fault("POST", "/2/tweets", "status", status=503)
    engine.run_until_idle()
    _pass(engine, 30)
    assert engine.load(post.id).state is PostState.PUBLISHING  # within the bound
    engine.clock.advance(LAG)
    engine.reconciler.tick()
    assert engine.load(post.id).state is PostState.SCHEDULED  # proven absent: retried
    _pass(engine, 30)  # the retry, then its post is listed
    _pass(engine, 60)
    _once_on_x_with_its_id(engine, post.id, account.x_user_id)


def test_a_duplicate_refusal_is_searched_from_the_first_attempts_send(engine_: Engine_) -> None:
    # The first send is stored but listed only 100 s later; the reconciler's first look
    # (5 s, past this engine's 5 s lag bound) misses it and the post is retried.
    engine_.emulator.control.set_behaviour(timeline_lag_seconds=100)
    account = engine_.account()
    post = engine_.post(account, "announcing the winners")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    engine_.run_until_idle()
    _pass(engine_, 5)
    assert engine_.load(post.id).state is PostState.SCHEDULED
    # The retry, more than the search margin (2 min) later, is refused as a duplicate.
    _pass(engine_, 200)
    assert engine_.load(post.id).state is PostState.PUBLISHING
    assert engine_.emulator.control.counters().get("POST /2/tweets duplicate") == 1

    _pass(engine_, 5)

    _once_on_x_with_its_id(engine_, post.id, account.x_user_id)
    assert [o for _, o in engine_.attempts(post.id)] == ["retry", "adopted"]


def test_lost_credentials_never_fail_a_post_blind(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "sent, then the account lost its keys")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    engine_.run_until_idle()
    with engine_.engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET credentials_encrypted = NULL WHERE id = :id"),
            {"id": account.id},
        )

    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.reconciler.tick()
    waiting = engine_.load(post.id)
    assert waiting.state is PostState.PUBLISHING  # X cannot be asked: ask later
    assert "no X credentials" in waiting.last_error

    engine_.clock.advance(engine_.settings.timing.give_up)
    engine_.reconciler.tick()
    dead = engine_.load(post.id)
    assert dead.state is PostState.DEAD_LETTERED  # for an operator to check X, not FAILED
    assert "outcome on X unknown" in dead.last_error


# --- never adopt the wrong post --------------------------------------------------------


def _lose_an_unstored_send(engine: Engine_) -> None:
    """The next create-post answers 503 and X stores nothing."""
    engine.emulator.control.inject_fault("POST", "/2/tweets", "status", status=503)


def _retry_until_published(engine: Engine_, post_id: object) -> None:
    for _ in range(6):
        if engine.load(post_id).state is PostState.PUBLISHED:
            return
        _pass(engine, 30)


def test_a_look_alike_post_with_another_domain_is_not_adopted(engine_: Engine_) -> None:
    account = engine_.account()
    first = engine_.post(account, "Deal at shop-a.com today only")
    engine_.run_until_idle()
    second = engine_.post(account, "Deal at shop-b.com today only")
    _lose_an_unstored_send(engine_)
    engine_.run_until_idle()
    _retry_until_published(engine_, second.id)

    stored = {p.text: p.x_post_id for p in (engine_.load(first.id), engine_.load(second.id))}
    on_x = {p["text"]: p["id"] for p in engine_.emulator.control.posts()}
    assert stored == on_x and len(set(on_x.values())) == 2


def test_an_x_id_stored_for_another_post_is_never_adopted(engine_: Engine_) -> None:
    # X refuses identical text only within a window; a later post may repeat it.
    engine_.emulator.control.set_behaviour(duplicate_window_seconds=60)
    account = engine_.account()
    first = engine_.post(account, "weekly reminder")
    engine_.run_until_idle()
    engine_.clock.advance(timedelta(seconds=61))
    second = engine_.post(account, "weekly reminder")
    _lose_an_unstored_send(engine_)
    engine_.run_until_idle()
    _retry_until_published(engine_, second.id)

    ids = {engine_.load(first.id).x_post_id, engine_.load(second.id).x_post_id}
    assert ids == {p["id"] for p in engine_.emulator.control.posts()} and len(ids) == 2


def test_the_store_refuses_one_x_id_for_two_posts(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.post(account, "first")
    first = engine_.queue.claim_due(10, engine_.settings.lease)[0]
    assert engine_.queue.settle(
        first, Settlement(state=PostState.PUBLISHED, outcome="published", x_post_id="777")
    )
    engine_.post(account, "second")
    second = engine_.queue.claim_due(10, engine_.settings.lease)[0]
    with pytest.raises(XPostIdTaken):
        engine_.queue.settle(
            second, Settlement(state=PostState.PUBLISHED, outcome="adopted", x_post_id="777")
        )
    with pytest.raises(XPostIdTaken):
        engine_.queue.record_segment(second, 0, "777", engine_.settings.lease)
    assert engine_.load(second.post_id).state is PostState.PUBLISHING  # nothing applied


def _credentials(engine: Engine_, account: Any) -> XCredentials:
    assert account.credentials is not None
    return XCredentials(account.credentials.access_token, account.credentials.access_token_secret)


def test_a_media_post_matches_by_its_own_media_not_by_count(engine_: Engine_) -> None:
    account = engine_.account()
    creds = _credentials(engine_, account)
    # An image post made elsewhere, media only, like ours.
    other = engine_.publisher._x.upload_media(creds, PNG + b"\x07", "image/png")
    assert isinstance(other, MediaUploaded)
    made_elsewhere = engine_.publisher._x.create_post(creds, NewPost("", (other.media_id,)))
    assert isinstance(made_elsewhere, Published)
    post = engine_.post(account, "", attachments=(engine_.media(PNG, "image/png"),))
    _lose_an_unstored_send(engine_)
    engine_.run_until_idle()
    _retry_until_published(engine_, post.id)

    ours = engine_.load(post.id)
    assert ours.x_post_id != made_elsewhere.x_post_id
    assert len(engine_.emulator.control.posts(author_id=account.x_user_id)) == 2


class FailsOnCall:
    """The real client; the n-th create-post call meets a 503 and X stores nothing."""

    def __init__(self, api: TweepyXApi, emulator: Emulator, n: int) -> None:
        self._api = api
        self._emulator = emulator
        self._n = n
        self.calls = 0

    def create_post(self, creds: XCredentials, post: NewPost) -> Any:
        self.calls += 1
        if self.calls == self._n:
            self._emulator.control.inject_fault("POST", "/2/tweets", "status", status=503)
        return self._api.create_post(creds, post)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


@pytest.fixture
def second_call_fails(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator
) -> Iterator[Engine_]:
    proxy = FailsOnCall(x_api, emulator, 2)
    built = make_engine_(machine_database, proxy, emulator)  # type: ignore[arg-type]
    yield built
    built.dispatcher.close()
    built.engine.dispose()


def test_a_thread_segment_matches_only_a_reply_to_its_parent(
    second_call_fails: Engine_, x_api: TweepyXApi
) -> None:
    engine = second_call_fails
    engine.emulator.control.set_behaviour(duplicate_window_seconds=0)
    account = engine.account()
    creds = _credentials(engine, account)
    # The same words, posted elsewhere: standalone, and as a reply to another post.
    x_api.create_post(creds, NewPost("2/2 more to come"))
    elsewhere = x_api.create_post(creds, NewPost("something else"))
    assert isinstance(elsewhere, Published)
    x_api.create_post(creds, NewPost("2/2 more to come", in_reply_to=elsewhere.x_post_id))
    post = engine.post(account, "1/2 the start", thread=("2/2 more to come",))

    engine.run_until_idle()  # segment 1 goes out; segment 2 meets the 503
    _retry_until_published(engine, post.id)

    first, second = engine.load(post.id).segment_x_post_ids
    ours = [p for p in engine.emulator.control.posts(text="2/2 more to come") if p["id"] == second]
    assert len(ours) == 1 and ours[0]["in_reply_to_tweet_id"] == first
    assert len(engine.emulator.control.posts(text="2/2 more to come")) == 3
