"""The dispatcher's asynchronous create-post client against the emulator, over one
shared session: what only it does. The outcomes it gives like the synchronous client
are checked through both in tests/integration/test_x_create_post.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from post_management.adapters.x import TweepyXApi, TweepyXPoster
from post_management.observability import tracing
from post_management.ports.x_api import (
    NewPost,
    Published,
    PublishOutcome,
    UnknownOutcome,
    XCredentials,
    XPoster,
)
from tests.fixtures.emulator import Emulator
from tests.integration.x_clients import post, run


@pytest.fixture
def poster(x_api: TweepyXApi) -> TweepyXPoster:
    return TweepyXPoster(x_api.settings)


def test_the_poster_satisfies_the_port(poster: TweepyXPoster) -> None:
    port: XPoster = poster
    assert port is poster


def test_many_accounts_share_one_session_and_a_few_connections(
    x_api: TweepyXApi, emulator: Emulator
) -> None:
    # X_TIMEOUT_SECONDS bounds a whole call (poster.py), and the 40 calls, the
    # emulator's thread and this loop share one process: on a loaded machine the 40
    # took 1.4 s together and every one ran out the fixtures' 0.5 s, made short for
    # the timeout tests. What is checked here is sharing, not speed.
    poster = TweepyXPoster(replace(x_api.settings, read_timeout=30.0))
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


def test_accepted_then_dropped_is_unknown_and_never_resent(
    poster: TweepyXPoster, emulator: Emulator
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    outcome = post(poster, "answer lost")
    assert isinstance(outcome, UnknownOutcome)
    assert outcome.request_sent
    assert len(emulator.control.posts(text="answer lost")) == 1
    assert emulator.control.counters()["POST /2/tweets"] == 1  # no retry of the POST


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
