"""No account stops or delays the others: one account's backlog cannot fill a claim,
and a row that cannot be read or reconciled is dealt with on its own while the rest
of the batch goes on. Real PostgreSQL and the X emulator."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from post_management.adapters.db.publish_queue import _CLAIM_DUE, _CLAIM_FRONT
from post_management.adapters.x.client import TweepyXApi
from post_management.domain.account import AccountState
from post_management.domain.post import PostState, Priority
from post_management.ports.x_api import TimelineOutcome, XCredentials
from tests.fixtures.emulator import Emulator
from tests.integration.publishing_fixtures import Engine_, make_engine_

DISPATCH_INTERVAL_S = 1.0  # the service's default tick


@pytest.fixture
def engine_32(
    machine_database: str, patient_x_api: TweepyXApi, emulator: Emulator
) -> Iterator[Engine_]:
    """The engine with the service's default number of publishes in flight. Its client
    waits out a pause of the machine: a timed-out create would be settled only
    PUBLISH_SETTLE_SECONDS later, which says nothing about one account's backlog."""
    built = make_engine_(machine_database, patient_x_api, emulator, max_in_flight=32)
    yield built
    built.dispatcher.close()
    built.engine.dispose()


def _ticking(engine: Engine_, stop: threading.Event) -> None:
    while not stop.wait(DISPATCH_INTERVAL_S):
        engine.dispatcher.tick()


def _due_at(engine: Engine_, post_ids: list[Any]) -> dict[str, datetime]:
    with engine.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT text, due_at FROM posts WHERE id = ANY(:ids)"), {"ids": post_ids}
        ).all()
    return dict(rows)


def test_one_accounts_backlog_does_not_delay_the_others(engine_32: Engine_) -> None:
    engine = engine_32
    busy = engine.account()
    start = timedelta(seconds=1)
    for i in range(150):
        engine.post(busy, f"backlog {i}", due_in=start)
    others = [
        engine.post(engine.account(), f"on time {i}", due_in=start + timedelta(seconds=2))
        for i in range(40)
    ]
    due = _due_at(engine, [p.id for p in others])
    stop = threading.Event()
    ticker = threading.Thread(target=_ticking, args=(engine, stop))
    ticker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(engine.load(p.id).state is PostState.PUBLISHED for p in others):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        ticker.join()
        engine.dispatcher.drain()

    states = {p.text: engine.load(p.id).state for p in others}
    late = []
    for text_, due_at in due.items():
        on_x = engine.emulator.control.posts(text=text_)
        assert len(on_x) == 1, (text_, states[text_], on_x)
        sent_at = datetime.fromtimestamp(on_x[0]["created_at"], due_at.tzinfo)
        late.append((sent_at - due_at).total_seconds())
    assert max(late) <= 2.0, (statistics.median(late), max(late))
    # The busy account went on meanwhile, one post per tick.
    assert len(engine.emulator.control.posts(author_id=busy.x_user_id)) >= 2


def test_the_claim_reads_only_due_rows_of_the_claim_index(engine_: Engine_) -> None:
    """A store of mostly published posts and posts queued for later: the claim reads
    the due range of the partial index, and each chosen account takes one advisory
    lock (never a scan of posts filtered by it)."""
    accounts = [engine_.account() for _ in range(20)]
    with engine_.engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO posts (id, user_id, account_id, text, state, priority, due_at,
                                   version, created_at, updated_at)
                SELECT gen_random_uuid(), 'alice', (:ids)[1 + n % 20], 'p' || n,
                       CASE WHEN n % 10 = 0 THEN 'SCHEDULED' ELSE 'PUBLISHED' END, 2,
                       now() + CASE WHEN n % 10 = 0 THEN interval '1 day'
                                    ELSE -interval '1 day' END,
                       1, now(), now()
                FROM generate_series(1, 20000) AS n
                """
            ),
            {"ids": [a.id for a in accounts]},
        )
        connection.execute(text("ANALYZE posts"))
    for account in accounts[:5]:
        engine_.post(account, "due")
    params = {"limit": 10, "lease": timedelta(seconds=60), "window": 100}
    for claim in (_CLAIM_DUE, _CLAIM_FRONT):
        with engine_.engine.connect() as connection:
            plan = "\n".join(
                row[0] for row in connection.execute(text("EXPLAIN " + str(claim)), params)
            )
        assert "Seq Scan on posts" not in plan, plan
        assert "ix_posts_due_scheduled" in plan, plan
        advisory = [line for line in plan.splitlines() if "pg_try_advisory_xact_lock" in line]
        assert len(advisory) == 1 and "Filter" in advisory[0], plan
        assert "CTE Scan on chosen" in plan, plan  # the lock filters chosen rows only
    # The front: one range of the claim index per priority, each read in due order.
    assert plan.count("Index Scan using ix_posts_due_scheduled") == len(Priority), plan
    assert len(engine_.queue.claim_due(10, timedelta(seconds=60))) == 5


def _break_credentials(engine: Engine_, account_id: Any) -> None:
    """As after removing a key from ENCRYPTION_KEYS while it still encrypts an account."""
    foreign = Fernet(Fernet.generate_key()).encrypt(b'{"access_token": "x"}')
    with engine.engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET credentials_encrypted = :blob WHERE id = :id"),
            {"blob": foreign, "id": account_id},
        )


def test_undecryptable_credentials_park_one_post_and_the_batch_goes_on(
    engine_: Engine_,
) -> None:
    broken = engine_.account()
    _break_credentials(engine_, broken.id)
    urgent = engine_.post(broken, "urgent on a broken account", priority=Priority.URGENT)
    healthy = [engine_.post(engine_.account(), f"healthy {i}") for i in range(5)]

    engine_.run_until_idle()

    assert {engine_.load(p.id).state for p in healthy} == {PostState.PUBLISHED}
    parked = engine_.load(urgent.id)
    assert parked.state is PostState.SCHEDULED  # waits; it is not the post's fault
    assert parked.attempt_count == 0
    assert "credentials cannot be read" in parked.last_error
    with engine_.engine.connect() as connection:
        state = connection.execute(
            text("SELECT state FROM accounts WHERE id = :id"), {"id": broken.id}
        ).scalar_one()
        assert state == AccountState.PAUSED.value
        (reason,) = connection.execute(
            text(
                "SELECT payload->>'reason' FROM outbox WHERE event_type = 'account.suspended' "
                "AND aggregate_id = :id"
            ),
            {"id": str(broken.id)},
        ).one()
    assert "credentials cannot be read" in reason
    assert engine_.emulator.control.posts(text="urgent on a broken account") == []


class BrokenTimelineFor:
    """The real client, whose timeline read raises (a bug, not an X answer) for one
    account's token."""

    def __init__(self, api: TweepyXApi) -> None:
        self._api = api
        self.broken_token = ""

    def recent_posts(self, creds: XCredentials, since: datetime, **kw: Any) -> TimelineOutcome:
        if creds.access_token == self.broken_token:
            raise RuntimeError("unexpected answer")
        return self._api.recent_posts(creds, since, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


def test_one_claim_that_breaks_the_reconciler_does_not_stop_the_others(
    machine_database: str, x_api: TweepyXApi, emulator: Emulator
) -> None:
    proxy = BrokenTimelineFor(x_api)
    engine = make_engine_(machine_database, proxy, emulator)  # type: ignore[arg-type]
    try:
        first = engine.account()
        assert first.credentials is not None
        proxy.broken_token = first.credentials.access_token
        second = engine.account()
        stuck = engine.post(first, "the reconciler breaks on this one")
        fine = engine.post(second, "and decides this one")
        engine.emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop", count=2)
        engine.run_until_idle()
        assert {engine.load(p.id).state for p in (stuck, fine)} == {PostState.PUBLISHING}
        engine.clock.advance(engine.settings.timing.settle_delay)

        assert engine.reconciler.tick() == 2

        assert engine.load(fine.id).state is PostState.PUBLISHED
        # The broken one is kept and looked at again later, not hot-looped.
        assert engine.load(stuck.id).state is PostState.PUBLISHING
        assert engine.reconciler.tick() == 0
    finally:
        engine.dispatcher.drain()
        engine.engine.dispose()
