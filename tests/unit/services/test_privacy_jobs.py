"""The background privacy jobs on the memory adapters, without a database: RemovalJob
deletes on X the posts an erasure queued (retried, given up, paused by a rate limit,
each call on the spend ledger) and RetentionJob purges each kind of row when its own
period has passed. tests/integration/test_privacy_grpc.py runs both on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from post_management.adapters.memory.x_api import MemoryXApi
from post_management.domain.account import Account
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.auth import Principal, Role
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post, PostState
from post_management.ports.analytics import SOURCE_POLL
from post_management.ports.privacy import MAX_REMOVAL_ATTEMPTS
from post_management.ports.support import Clock
from post_management.ports.x_api import (
    AccountSuspended,
    DeleteOutcome,
    NewPost,
    PermanentFailure,
    Published,
    RateLimited,
    UnknownOutcome,
    XCredentials,
)
from post_management.ports.x_spend import SpendScope
from post_management.services.privacy.privacy import (
    RemovalJob,
    RetentionJob,
    RetentionPeriods,
)
from tests.contract.builders import an_account, store
from tests.unit.services.privacy_world import PrivacyWorld

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ADMIN = Principal("ops", Role.ADMIN)
TICK = timedelta(microseconds=1)


class ScriptedDeletes(MemoryXApi):
    """The memory X, whose next delete-post calls answer as scripted; every delete is
    counted."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.answers: list[DeleteOutcome] = []
        self.deletes: list[str] = []

    def delete_post(self, creds: XCredentials, x_post_id: str) -> DeleteOutcome:
        self.deletes.append(x_post_id)
        if self.answers:
            return self.answers.pop(0)
        return super().delete_post(creds, x_post_id)


class World(PrivacyWorld):
    def __init__(self) -> None:
        super().__init__(START)
        self.x = ScriptedDeletes(self.clock)

    def account(self, user_id: str) -> Account:
        account = an_account(self.clock.now(), user_id)
        assert account.credentials is not None
        self.x.register_user(account.credentials.access_token, account.x_user_id)
        store(self.adapters.uow, account)
        return account

    def post(self, account: Account, state: PostState, **fields: object) -> Post:
        return self.stored_post(account, state, **fields)

    def published(self, account: Account, segments: int = 1, **fields: object) -> Post:
        """A thread of `segments` posts, on X and stored PUBLISHED."""
        assert account.credentials is not None
        creds = XCredentials(account.credentials.access_token, "secret")
        ids = []
        for n in range(segments):
            answer = self.x.create_post(creds, NewPost(f"segment {n} {uuid.uuid4().hex[:6]}"))
            assert isinstance(answer, Published)
            ids.append(answer.x_post_id)
        return self.post(
            account,
            PostState.PUBLISHED,
            published_at=self.clock.now(),
            x_post_id=ids[0],
            segment_x_post_ids=ids,
            **fields,
        )

    def erase(self, user_id: str) -> str:
        report = asyncio.run(self.privacy.erase(ADMIN, user_id, delete_from_x=True))
        assert report.x_removals_queued > 0
        return self.pseudonyms.of(user_id)

    def removals(self, batch: int = 50) -> RemovalJob:
        return RemovalJob(self.adapters.privacy_jobs, self.x, self.clock, batch)

    def on_x(self, account: Account) -> list[str]:
        return [post.id for post in self.x.posts(account.x_user_id)]

    def attempts(self) -> list[tuple[str, int, bool, bool]]:
        """Every queued removal: (X post id, attempts, done, tokens kept)."""
        return [
            (row.x_post_id, row.attempts, row.done_at is not None, row.credentials is not None)
            for row in self.store.tables.x_removals
        ]

    def spend(self, user_hash: str) -> list[tuple[str, str, str, int]]:
        with self.adapters.uow() as work:
            rows = work.spend.rows(
                SpendScope(user_id=user_hash),
                START - timedelta(days=1),
                START + timedelta(days=800),
            )
        return [(row.kind, row.purpose, row.outcome, row.calls) for row in rows]


@pytest.fixture
def world() -> World:
    return World()


def test_an_erased_users_posts_are_deleted_on_x_and_their_tokens_dropped(world: World) -> None:
    alice, bob = world.account("alice"), world.account("bob")
    world.published(alice, segments=2)
    world.published(alice)
    world.published(bob)
    hashed = world.erase("alice")
    assert len(world.on_x(alice)) == 3

    assert world.removals().tick() == 3

    assert world.on_x(alice) == [] and len(world.on_x(bob)) == 1
    assert [(attempts, done, kept) for _, attempts, done, kept in world.attempts()] == [
        (1, True, False)
    ] * 3
    # Each DELETE on the pseudonym's ledger: the account is gone.
    assert world.spend(hashed) == [("post_delete", "erasure", "charged", 3)]
    # Done: the next tick calls X no more.
    calls = len(world.x.deletes)
    assert world.removals().tick() == 0
    assert len(world.x.deletes) == calls


def test_a_tick_takes_one_batch_lowest_first(world: World) -> None:
    alice = world.account("alice")
    world.published(alice, segments=3)
    world.erase("alice")
    queued = [row[0] for row in world.attempts()]

    assert world.removals(batch=2).tick() == 2
    assert world.x.deletes == queued[:2]
    assert world.removals(batch=2).tick() == 1
    assert world.x.deletes == queued


def test_a_rate_limit_ends_the_tick_without_counting_an_attempt(world: World) -> None:
    alice = world.account("alice")
    world.published(alice, segments=3)
    hashed = world.erase("alice")
    world.x.answers = [RateLimited(reset_at=START + timedelta(minutes=15))]

    assert world.removals().tick() == 0

    assert len(world.x.deletes) == 1  # nothing more asked of X in this tick
    assert [(attempts, done) for _, attempts, done, _ in world.attempts()] == [(0, False)] * 3
    assert world.spend(hashed) == [("post_delete", "erasure", "refused", 1)]
    # The next tick deletes them all (the job does not wait for the reset itself).
    assert world.removals().tick() == 3
    assert world.on_x(alice) == []


def test_an_unknown_outcome_is_retried_and_given_up_at_the_limit(world: World) -> None:
    alice = world.account("alice")
    world.published(alice)
    hashed = world.erase("alice")
    world.x.answers = [UnknownOutcome("X answered 503")] * MAX_REMOVAL_ATTEMPTS

    for attempt in range(1, MAX_REMOVAL_ATTEMPTS):
        assert world.removals().tick() == 0
        ((_, attempts, done, kept),) = world.attempts()
        assert (attempts, done, kept) == (attempt, False, True)
    assert world.removals().tick() == 0

    ((_, attempts, done, kept),) = world.attempts()
    assert (attempts, done, kept) == (MAX_REMOVAL_ATTEMPTS, True, False)
    assert world.store.tables.x_removals[0].last_error == "X answered 503"
    assert world.removals().tick() == 0
    assert len(world.x.deletes) == MAX_REMOVAL_ATTEMPTS
    assert world.spend(hashed) == [("post_delete", "erasure", "refused", MAX_REMOVAL_ATTEMPTS)]


def test_an_unknown_outcome_then_a_deletion(world: World) -> None:
    alice = world.account("alice")
    world.published(alice)
    world.erase("alice")
    world.x.answers = [UnknownOutcome("timeout")]

    assert world.removals().tick() == 0
    assert world.removals().tick() == 1

    assert world.on_x(alice) == []
    assert [row[1:] for row in world.attempts()] == [(2, True, False)]


@pytest.mark.parametrize(
    "answer",
    [AccountSuspended("suspended"), PermanentFailure("forbidden", status=403)],
    ids=["suspended", "permanent"],
)
def test_an_answer_that_retrying_cannot_change_gives_the_removal_up(
    world: World, answer: AccountSuspended | PermanentFailure
) -> None:
    alice = world.account("alice")
    world.published(alice)
    hashed = world.erase("alice")
    world.x.answers = [answer]

    assert world.removals().tick() == 0

    assert [row[1:] for row in world.attempts()] == [(1, True, False)]
    assert world.store.tables.x_removals[0].last_error == answer.reason
    assert world.removals().tick() == 0 and len(world.x.deletes) == 1
    assert world.spend(hashed) == [("post_delete", "erasure", "refused", 1)]


def test_revoked_tokens_give_the_removal_up(world: World) -> None:
    alice = world.account("alice")
    world.published(alice)
    hashed = world.erase("alice")
    assert alice.credentials is not None
    world.x.revoke(alice.credentials.access_token)

    assert world.removals().tick() == 0

    assert [row[1:] for row in world.attempts()] == [(1, True, False)]
    assert len(world.on_x(alice)) == 1  # left on X: nothing more can be done from here
    assert world.spend(hashed) == [("post_delete", "erasure", "refused", 1)]


def test_a_removal_without_tokens_is_finished_without_calling_x(world: World) -> None:
    alice = world.account("alice")
    world.published(alice)
    world.erase("alice")
    queued = world.store.tables.x_removals
    world.store.tables.x_removals = [replace(row, credentials=None) for row in queued]

    assert world.removals().tick() == 0

    assert world.x.deletes == []
    assert [row[1:] for row in world.attempts()] == [(1, True, False)]
    assert world.store.tables.x_removals[0].last_error == "no credentials"


# Distinct periods, so each kind of row can only go when its own has passed.
PERIODS = RetentionPeriods(
    metric_snapshots=timedelta(days=400),
    dead_letters=timedelta(days=90),
    finished_removals=timedelta(days=30),
    unattached_media=timedelta(days=7),
    published_media=timedelta(days=60),
)
NOTHING = {
    "metric_snapshots": 0,
    "dead_letters": 0,
    "x_removals": 0,
    "unattached_media": 0,
    "published_media": 0,
}


def test_each_kind_is_purged_once_its_own_period_has_passed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything below is written at START.
    alice, bob = world.account("alice"), world.account("bob")
    world.published(alice)
    world.erase("alice")
    assert world.removals().tick() == 1  # done at START
    media = {
        name: Media(uuid.uuid4(), "bob", "image/png", MediaKind.IMAGE, 3, START)
        for name in ("unattached", "published", "dead letter's", "scheduled")
    }
    with world.adapters.uow() as work:
        for item in media.values():
            work.media.add(item, b"png")
        work.commit()
    measured = world.published(bob, attachment_ids=[media["published"].id])
    with world.adapters.uow() as work:
        work.analytics.add_snapshot(
            measured.id, Snapshot(START, Counts(impressions=5)), SOURCE_POLL
        )
        work.commit()
    dead = world.post(bob, PostState.DEAD_LETTERED, attachment_ids=[media["dead letter's"].id])
    failed = world.post(bob, PostState.FAILED)
    world.post(
        bob,
        PostState.SCHEDULED,
        scheduled_for=START + timedelta(days=500),
        attachment_ids=[media["scheduled"].id],
    )
    job = RetentionJob(world.adapters.privacy_jobs, world.clock, PERIODS)

    def at(when: timedelta) -> dict[str, int]:
        world.clock.set(START + when)
        return job.tick()

    caplog.set_level(logging.INFO, "post_management.services.privacy.privacy")
    assert at(timedelta(0)) == NOTHING
    # At each period's end the row is kept; a microsecond later it goes, alone.
    assert at(PERIODS.unattached_media) == NOTHING
    assert at(PERIODS.unattached_media + TICK) == NOTHING | {"unattached_media": 1}
    assert at(PERIODS.finished_removals) == NOTHING
    assert at(PERIODS.finished_removals + TICK) == NOTHING | {"x_removals": 1}
    assert at(PERIODS.published_media) == NOTHING
    assert at(PERIODS.published_media + TICK) == NOTHING | {"published_media": 1}
    assert at(PERIODS.dead_letters) == NOTHING
    # The dead letter's media is no longer attached, and old enough: it goes with it.
    assert at(PERIODS.dead_letters + TICK) == NOTHING | {"dead_letters": 1, "unattached_media": 1}
    assert at(PERIODS.metric_snapshots) == NOTHING
    assert at(PERIODS.metric_snapshots + TICK) == NOTHING | {"metric_snapshots": 1}
    assert at(PERIODS.metric_snapshots * 2) == NOTHING

    tables = world.store.tables
    assert set(tables.media) == {media["scheduled"].id}
    assert dead.id not in tables.posts and {measured.id, failed.id} <= set(tables.posts)
    assert tables.x_removals == [] and tables.post_metrics[measured.id] == []
    # Only the ticks that purged something said so.
    purges = [r for r in caplog.records if r.getMessage() == "retention purge"]
    assert [getattr(r, "x_removals", None) for r in purges] == [0, 1, 0, 0, 0]
