"""Our own count of X's posting budgets (services/publishing/budget.py), with either
limiter: in process, and in the machine's Redis as replicas share it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
from sqlalchemy import text

from post_management.adapters.rate_limit import InProcessRateLimiter, RedisRateLimiter
from post_management.adapters.x import TweepyXApi, XClientSettings
from post_management.domain.post import PostState, Priority
from post_management.ports.publishing import RateLimiter
from post_management.services.publishing.engine import Publisher
from tests.fixtures.emulator import Emulator
from tests.integration.publishing_fixtures import Engine_, make_engine_
from tests.support.ports import free_port

APP_WINDOW = timedelta(seconds=60)


@pytest.fixture(params=["in_process", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "in_process":
        yield InProcessRateLimiter()
        return
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    prefix = f"test:{uuid.uuid4().hex}:"
    shared = RedisRateLimiter(client, prefix=prefix)
    yield shared
    assert not shared.degraded  # the budgets were counted in Redis, not in the fallback
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@contextmanager
def _engine(
    machine_database: str,
    x_api: TweepyXApi,
    emulator: Emulator,
    limiter: RateLimiter,
    **settings: object,
) -> Iterator[Engine_]:
    built = make_engine_(machine_database, x_api, emulator, limiter, **settings)
    try:
        yield built
    finally:
        built.dispatcher.close()
        built.engine.dispose()


def _publish_now(engine: Engine_, publisher: Publisher, post_id: uuid.UUID) -> PostState:
    claim = engine.queue.claim_post(post_id, engine.settings.lease)
    assert claim is not None
    return publisher.publish(claim)


def _waits(engine: Engine_) -> list[object]:
    with engine.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT rate_limited_until FROM accounts WHERE rate_limited_until IS NOT NULL")
        ).all()
    return [row[0] for row in rows]


def test_a_user_unit_taken_for_a_post_the_app_refuses_is_given_back(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator, limiter: RateLimiter
) -> None:
    with _engine(machine_database, x_api, emulator, limiter, user_limit=2, app_limit=1) as engine:
        account = engine.account()
        first = engine.post(account, "first of two")
        engine.run_until_idle()
        assert engine.load(first.id).state is PostState.PUBLISHED

        second = engine.post(account, "second of two")
        assert _publish_now(engine, engine.publisher, second.id) is PostState.SCHEDULED
        assert engine.load(second.id).attempt_count == 0

        # A publisher on the same limiter whose app budget has room: only the
        # account's own budget decides now, and it still has its second unit.
        roomy = Publisher(
            engine.queue,
            x_api,
            limiter,
            engine.clock,
            replace(engine.settings, app_limit=10),
        )
        assert _publish_now(engine, roomy, second.id) is PostState.PUBLISHED
        assert engine.events().count("rate_limit.reached") == 0
        assert emulator.control.counters().get("POST /2/tweets") == 2


def test_posts_that_never_reach_x_spend_no_budget(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator, limiter: RateLimiter
) -> None:
    with _engine(machine_database, x_api, emulator, limiter, app_limit=1) as engine:
        # X cannot be reached at all: the connection is refused.
        unreachable_x = TweepyXApi(
            XClientSettings(
                consumer_key="k",
                consumer_secret="s",
                bearer_token="b",
                base_url=f"http://127.0.0.1:{free_port()}",
                connect_timeout=1.0,
                read_timeout=1.0,
            )
        )
        cut_off = Publisher(engine.queue, unreachable_x, limiter, engine.clock, engine.settings)
        refused = engine.post(engine.account(), "never leaves")
        assert _publish_now(engine, cut_off, refused.id) is PostState.SCHEDULED
        assert engine.attempts(refused.id)[-1][1] == "retry"

        # No credentials: failed before anything is sent.
        bare = engine.post(engine.account(credentials=False), "no keys")
        engine.run_until_idle()
        assert engine.load(bare.id).state is PostState.FAILED

        # The one unit of the app's budget is still there for a post that reaches X.
        healthy = engine.account()
        sent = engine.post(healthy, "reaches X")
        assert _publish_now(engine, engine.publisher, sent.id) is PostState.PUBLISHED
        # And it is spent now: the budget still counts.
        later = engine.post(healthy, "one too many")
        assert _publish_now(engine, engine.publisher, later.id) is PostState.SCHEDULED
        assert emulator.control.counters().get("POST /2/tweets") == 1


def test_a_spent_app_budget_marks_no_account_and_writes_no_events(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator, limiter: RateLimiter
) -> None:
    with _engine(machine_database, x_api, emulator, limiter, app_limit=1) as engine:
        first = engine.post(engine.account(), "spends the app budget")
        engine.run_until_idle()
        assert engine.load(first.id).state is PostState.PUBLISHED

        posts = [engine.post(engine.account(), f"waits {i}") for i in range(5)]
        for _ in range(3):
            engine.run_until_idle()
        assert [engine.load(p.id).state for p in posts] == [PostState.SCHEDULED] * 5
        assert all(engine.load(p.id).attempt_count == 0 for p in posts)
        # Nothing was claimed for nothing, no account waits, no event per account.
        assert all(engine.attempts(p.id) == [] for p in posts)
        assert _waits(engine) == []
        assert engine.events().count("rate_limit.reached") == 0
        assert emulator.control.counters().get("POST /2/tweets") == 1


def test_when_the_app_window_passes_waiting_posts_leave_in_priority_order(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator, limiter: RateLimiter
) -> None:
    settings = {"user_limit": 2, "app_limit": 2, "app_window": APP_WINDOW}
    with _engine(machine_database, x_api, emulator, limiter, **settings) as engine:
        # Two busy accounts spend the app's budget, one unit of their own each.
        busy = [engine.account(), engine.account()]
        for account in busy:
            engine.post(account, f"earlier from {account.handle}")
        engine.run_until_idle()
        assert emulator.control.counters().get("POST /2/tweets") == 2

        low_first = engine.post(engine.account(), "low, due first", priority=Priority.LOW)
        engine.clock.advance(timedelta(seconds=1))
        low_second = engine.post(engine.account(), "low, due second", priority=Priority.LOW)
        normal = engine.post(engine.account(), "normal")
        high = [engine.post(a, f"high from {a.handle}", priority=Priority.HIGH) for a in busy]
        engine.clock.advance(timedelta(seconds=1))

        def published() -> set[uuid.UUID]:
            everyone = (low_first, low_second, normal, *high)
            return {p.id for p in everyone if engine.load(p.id).state is PostState.PUBLISHED}

        engine.run_until_idle()
        assert published() == set()
        # Each pass of the window frees two units: the best two waiting posts leave.
        engine.clock.advance(APP_WINDOW)
        engine.run_until_idle()
        assert published() == {p.id for p in high}
        engine.clock.advance(APP_WINDOW)
        engine.run_until_idle()
        assert published() == {p.id for p in high} | {normal.id, low_first.id}
        engine.clock.advance(APP_WINDOW)
        engine.run_until_idle()
        assert low_second.id in published()
        assert _waits(engine) == []
        assert engine.events().count("rate_limit.reached") == 0
