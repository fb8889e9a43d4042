"""The dispatcher's asynchronous create-post client against the emulator: every
outcome the synchronous client gives (tests/integration/test_x_client.py), over one
shared session."""

# The imported fixtures are parameters of the tests by design.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from post_management.adapters.x import TweepyXApi, TweepyXPoster, XClientSettings
from post_management.observability import tracing
from post_management.ports.x_api import (
    AccountSuspended,
    Duplicate,
    NewPost,
    PermanentFailure,
    Published,
    PublishOutcome,
    RateLimited,
    Unauthorized,
    UnknownOutcome,
    XCredentials,
    XPoster,
    XUser,
)
from tests.fixtures.emulator import (  # noqa: F401
    TEST_READ_TIMEOUT,
    Emulator,
    emulator,
    emulator_server,
    x_api,
)

ALICE = XCredentials("alice-access-token", "alice-access-secret")
BOB = XCredentials("bob-access-token", "bob-access-secret")
T = TypeVar("T")


def run(poster: TweepyXPoster, call: Callable[[TweepyXPoster], Awaitable[T]]) -> T:
    """One call on a loop of its own, then the session closed on that loop."""

    async def once() -> T:
        try:
            return await call(poster)
        finally:
            await poster.aclose()

    return asyncio.run(once())


def post(
    poster: TweepyXPoster, text: str, creds: XCredentials = ALICE, **fields: object
) -> PublishOutcome:
    return run(poster, lambda p: p.create_post(creds, NewPost(text, **fields)))  # type: ignore[arg-type]


@pytest.fixture
def poster(x_api: TweepyXApi) -> TweepyXPoster:
    return TweepyXPoster(x_api.settings)


def test_the_poster_satisfies_the_port(poster: TweepyXPoster) -> None:
    port: XPoster = poster
    assert port is poster


def test_published_with_id_and_rate_limit_state(poster: TweepyXPoster, emulator: Emulator) -> None:
    outcome = post(poster, "first post")
    assert isinstance(outcome, Published)
    assert [p["id"] for p in emulator.control.posts(text="first post")] == [outcome.x_post_id]
    assert outcome.rate_limit is not None and outcome.rate_limit.window is not None
    assert (outcome.rate_limit.window.limit, outcome.rate_limit.window.remaining) == (100, 99)
    assert outcome.rate_limit.blocked_until() is None


def test_many_accounts_share_one_session_and_a_few_connections(
    poster: TweepyXPoster, emulator: Emulator
) -> None:
    accounts = [XCredentials(f"token-{i}", f"secret-{i}") for i in range(40)]

    async def all_of_them(p: TweepyXPoster) -> list[PublishOutcome]:
        return list(
            await asyncio.gather(
                *(p.create_post(c, NewPost(f"post {i}")) for i, c in enumerate(accounts))
            )
        )

    outcomes = run(poster, all_of_them)
    assert all(isinstance(o, Published) for o in outcomes)
    authors = {p["author_id"] for p in emulator.control.posts()}
    assert len(authors) == len(accounts)  # each signed with its own token


def test_a_reply_carries_its_parent_and_media(poster: TweepyXPoster, emulator: Emulator) -> None:
    parent = post(poster, "thread start")
    assert isinstance(parent, Published)
    reply = post(poster, "thread reply", in_reply_to=parent.x_post_id)
    assert isinstance(reply, Published)
    stored = emulator.control.posts(text="thread reply")
    assert stored[0]["in_reply_to_tweet_id"] == parent.x_post_id


def test_duplicate_content(poster: TweepyXPoster) -> None:
    assert isinstance(post(poster, "say it once"), Published)
    outcome = post(poster, "say it once")
    assert isinstance(outcome, Duplicate)
    assert outcome.rate_limit is not None
    assert isinstance(post(poster, "say it once", BOB), Published)


def test_suspended_revoked_and_invalid(
    poster: TweepyXPoster, x_api: TweepyXApi, emulator: Emulator
) -> None:
    me = x_api.me(ALICE)
    assert isinstance(me, XUser)
    emulator.control.suspend(me.id)
    assert isinstance(post(poster, "from a suspended account"), AccountSuspended)
    emulator.control.revoke(BOB.access_token)
    assert isinstance(post(poster, "revoked", BOB), Unauthorized)
    invalid = post(poster, "x" * 300, XCredentials("carol", "secret"))
    assert isinstance(invalid, PermanentFailure)
    assert invalid.status == 400 and "280" in invalid.reason
    assert emulator.control.posts() == []


def test_server_error_is_an_unknown_outcome(poster: TweepyXPoster, emulator: Emulator) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=503)
    outcome = post(poster, "during an outage")
    assert isinstance(outcome, UnknownOutcome)
    assert "503" in outcome.reason and outcome.request_sent
    assert emulator.control.posts() == []


def test_timeout_is_an_unknown_outcome_within_the_configured_time(
    poster: TweepyXPoster, emulator: Emulator
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "timeout", accept=True)
    started = time.monotonic()
    outcome = post(poster, "slow X")
    elapsed = time.monotonic() - started
    assert isinstance(outcome, UnknownOutcome)
    assert outcome.request_sent
    assert "timeout" in outcome.reason
    assert TEST_READ_TIMEOUT <= elapsed < TEST_READ_TIMEOUT + 1.5
    assert len(emulator.control.posts(text="slow X")) == 1  # X acted; the answer was lost


def test_accepted_then_dropped_is_unknown_and_never_resent(
    poster: TweepyXPoster, emulator: Emulator
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    outcome = post(poster, "answer lost")
    assert isinstance(outcome, UnknownOutcome)
    assert outcome.request_sent
    assert len(emulator.control.posts(text="answer lost")) == 1
    assert emulator.control.counters()["POST /2/tweets"] == 1  # no retry of the POST


def test_unreachable_x_is_unknown_and_known_not_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        poster = TweepyXPoster(
            XClientSettings("ck", "cs", base_url=f"http://127.0.0.1:{port}", connect_timeout=1)
        )
        outcome = post(poster, "nobody home")
    assert isinstance(outcome, UnknownOutcome)
    assert not outcome.request_sent


def test_rate_limited_with_reset_from_the_headers(
    poster: TweepyXPoster, emulator: Emulator
) -> None:
    emulator.control.set_limits(user_posts_per_window=1)
    first = post(poster, "one")
    outcome = post(poster, "two")
    assert isinstance(outcome, RateLimited)
    assert (outcome.limit, outcome.remaining) == (1, 0)
    assert isinstance(first, Published) and first.rate_limit and first.rate_limit.window
    assert outcome.reset_at == first.rate_limit.window.reset_at
    assert timedelta(minutes=14) < outcome.reset_at - datetime.now(UTC) <= timedelta(seconds=901)


def test_each_request_is_a_client_span_whose_context_x_receives(
    poster: TweepyXPoster, emulator: Emulator
) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure().add_span_processor(SimpleSpanProcessor(exporter))
    outcome = post(poster, "traced")
    assert isinstance(outcome, Published)
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "X POST /2/tweets"]
    assert span.context is not None and span.attributes is not None
    assert span.attributes["http.response.status_code"] == 201
    sent = [r for r in emulator.control.requests() if r["path"] == "/2/tweets"]
    assert sent[-1]["traceparent"].startswith(
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-"
    )


def test_no_secret_is_logged(
    poster: TweepyXPoster, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=500)
    with caplog.at_level(logging.DEBUG):
        post(poster, "logged")
        post(poster, "logged")
    assert caplog.records  # the unknown outcome is logged ...
    for secret in (ALICE.access_token, ALICE.access_token_secret, "test-consumer-secret"):
        assert secret not in caplog.text  # ... but no credential is
