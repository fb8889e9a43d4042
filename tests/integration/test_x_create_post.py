"""Create-post outcomes against the emulator that the synchronous X client and the
dispatcher's asynchronous poster give alike: each test runs once through each."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest

from post_management.adapters.x import TweepyXApi, XClientSettings
from post_management.ports.x_api import (
    AccountSuspended,
    Duplicate,
    PermanentFailure,
    Published,
    RateLimited,
    Unauthorized,
    UnknownOutcome,
    XUser,
)
from tests.fixtures.emulator import TEST_READ_TIMEOUT, Emulator
from tests.integration.x_clients import (
    ALICE,
    BOB,
    CreatePost,
    through_api,
    through_poster,
)

Through = Callable[[XClientSettings], AbstractContextManager[CreatePost]]


@pytest.fixture(params=[through_api, through_poster], ids=["TweepyXApi", "TweepyXPoster"])
def through(request: pytest.FixtureRequest) -> Through:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def create_post(through: Through, x_api: TweepyXApi) -> Iterator[CreatePost]:
    with through(x_api.settings) as create:
        yield create


def test_published_with_id_and_rate_limit_state(
    create_post: CreatePost, emulator: Emulator
) -> None:
    outcome = create_post("first post")
    assert isinstance(outcome, Published)
    assert [p["id"] for p in emulator.control.posts(text="first post")] == [outcome.x_post_id]
    assert outcome.rate_limit is not None
    assert outcome.rate_limit.window is not None
    assert (outcome.rate_limit.window.limit, outcome.rate_limit.window.remaining) == (100, 99)
    assert outcome.rate_limit.app_day is not None
    assert outcome.rate_limit.app_day.remaining == 9999
    assert outcome.rate_limit.blocked_until() is None


def test_duplicate_content(create_post: CreatePost) -> None:
    assert isinstance(create_post("say it once"), Published)
    outcome = create_post("say it once")
    assert isinstance(outcome, Duplicate)
    assert outcome.rate_limit is not None
    assert isinstance(create_post("say it once", BOB), Published)


def test_suspended_account(create_post: CreatePost, x_api: TweepyXApi, emulator: Emulator) -> None:
    me = x_api.me(ALICE)
    assert isinstance(me, XUser)
    emulator.control.suspend(me.id)
    outcome = create_post("from a suspended account")
    assert isinstance(outcome, AccountSuspended)
    assert "suspended" in outcome.reason
    assert emulator.control.posts() == []


def test_revoked_tokens_are_unauthorized(create_post: CreatePost, emulator: Emulator) -> None:
    emulator.control.revoke(ALICE.access_token)
    assert isinstance(create_post("x"), Unauthorized)
    assert isinstance(create_post("x", BOB), Published)


def test_invalid_post_is_a_permanent_failure(create_post: CreatePost, emulator: Emulator) -> None:
    outcome = create_post("x" * 300)
    assert isinstance(outcome, PermanentFailure)
    assert outcome.status == 400
    assert "280" in outcome.reason
    assert emulator.control.posts() == []


def test_server_error_is_an_unknown_outcome(create_post: CreatePost, emulator: Emulator) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=503)
    outcome = create_post("during an outage")
    assert isinstance(outcome, UnknownOutcome)
    assert "503" in outcome.reason and outcome.request_sent
    assert emulator.control.posts() == []


def test_timeout_is_an_unknown_outcome_within_the_configured_time(
    create_post: CreatePost, emulator: Emulator
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "timeout", accept=True)
    started = time.monotonic()
    outcome = create_post("slow X")
    elapsed = time.monotonic() - started
    assert isinstance(outcome, UnknownOutcome)
    assert outcome.request_sent
    assert "timeout" in outcome.reason
    assert TEST_READ_TIMEOUT <= elapsed < TEST_READ_TIMEOUT + 1.5
    assert len(emulator.control.posts(text="slow X")) == 1  # X acted; the answer was lost


def test_unreachable_x_is_unknown_and_known_not_sent(through: Through) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        settings = XClientSettings(
            "ck", "cs", base_url=f"http://127.0.0.1:{port}", connect_timeout=1
        )
        with through(settings) as create_post:
            outcome = create_post("nobody home")
    assert isinstance(outcome, UnknownOutcome)
    assert not outcome.request_sent


def test_rate_limited_with_reset_from_the_headers(
    create_post: CreatePost, emulator: Emulator
) -> None:
    emulator.control.set_limits(user_posts_per_window=2)
    first = create_post("one")
    assert isinstance(create_post("two"), Published)
    outcome = create_post("three")
    assert isinstance(outcome, RateLimited)
    assert (outcome.limit, outcome.remaining) == (2, 0)
    assert isinstance(first, Published) and first.rate_limit and first.rate_limit.window
    assert outcome.reset_at == first.rate_limit.window.reset_at
    assert timedelta(minutes=14) < outcome.reset_at - datetime.now(UTC) <= timedelta(seconds=901)
    assert [p["text"] for p in emulator.control.posts()] == ["one", "two"]


def test_no_secret_is_logged(
    create_post: CreatePost, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=500)
    with caplog.at_level(logging.DEBUG):
        create_post("logged")
        create_post("logged")
    assert caplog.records  # the unknown outcome is logged ...
    credentials = (ALICE.access_token, ALICE.access_token_secret)
    for secret in (*credentials, "test-consumer-secret", "test-bearer-token"):
        assert secret not in caplog.text  # ... but no credential is
    assert "alice" not in repr(ALICE)
