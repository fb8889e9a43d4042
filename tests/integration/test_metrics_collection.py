"""The metrics collector against real PostgreSQL and the X emulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from post_management.adapters.cache import InProcessCache
from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.analytics_repository import AdvisoryLeaderLock
from post_management.adapters.db.engine import make_engine
from post_management.adapters.x.client import TweepyXApi
from post_management.domain.account import Account, Credentials
from post_management.domain.post import Post, PostState
from post_management.domain.x_spend import CallKind, Metered, Purpose
from post_management.ports.x_api import XCredentials, XUser
from post_management.services.analytics.growth import GrowthCollector
from post_management.services.analytics.metrics_collection import APP_CALLER, MetricsCollector
from tests.conftest import truncate
from tests.fixtures.emulator import Emulator
from tests.integration.analytics_fixtures import Data
from tests.integration.publishing_fixtures import MovableClock

LOOKUPS = "GET /2/tweets"


@dataclass
class Setup:
    data: Data
    emulator: Emulator
    clock: MovableClock
    collector: MetricsCollector
    lock: AdvisoryLeaderLock
    x_api: TweepyXApi

    def account(self, x_user_id: str, *, credentials: bool) -> Account:
        token = f"token-{x_user_id}"
        self.emulator.control.register_user(token, user_id=x_user_id, username=f"u{x_user_id}")
        creds = Credentials(token, f"secret-{x_user_id}") if credentials else None
        return self.data.account("alice", x_user_id, credentials=creds)

    def published(self, account: Account, count: int, age: timedelta) -> list[Post]:
        """Posts on X (seeded in the emulator) and PUBLISHED here."""
        posts = []
        for index in range(count):
            seeded = self.emulator.control.seed_post(
                account.x_user_id, f"{account.x_user_id} post {index}", age.total_seconds()
            )
            published_at = self.clock.now() - age
            posts.append(self.data.post(account, published_at=published_at, x_post_id=seeded["id"]))
        return posts

    def lookups(self) -> int:
        return self.emulator.control.counters().get(LOOKUPS, 0)


@pytest.fixture
def setup(machine_database: str, x_api: TweepyXApi, emulator: Emulator) -> Iterator[Setup]:
    truncate(machine_database)
    engine = make_engine(machine_database)
    box = FernetBox([Fernet.generate_key().decode()])
    data = Data(engine, box)
    clock = MovableClock(engine, emulator)
    lock = AdvisoryLeaderLock(engine)
    collector = MetricsCollector(
        data.uow,
        x_api,
        clock,
        InProcessCache(),
        lock,
        growth=GrowthCollector(data.uow, x_api, clock),
    )
    yield Setup(data, emulator, clock, collector, lock, x_api)
    engine.dispose()


def test_batches_of_100_per_caller_with_snapshots_and_events(setup: Setup) -> None:
    author = setup.account("5001", credentials=True)
    no_creds = setup.account("5002", credentials=False)
    mine = setup.published(author, 150, timedelta(minutes=30))
    theirs = setup.published(no_creds, 30, timedelta(minutes=30))
    before = setup.lookups()

    assert setup.collector.tick() == 180
    # 150 ids with the author's token: 100 + 50; 30 with the app's bearer token: 1 call.
    assert setup.lookups() - before == 3
    assert setup.data.snapshot_count() == 180
    events = setup.data.events("post.metrics_updated")
    assert len(events) == 180 and {e["postId"] for e in events} == {
        str(p.id) for p in mine + theirs
    }
    with setup.data.engine.connect() as connection:
        rows = dict(
            connection.execute(text("SELECT post_id, url_link_clicks FROM post_metrics")).all()
        )
    # Private counts only with the author's credentials.
    assert all(rows[p.id] is not None for p in mine)
    assert all(rows[p.id] is None for p in theirs)
    # The event carries what the snapshot holds.
    first = mine[0]
    *_, snapshot = setup.data.series(first.id)
    assert snapshot.counts.impressions > 0
    [event] = setup.data.events("post.metrics_updated", first.id)
    assert event["metrics"]["impressions"] == str(snapshot.counts.impressions)
    assert event["metrics"]["urlLinkClicks"] == str(snapshot.counts.url_link_clicks)


def test_young_posts_refresh_often_and_old_ones_rarely(setup: Setup) -> None:
    author = setup.account("5101", credentials=True)
    [young] = setup.published(author, 1, timedelta(minutes=10))
    [old] = setup.published(author, 1, timedelta(days=10))
    assert setup.collector.tick() == 2
    assert setup.collector.tick() == 0  # nothing due yet: no call at all
    before = setup.lookups()

    setup.clock.advance(timedelta(minutes=5, seconds=1))  # young: every 5 minutes
    assert setup.collector.tick() == 1
    assert setup.data.snapshot_count(young.id) == 2 and setup.data.snapshot_count(old.id) == 1
    assert setup.lookups() - before == 1
    [first, second] = setup.data.series(young.id)
    assert second.counts.impressions >= first.counts.impressions  # the emulator's curve grows

    setup.clock.advance(timedelta(days=1))  # old (10 days): daily
    assert setup.collector.tick() == 2
    assert setup.data.snapshot_count(old.id) == 2


def test_a_429_stops_the_caller_until_the_reset(setup: Setup) -> None:
    author = setup.account("5201", credentials=True)
    [post] = setup.published(author, 1, timedelta(minutes=30))
    setup.emulator.control.inject_fault("GET", "/2/tweets", "status", status=429)
    before = setup.lookups()

    assert setup.collector.tick() == 0
    blocked = setup.collector.blocked_until(f"account:{author.id}")
    assert blocked is not None and blocked > datetime.now(UTC)
    assert setup.collector.tick() == 0
    assert setup.lookups() - before == 1  # waited instead of asking again
    assert setup.data.snapshot_count(post.id) == 0

    setup.clock.advance(blocked - setup.clock.now() + timedelta(seconds=1))
    assert setup.collector.tick() == 1
    assert setup.data.snapshot_count(post.id) == 1
    assert setup.collector.blocked_until(f"account:{author.id}") is None


def test_a_spent_window_waits_without_a_429(setup: Setup) -> None:
    setup.emulator.control.set_limits(lookup_per_window=1)
    app_only = setup.account("5301", credentials=False)
    setup.published(app_only, 1, timedelta(minutes=30))
    assert setup.collector.tick() == 1  # the only call of the window: remaining 0
    assert setup.collector.blocked_until(APP_CALLER) is not None
    setup.clock.advance(timedelta(minutes=6))
    before = setup.lookups()
    assert setup.collector.tick() == 0
    assert setup.lookups() == before


def test_posts_deleted_on_x_are_marked_and_left_alone(setup: Setup) -> None:
    author = setup.account("5401", credentials=True)
    [kept] = setup.published(author, 1, timedelta(minutes=30))
    gone = setup.data.post(
        author, published_at=setup.clock.now() - timedelta(minutes=30), x_post_id="987654321"
    )
    assert setup.collector.tick() == 1  # one refreshed, one found gone
    assert setup.data.deleted_on_x(gone.id)
    assert not setup.data.deleted_on_x(kept.id)
    assert setup.data.snapshot_count(gone.id) == 0
    setup.clock.advance(timedelta(minutes=6))
    assert setup.collector.tick() == 1  # only the post still on X


def test_one_collector_at_a_time(setup: Setup) -> None:
    author = setup.account("5501", credentials=True)
    setup.published(author, 1, timedelta(minutes=30))
    with setup.lock.hold() as held:
        assert held
        before = setup.lookups()
        assert setup.collector.tick() == 0  # another replica holds the lock
        assert setup.lookups() == before
    assert setup.collector.tick() == 1


def follower_rows(setup: Setup) -> list[tuple[object, ...]]:
    with setup.data.engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT account_id, day, followers, following, posts, listed "
                    "FROM account_growth ORDER BY account_id, day"
                )
            ).all()
        )


def test_follower_counts_are_read_once_a_day_with_the_accounts_credentials(setup: Setup) -> None:
    author = setup.account("5301", credentials=True)
    setup.account("5302", credentials=False)  # nothing to read with: no snapshot
    setup.published(author, 2, timedelta(minutes=30))
    before = setup.emulator.control.counters().get("GET /2/users/me", 0)

    setup.collector.tick()
    [row] = follower_rows(setup)
    me = setup.x_api.me(XCredentials("token-5301", "secret-5301"))
    assert isinstance(me, XUser) and me.metrics is not None
    # What X answered for the account (its followers move only with the emulator clock).
    assert row[0] == author.id and row[1] == setup.clock.now().date()
    assert row[2:] == (me.metrics.followers, me.metrics.following, 2, me.metrics.listed)
    assert me.metrics.posts == 2  # both posts are on the account's timeline

    setup.collector.tick()  # the same day: no second read
    assert setup.emulator.control.counters().get("GET /2/users/me", 0) - before == 2

    setup.clock.advance(timedelta(days=1))
    setup.collector.tick()
    rows = follower_rows(setup)
    assert [r[1] for r in rows] == [row[1], row[1] + timedelta(days=1)]
    assert rows[1][2] != rows[0][2]  # the emulator's followers moved over the day


def spend_rows(setup: Setup) -> list[tuple[object, ...]]:
    with setup.data.engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT account_id, kind, purpose, outcome, units, charged_units, cost_micros "
                    "FROM x_spend ORDER BY id"
                )
            ).all()
        )


def test_reads_are_metered_per_account_once_a_day_and_refusals_cost_nothing(
    setup: Setup,
) -> None:
    author = setup.account("5401", credentials=True)
    bearer = setup.account("5402", credentials=False)
    young = setup.published(author, 2, timedelta(minutes=10))
    setup.published(bearer, 1, timedelta(minutes=10))
    setup.collector.tick()
    reads = [row for row in spend_rows(setup) if row[1] == "post_read"]
    # One row per account: the author's 2 posts and the bearer-read account's 1, at
    # $0.005 a post; and the author's users/me read for the follower count ($0.01).
    assert sorted(reads, key=lambda r: str(r[0])) == sorted(
        [
            (author.id, "post_read", "metrics", "charged", 2, 2, 10_000),
            (bearer.id, "post_read", "metrics", "charged", 1, 1, 5_000),
        ],
        key=lambda r: str(r[0]),
    )
    assert [r[1:] for r in spend_rows(setup) if r[1] == "user_read"] == [
        ("user_read", "growth", "charged", 1, 1, 10_000)
    ]
    # Five minutes on, the young posts are read again the same UTC day: X bills a post
    # once a day, so the read is recorded and free.
    setup.clock.advance(timedelta(minutes=5, seconds=1))
    assert setup.collector.tick() == 3
    again = [row for row in spend_rows(setup) if row[1] == "post_read"][2:]
    assert {(r[0], r[3], r[4], r[5], r[6]) for r in again} == {
        (author.id, "deduplicated", 2, 0, 0),
        (bearer.id, "deduplicated", 1, 0, 0),
    }
    # A refused lookup is recorded with nothing billed.
    setup.clock.advance(timedelta(minutes=5, seconds=1))
    setup.emulator.control.inject_fault("GET", "/2/tweets", "status", status=503)
    setup.collector.tick()
    refused = [row for row in spend_rows(setup) if row[3] == "refused"]
    assert refused and all(row[5:] == (0, 0) for row in refused)
    assert len(young) == 2


def test_reads_slow_down_near_the_budget_and_stop_before_the_publishers_share(
    setup: Setup,
) -> None:
    author = setup.account("5501", credentials=True)
    [post] = setup.published(author, 1, timedelta(minutes=10))
    now = setup.clock.now()
    # Budget $0.10; $0.07 spent this month; a scheduled post (no link, $0.015) is due
    # this month: 85 % committed, past the 80 % mark.
    setup.data.post(author, PostState.SCHEDULED, due_at=now + timedelta(minutes=1))
    with setup.data.engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET x_monthly_budget_micros = 100000 WHERE id = :id"),
            {"id": author.id},
        )
    with setup.data.uow() as uow:
        uow.spend.record(
            [Metered(now, CallKind.POST_READ, Purpose.METRICS, "alice", author.id, units=14)]
        )
        uow.commit()
    assert setup.collector.tick() == 1
    with setup.data.engine.connect() as connection:
        gap = connection.execute(
            text(
                "SELECT next_collect_at - last_collected_at FROM post_metrics_state "
                "WHERE post_id = :id"
            ),
            {"id": post.id},
        ).scalar_one()
        spent = connection.execute(
            text("SELECT sum(cost_micros) FROM x_spend WHERE account_id = :id"), {"id": author.id}
        ).scalar_one()
    assert gap == timedelta(minutes=20)  # every 5 minutes, four times further apart
    # The tick read the post ($0.005) and the follower count ($0.01): $0.085 spent and
    # $0.015 reserved commit the whole budget, so the collector leaves the rest to the
    # scheduled post: no post read and no follower read the next day.
    assert spent == 85_000
    setup.clock.advance(timedelta(days=1))
    before = setup.lookups()
    users_me = setup.emulator.control.counters().get("GET /2/users/me", 0)
    assert setup.collector.tick() == 0
    assert setup.lookups() == before
    assert setup.emulator.control.counters().get("GET /2/users/me", 0) == users_me
