"""The publishing engine against real PostgreSQL and the X emulator (docs/reliability.md)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from post_management.domain.account import AccountState
from post_management.domain.post import PostState, Priority
from tests.integration.publishing_fixtures import Engine_

HOUR = timedelta(hours=1)


def test_a_due_post_is_published_once_with_its_events(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "launch day")
    later = engine_.post(account, "not yet", due_in=HOUR)

    engine_.run_until_idle()

    published = engine_.load(post.id)
    assert published.state is PostState.PUBLISHED
    assert published.x_post_id and published.published_at is not None
    on_x = engine_.emulator.control.posts(text="launch day")
    assert [p["id"] for p in on_x] == [published.x_post_id]
    assert engine_.events(post.id) == ["post.published", "post.queue_processed"]
    assert engine_.attempts(post.id) == [(1, "published")]
    assert engine_.load(later.id).state is PostState.SCHEDULED


def test_priority_order_and_one_post_per_account_in_flight(engine_: Engine_) -> None:
    account = engine_.account()
    low = engine_.post(account, "low", priority=Priority.LOW)
    urgent = engine_.post(account, "urgent", priority=Priority.URGENT)
    normal = engine_.post(account, "normal")

    claims = engine_.queue.claim_due(10, timedelta(seconds=60))
    assert [c.post_id for c in claims] == [urgent.id]  # one per account, highest first
    assert engine_.queue.claim_due(10, timedelta(seconds=60)) == []
    for claim in claims:
        engine_.publisher.publish(claim)
    engine_.run_until_idle()
    order = sorted(
        (engine_.load(p.id) for p in (low, urgent, normal)),
        key=lambda p: p.published_at or p.created_at,
    )
    assert [p.text for p in order] == ["urgent", "normal", "low"]


def test_permanent_failure_fails_without_retry(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "refused")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "status", status=400)
    engine_.run_until_idle()
    failed = engine_.load(post.id)
    assert failed.state is PostState.FAILED
    assert failed.attempt_count == 1
    assert "post.failed" in engine_.events(post.id)


def test_5xx_is_unknown_then_retried_with_backoff_then_dead_lettered(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "flaky")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "status", status=503, count=3)

    engine_.run_until_idle()
    first = engine_.load(post.id)
    assert first.state is PostState.PUBLISHING  # unknown: the reconciler decides
    assert engine_.emulator.control.counters().get("POST /2/tweets") == 1

    for attempt in (1, 2):
        engine_.clock.advance(engine_.settings.timing.settle_delay)
        engine_.reconciler.tick()  # not on X: retry after a backoff
        retried = engine_.load(post.id)
        assert retried.state is PostState.SCHEDULED
        assert retried.scheduled_for is not None
        backoff = retried.scheduled_for - engine_.clock.now()
        base = engine_.settings.timing.policy.base.total_seconds() * 2 ** (attempt - 1)
        assert base * 0.5 - 1 <= backoff.total_seconds() <= base + 1
        engine_.run_until_idle()  # not due yet: nothing happens
        assert engine_.load(post.id).state is PostState.SCHEDULED
        engine_.clock.advance(backoff + timedelta(seconds=1))
        engine_.run_until_idle()
        assert engine_.load(post.id).state is PostState.PUBLISHING

    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.reconciler.tick()
    dead = engine_.load(post.id)
    assert dead.state is PostState.DEAD_LETTERED
    assert "gave up after 3 attempts" in dead.last_error
    assert [o for _, o in engine_.attempts(post.id)] == ["retry", "retry", "dead_lettered"]
    assert engine_.emulator.control.posts(text="flaky") == []

    # Requeued (attempts start again at 1): the history of the first round stays.
    with engine_.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE posts SET state = 'SCHEDULED', attempt_count = 0, due_at = now() "
                "WHERE id = :id"
            ),
            {"id": post.id},
        )
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHED
    assert engine_.attempts(post.id) == [
        (1, "retry"),
        (2, "retry"),
        (3, "dead_lettered"),
        (1, "published"),
    ]


def test_accepted_then_dropped_is_adopted_not_reposted(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "accepted but the answer was lost")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHING
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.run_until_idle()
    adopted = engine_.load(post.id)
    on_x = engine_.emulator.control.posts(text="accepted but the answer was lost")
    assert adopted.state is PostState.PUBLISHED
    assert [p["id"] for p in on_x] == [adopted.x_post_id]
    assert engine_.attempts(post.id) == [(1, "adopted")]
    assert engine_.emulator.control.counters().get("POST /2/tweets duplicate", 0) == 0


def test_a_timeout_after_x_stored_the_post_is_adopted(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "slow answer")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "timeout", accept=True)
    engine_.run_until_idle()
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHED
    assert len(engine_.emulator.control.posts(text="slow answer")) == 1


def test_duplicate_content_not_on_the_recent_timeline_fails(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.seed_post(account.x_user_id, "same words", age_seconds=3600)
    post = engine_.post(account, "same words")
    engine_.run_until_idle()
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.run_until_idle()
    failed = engine_.load(post.id)
    assert failed.state is PostState.FAILED
    assert "duplicate" in failed.last_error


def test_rate_limited_posts_wait_in_priority_order(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.set_limits(user_posts_per_window=1)
    first = engine_.post(account, "first", priority=Priority.HIGH)
    low = engine_.post(account, "second low", priority=Priority.LOW)
    high = engine_.post(account, "second high", priority=Priority.HIGH, due_in=timedelta(0))
    engine_.run_until_idle()
    assert engine_.load(first.id).state is PostState.PUBLISHED
    waiting = [engine_.load(p.id) for p in (low, high)]
    assert [p.state for p in waiting] == [PostState.SCHEDULED, PostState.SCHEDULED]
    assert all(p.attempt_count == 0 for p in waiting)  # a rate limit is no failed attempt
    assert "rate_limit.reached" in engine_.events()
    with engine_.engine.connect() as connection:
        until = connection.execute(
            text("SELECT rate_limited_until FROM accounts WHERE id = :id"), {"id": account.id}
        ).scalar_one()
    assert until is not None and until > engine_.clock.now()

    # After the reset both leave, the high one first.
    engine_.emulator.control.set_limits(user_posts_per_window=100)
    engine_.clock.advance(until - engine_.clock.now() + timedelta(seconds=1))
    engine_.run_until_idle()
    done = [engine_.load(p.id) for p in (high, low)]
    assert [p.state for p in done] == [PostState.PUBLISHED, PostState.PUBLISHED]
    assert done[0].published_at is not None and done[1].published_at is not None
    assert done[0].published_at <= done[1].published_at


def test_x_headers_saying_the_budget_is_spent_hold_the_account(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.set_limits(user_posts_per_window=2)
    posts = [engine_.post(account, f"headers {i}") for i in range(3)]
    engine_.run_until_idle()
    states = [engine_.load(p.id).state for p in posts]
    assert states == [PostState.PUBLISHED, PostState.PUBLISHED, PostState.SCHEDULED]
    # The second answer said "0 remaining": no call was wasted on a certain 429.
    assert engine_.emulator.control.counters().get("POST /2/tweets") == 2
    assert engine_.events().count("rate_limit.reached") == 1


def test_own_budget_holds_posts_back_before_x_refuses(machine_database, x_api, emulator) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.publishing_fixtures import make_engine_

    engine = make_engine_(machine_database, x_api, emulator, user_limit=2)
    account = engine.account()
    posts = [engine.post(account, f"budget {i}") for i in range(3)]
    engine.run_until_idle()
    states = [engine.load(p.id).state for p in posts]
    assert states.count(PostState.PUBLISHED) == 2
    assert states.count(PostState.SCHEDULED) == 1
    assert emulator.control.counters().get("POST /2/tweets") == 2
    engine.dispatcher.close()
    engine.engine.dispose()


def test_suspension_pauses_the_account(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.suspend(account.x_user_id)
    post = engine_.post(account, "while suspended")
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.SCHEDULED
    with engine_.uow() as uow:
        stored = uow.accounts.get(account.id)
    assert stored is not None and stored.state is AccountState.SUSPENDED
    assert "account.suspended" in engine_.events()
    engine_.run_until_idle()  # a paused account is not claimed again
    assert engine_.emulator.control.counters().get("POST /2/tweets") == 1


def test_a_publisher_that_died_mid_call_is_resolved_by_the_reconciler(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "the process died after X answered")
    (claim,) = engine_.queue.claim_due(10, engine_.settings.lease)
    # X publishes it, then the process dies before recording the answer.
    from post_management.ports.x_api import NewPost, XCredentials

    assert claim.credentials is not None
    assert engine_.queue.sending(claim, engine_.settings.lease)  # as the publisher does
    engine_.publisher._x.create_post(  # type: ignore[attr-defined]
        XCredentials(claim.credentials.access_token, claim.credentials.access_token_secret),
        NewPost(claim.text),
    )
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHING  # the lease still holds
    engine_.clock.advance(engine_.settings.lease + timedelta(seconds=1))
    engine_.run_until_idle()
    assert engine_.load(post.id).state is PostState.PUBLISHED
    assert len(engine_.emulator.control.posts(text="the process died after X answered")) == 1
    # The stale holder cannot settle any more.
    from post_management.domain.publishing import Settlement

    assert not engine_.queue.settle(claim, Settlement(state=PostState.FAILED, outcome="failed"))


def test_concurrent_dispatchers_publish_every_post_exactly_once(
    machine_database,
    x_api,
    emulator,  # type: ignore[no-untyped-def]
) -> None:
    import threading

    from tests.integration.publishing_fixtures import make_engine_

    first = make_engine_(machine_database, x_api, emulator)
    second = make_engine_(machine_database, x_api, emulator)
    accounts = [first.account() for _ in range(10)]
    posts = [first.post(accounts[i % 10], f"race {i}") for i in range(60)]
    stop = threading.Event()

    def run(engine: Engine_) -> None:
        for _ in range(200):
            if stop.is_set():
                return
            engine.dispatcher.tick()
            engine.dispatcher.drain()

    threads = [threading.Thread(target=run, args=(e,)) for e in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    states = {first.load(p.id).state for p in posts}
    assert states == {PostState.PUBLISHED}
    on_x = emulator.control.posts()
    texts = sorted(p["text"] for p in on_x)
    assert texts == sorted(f"race {i}" for i in range(60))
    assert emulator.control.counters().get("POST /2/tweets duplicate", 0) == 0
    for engine in (first, second):
        engine.dispatcher.close()
        engine.engine.dispose()
