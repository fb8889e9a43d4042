"""A publisher that lost its claim never calls X again, an upload longer than the
lease keeps its claim, and an answer X gave after the claim was lost is adopted,
not sent again. Real PostgreSQL and the X emulator."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from post_management.adapters.rate_limit import InProcessRateLimiter
from post_management.adapters.x.client import TweepyXApi
from post_management.domain.post import PostState
from post_management.domain.publishing import Claim
from post_management.ports.x_api import MediaOutcome, NewPost, PublishOutcome, XCredentials
from tests.fixtures.emulator import Emulator
from tests.integration.publishing_fixtures import Engine_, make_engine_

# Over two 1 MiB chunks: INIT, three APPENDs, FINALIZE, STATUS.
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x02" * (2 * 1024 * 1024 + 512)
UPLOAD = "POST /1.1/media/upload.json"
CREATE = "POST /2/tweets"


def _take_over(engine: Engine_, post_id: uuid.UUID) -> None:
    """This process stalls past its lease and a reconciler elsewhere takes the post
    (and is slow in turn: it holds it for a lease)."""
    engine.clock.advance(engine.settings.lease + timedelta(seconds=1))
    taken = engine.queue.claim_for_reconcile(10, engine.settings.lease)
    assert [c.post_id for c in taken] == [post_id]


class Interceptor:
    """The real client; `after_create` / `before_media_call` run test code at the
    moment the publisher calls X."""

    def __init__(self, api: TweepyXApi) -> None:
        self._api = api
        self.after_create: Callable[[int], None] = lambda n: None
        self.before_media_call: Callable[[int], None] = lambda n: None
        self.creates = 0
        self.media_calls = 0

    def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        outcome = self._api.create_post(creds, post)
        self.creates += 1
        self.after_create(self.creates)
        return outcome

    def upload_media(
        self, creds: XCredentials, data: bytes, mime_type: str, **options: Any
    ) -> MediaOutcome:
        check = options.pop("before_call", None) or (lambda: True)

        def before_call() -> bool:
            self.media_calls += 1
            self.before_media_call(self.media_calls)
            return bool(check())

        return self._api.upload_media(creds, data, mime_type, before_call=before_call, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


@pytest.fixture
def intercepted(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator
) -> Iterator[tuple[Engine_, Interceptor]]:
    proxy = Interceptor(x_api)
    built = make_engine_(machine_database, proxy, emulator)  # type: ignore[arg-type]
    yield built, proxy
    built.dispatcher.close()
    built.engine.dispose()


def _claim(engine: Engine_) -> Claim:
    (claim,) = engine.queue.claim_due(10, engine.settings.lease)
    return claim


def _counters(engine: Engine_, prefix: str) -> int:
    return sum(n for key, n in engine.emulator.control.counters().items() if key.startswith(prefix))


# --- a lost claim never calls X ---------------------------------------------------


def test_a_lost_claim_sends_nothing(intercepted: tuple[Engine_, Interceptor]) -> None:
    engine, _ = intercepted
    post = engine.post(engine.account(), "taken over before the call")
    claim = _claim(engine)
    _take_over(engine, post.id)

    assert engine.publisher.publish(claim) is PostState.PUBLISHING

    assert _counters(engine, CREATE) == 0


class StallingLimiter:
    """The in-process limiter; the n-th take stalls this process past its lease, and a
    reconciler elsewhere takes the post meanwhile."""

    def __init__(self, n: int) -> None:
        self._inner = InProcessRateLimiter()
        self._n = n
        self.takes = 0
        self.engine: Engine_ | None = None

    def take(self, budgets: Any, now: Any) -> Any:
        self.takes += 1
        if self.takes == self._n and self.engine is not None:
            self.engine.clock.advance(self.engine.settings.lease + timedelta(seconds=1))
            assert self.engine.queue.claim_for_reconcile(10, self.engine.settings.lease)
        return self._inner.take(budgets, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_thread_stops_at_the_segment_after_the_claim_was_lost(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator
) -> None:
    # The publisher stalls between segments 1 and 2 (its budget for segment 2).
    limiter = StallingLimiter(2)
    engine = make_engine_(machine_database, x_api, emulator, limiter)  # type: ignore[arg-type]
    limiter.engine = engine
    try:
        engine.post(engine.account(), "1/3 intro", thread=("2/3 middle", "3/3 end"))
        claim = _claim(engine)

        assert engine.publisher.publish(claim) is PostState.PUBLISHING

        assert limiter.takes == 2
        assert [p["text"] for p in emulator.control.posts()] == ["1/3 intro"]
    finally:
        engine.engine.dispose()


def test_a_media_upload_stops_at_the_command_after_the_claim_was_lost(
    intercepted: tuple[Engine_, Interceptor],
) -> None:
    engine, proxy = intercepted
    video = engine.media(MP4, "video/mp4")
    post = engine.post(engine.account(), "a clip", attachments=(video,))
    claim = _claim(engine)
    # Lost after INIT and the first APPEND went out.
    proxy.before_media_call = lambda n: _take_over(engine, post.id) if n == 3 else None

    assert engine.publisher.publish(claim) is PostState.PUBLISHING

    counters = engine.emulator.control.counters()
    assert counters.get(f"{UPLOAD} command=INIT") == 1
    assert counters.get(f"{UPLOAD} command=APPEND") == 1
    assert f"{UPLOAD} command=FINALIZE" not in counters
    assert _counters(engine, CREATE) == 0


def test_a_media_upload_longer_than_the_lease_keeps_its_claim(
    machine_database: str, patient_x_api: TweepyXApi, emulator: Emulator
) -> None:
    lease = timedelta(seconds=2)
    # Shorter than the upload on purpose; the create-post call after it is quick.
    engine = make_engine_(
        machine_database, patient_x_api, emulator, lease=lease, x_call=timedelta(seconds=1)
    )
    try:
        video = engine.media(MP4, "video/mp4")
        post = engine.post(engine.account(), "a slow clip", attachments=(video,))
        # Five media commands of 0.8 s each: twice the lease.
        emulator.control.inject_fault(
            "POST", "/1.1/media/upload.json", "delay", delay_seconds=0.8, count=5
        )
        claim = _claim(engine)
        stop = threading.Event()
        taken: list[int] = []

        def reconcile() -> None:
            while not stop.wait(0.2):
                taken.append(engine.reconciler.tick())

        watcher = threading.Thread(target=reconcile)
        watcher.start()
        try:
            state = engine.publisher.publish(claim)
        finally:
            stop.set()
            watcher.join()

        assert state is PostState.PUBLISHED
        assert sum(taken) == 0 and len(taken) >= 10  # looked all along, never took it
        assert engine.attempts(post.id) == [(1, "published")]
        assert len(emulator.control.posts(text="a slow clip")) == 1
    finally:
        engine.engine.dispose()


# --- a known answer is never thrown away ---------------------------------------------


def test_an_answer_after_the_claim_was_lost_is_adopted_without_sending_again(
    intercepted: tuple[Engine_, Interceptor],
) -> None:
    engine, proxy = intercepted
    # X lists posts late: the timeline cannot show this one for an hour.
    engine.emulator.control.set_behaviour(timeline_lag_seconds=3600)
    account = engine.account()
    post = engine.post(account, "answered after the claim was lost")
    claim = _claim(engine)
    # X stores the post and answers; meanwhile this process stalled past its lease
    # and a reconciler elsewhere took the post (then died in turn).
    proxy.after_create = lambda n: _take_over(engine, post.id)

    assert engine.publisher.publish(claim) is PostState.PUBLISHING

    engine.clock.advance(engine.settings.lease + timedelta(seconds=1))
    engine.run_until_idle()
    published = engine.load(post.id)
    (on_x,) = engine.emulator.control.posts(author_id=account.x_user_id)
    assert published.state is PostState.PUBLISHED
    assert published.x_post_id == on_x["id"]
    assert proxy.creates == 1
    # Adopted from the kept answer: the lagging timeline was not even read.
    assert not [k for k in engine.emulator.control.counters() if k.startswith("GET /2/users")]
