"""The reconciler against real PostgreSQL and the X emulator: it finds posts whose
text X rewrote, reads the timeline behind the credentials, gives up in bounded time,
and does not conclude absence before a lost publisher's post could be listed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from post_management.adapters.x.client import TweepyXApi
from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing import Timing
from post_management.domain.retry import RetryPolicy
from post_management.ports.x_api import MediaOutcome, NewPost, XCredentials
from tests.fixtures.emulator import Emulator
from tests.integration.publishing_fixtures import Engine_, make_engine_

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048


def _lose_the_answer_then_reconcile(engine: Engine_) -> None:
    """X stores the post and the answer is lost; the reconciler looks after the
    settle delay; a wrong "not on X" would have its retry come due at the end."""
    engine.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    engine.run_until_idle()
    engine.clock.advance(engine.settings.timing.settle_delay)
    engine.run_until_idle()
    engine.clock.advance(engine.settings.timing.policy.cap)
    engine.run_until_idle()


def _assert_adopted_once(engine: Engine_, post_id: Any, account_x_id: str) -> None:
    adopted = engine.load(post_id)
    assert adopted.state is PostState.PUBLISHED, adopted.last_error
    on_x = engine.emulator.control.posts(author_id=account_x_id)
    assert [p["id"] for p in on_x] == [adopted.x_post_id]
    assert engine.attempts(post_id) == [(1, "adopted")]


# --- X's rewritten text ------------------------------------------------------


@pytest.mark.parametrize(
    "words",
    ["read https://example.com/launch?utm=1 today", "Q&A <live> tonight"],
    ids=["url", "html-escaped"],
)
def test_a_post_whose_text_x_rewrote_is_adopted(engine_: Engine_, words: str) -> None:
    account = engine_.account()
    post = engine_.post(account, words)
    _lose_the_answer_then_reconcile(engine_)
    _assert_adopted_once(engine_, post.id, account.x_user_id)


@pytest.mark.parametrize("words", ["holiday pictures", ""], ids=["text", "media-only"])
def test_a_post_with_media_is_adopted(engine_: Engine_, words: str) -> None:
    account = engine_.account()
    image = engine_.media(PNG, "image/png")
    post = engine_.post(account, words, attachments=(image,))
    _lose_the_answer_then_reconcile(engine_)
    _assert_adopted_once(engine_, post.id, account.x_user_id)


def test_an_earlier_post_differing_only_in_its_link_is_not_adopted(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.seed_post(account.x_user_id, "New: https://example.com/1", 30)
    post = engine_.post(account, "New: https://example.com/2")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "status", status=503)
    engine_.run_until_idle()
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.reconciler.tick()
    assert engine_.load(post.id).state is PostState.SCHEDULED  # not on X: retried
    engine_.clock.advance(engine_.settings.timing.policy.cap)
    engine_.run_until_idle()
    assert len(engine_.emulator.control.posts(text="New: https://example.com/2")) == 1


# --- the timeline behind the credentials -------------------------------------


def test_a_wrong_stored_x_user_id_does_not_hide_the_lost_post(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.register_user("someone-else", user_id="4242424242")
    with engine_.engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET x_user_id = '4242424242' WHERE id = :id"),
            {"id": account.id},
        )
    post = engine_.post(account, "typed the wrong user id")
    _lose_the_answer_then_reconcile(engine_)
    _assert_adopted_once(engine_, post.id, account.x_user_id)


# --- giving up ---------------------------------------------------------------


def _stuck_publishing(engine: Engine_, words: str) -> Any:
    account = engine.account()
    post = engine.post(account, words)
    engine.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    engine.run_until_idle()
    assert engine.load(post.id).state is PostState.PUBLISHING
    return account, post


def _account_state(engine: Engine_, account_id: Any) -> AccountState:
    with engine.uow() as uow:
        stored = uow.accounts.get(account_id)
    assert stored is not None
    return stored.state


def test_a_timeline_that_never_answers_dead_letters_the_post_in_time(engine_: Engine_) -> None:
    account, post = _stuck_publishing(engine_, "X keeps failing to list")
    engine_.emulator.control.inject_fault(
        "GET", "/2/users/*/tweets", "status", status=503, count=1000
    )
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.reconciler.tick()
    assert engine_.load(post.id).state is PostState.PUBLISHING  # look again later

    engine_.clock.advance(engine_.settings.timing.give_up)
    engine_.reconciler.tick()

    dead = engine_.load(post.id)
    assert dead.state is PostState.DEAD_LETTERED
    assert "outcome on X unknown" in dead.last_error and "check X" in dead.last_error
    assert "post.failed" in engine_.events(post.id)
    assert _account_state(engine_, account.id) is AccountState.ACTIVE
    # The account's queue moves again.
    follower = engine_.post(account, "next in line")
    engine_.emulator.control.clear_faults()
    engine_.run_until_idle()
    assert engine_.load(follower.id).state is PostState.PUBLISHED


def test_revoked_tokens_dead_letter_the_post_and_suspend_the_account(engine_: Engine_) -> None:
    account, post = _stuck_publishing(engine_, "tokens revoked meanwhile")
    assert account.credentials is not None
    engine_.emulator.control.revoke(account.credentials.access_token)
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.reconciler.tick()
    assert engine_.load(post.id).state is PostState.PUBLISHING

    engine_.clock.advance(engine_.settings.timing.give_up)
    engine_.reconciler.tick()

    dead = engine_.load(post.id)
    assert dead.state is PostState.DEAD_LETTERED
    assert "outcome on X unknown" in dead.last_error
    assert _account_state(engine_, account.id) is AccountState.SUSPENDED
    assert "account.suspended" in engine_.events()


# --- lease expiry ------------------------------------------------------------


@pytest.fixture
def slow_listing(machine_database: str, x_api: TweepyXApi, emulator: Emulator) -> Iterator[Engine_]:
    """An engine whose lag bound (90 s) outlasts its lease (60 s)."""
    timing = Timing(
        RetryPolicy(base=timedelta(seconds=10), factor=2, max_attempts=3),
        settle_delay=timedelta(seconds=5),
        lag_bound=timedelta(seconds=90),
    )
    built = make_engine_(machine_database, x_api, emulator, timing=timing)
    yield built
    built.dispatcher.close()
    built.engine.dispose()


def test_an_expired_lease_waits_the_lag_bound_before_concluding_absence(
    slow_listing: Engine_,
) -> None:
    engine = slow_listing
    account = engine.account()
    post = engine.post(account, "sent just before the publisher died")
    (claim,) = engine.queue.claim_due(10, engine.settings.lease)
    assert claim.credentials is not None
    creds = XCredentials(claim.credentials.access_token, claim.credentials.access_token_secret)
    assert engine.queue.sending(claim, engine.settings.lease)  # as the publisher does

    engine.clock.advance(engine.settings.lease + timedelta(seconds=1))
    engine.reconciler.tick()
    # Not listed yet, but X may still list it: no conclusion.
    assert engine.load(post.id).state is PostState.PUBLISHING

    engine.publisher._x.create_post(creds, NewPost(claim.text))
    engine.clock.advance(engine.settings.timing.settle_delay)
    engine.reconciler.tick()
    _assert_adopted_once(engine, post.id, account.x_user_id)


def test_after_lease_and_settle_an_absent_post_is_retried(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "the publisher died before sending")
    engine_.queue.claim_due(10, engine_.settings.lease)
    engine_.clock.advance(engine_.settings.lease + timedelta(seconds=1))
    engine_.reconciler.tick()
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.reconciler.tick()
    assert engine_.load(post.id).state is PostState.SCHEDULED
    engine_.clock.advance(engine_.settings.timing.policy.cap)
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHED
    assert len(engine_.emulator.control.posts(author_id=account.x_user_id)) == 1


class SlowUploads:
    """The real client whose uploads each take most of a lease on the engine's clock;
    after the second one another process's reconciler looks at the queue."""

    def __init__(self, api: TweepyXApi) -> None:
        self._api = api
        self.engine: Engine_ | None = None
        self.uploads = 0

    def upload_media(
        self, creds: XCredentials, data: bytes, mime_type: str, **options: Any
    ) -> MediaOutcome:
        assert self.engine is not None
        self.uploads += 1
        outcome = self._api.upload_media(creds, data, mime_type, **options)
        self.engine.clock.advance(self.engine.settings.lease * 0.7)
        if self.uploads == 2:
            self.engine.reconciler.tick()
        return outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


@pytest.fixture
def slow_uploads(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator
) -> Iterator[tuple[Engine_, SlowUploads]]:
    proxy = SlowUploads(x_api)
    built = make_engine_(machine_database, proxy, emulator)  # type: ignore[arg-type]
    proxy.engine = built
    yield built, proxy
    built.dispatcher.close()
    built.engine.dispose()


def test_each_media_upload_renews_the_lease(slow_uploads: tuple[Engine_, SlowUploads]) -> None:
    engine, proxy = slow_uploads
    account = engine.account()
    images = (engine.media(PNG, "image/png"), engine.media(PNG + b"\x01", "image/png"))
    post = engine.post(account, "two slow pictures", attachments=images)
    (claim,) = engine.queue.claim_due(10, engine.settings.lease)

    assert engine.publisher.publish(claim) is PostState.PUBLISHED

    assert proxy.uploads == 2
    assert engine.load(post.id).attempt_count == 1
    assert len(engine.emulator.control.posts(text="two slow pictures")) == 1
