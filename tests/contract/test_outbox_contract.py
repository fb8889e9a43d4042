"""The outbox writer: events reach the outbox through the unit of work's commit (and a
settlement of the publishing queue), once, in order, and only when the change commits;
the same from memory and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from post_management.domain import events
from post_management.domain.account import Account
from post_management.domain.post import Post, PostState, Priority
from post_management.ports.publishing import Claim, Settlement
from post_management.ports.repositories import DuplicateKey
from tests.contract.builders import a_post, an_account, store, stored_post
from tests.contract.conftest import StoredEvent, World

LEASE = timedelta(seconds=90)


def stored(*written: events.DomainEvent) -> list[StoredEvent]:
    return [StoredEvent.of(event) for event in written]


def queued(post: Post, now: datetime) -> events.PostQueueAdded:
    return events.PostQueueAdded(
        post_id=post.id,
        account_id=post.account_id,
        user_id=post.user_id,
        due_at=now + timedelta(hours=1),
        priority=Priority.HIGH,
        occurred_at=now,
    )


def suspended(account: Account, now: datetime) -> events.AccountSuspended:
    return events.AccountSuspended(
        account_id=account.id,
        user_id=account.user_id,
        x_user_id=account.x_user_id,
        reason="tokens revoked",
        affected_posts=1,
        occurred_at=now,
    )


def test_events_are_written_when_the_unit_of_work_commits_once_and_in_order(
    world: World,
) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now)
    first, second, third = queued(post, now), suspended(account, now), queued(post, now)
    with world.uow() as uow:
        uow.outbox.add(first, second)
        assert world.outbox() == []  # kept until the commit
        uow.commit()
        assert world.outbox() == stored(first, second)
        uow.outbox.add(third)
        uow.commit()  # only what came since the last commit
    assert world.outbox() == stored(first, second, third)


def test_nothing_is_written_without_a_commit(world: World) -> None:
    now = world.time.now()
    _account, post = stored_post(world.uow, now)
    with world.uow() as uow:
        uow.outbox.add(queued(post, now))  # no commit
    with pytest.raises(RuntimeError), world.uow() as uow:
        uow.outbox.add(queued(post, now))
        raise RuntimeError("boom")
    with world.uow() as uow:
        uow.outbox.add(queued(post, now))
        uow.rollback()
        uow.commit()  # the rolled-back event is gone
    assert world.outbox() == []


def test_an_event_id_is_written_once_and_a_refused_commit_keeps_nothing(world: World) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now)
    event = queued(post, now)
    with world.uow() as uow:
        uow.outbox.add(event)
        uow.commit()
    other = an_account(now)
    with pytest.raises(DuplicateKey), world.uow() as uow:
        uow.accounts.add(other)
        uow.outbox.add(suspended(account, now), event)
        uow.commit()
    assert world.outbox() == stored(event)
    with world.uow() as uow:
        assert uow.accounts.get(other.id) is None


def test_a_settlement_writes_its_events_and_the_pause_it_causes_through_the_same_writer(
    world: World,
) -> None:
    now = world.time.now()
    account = an_account(now)
    posts = [a_post(account, now, due_in=timedelta(seconds=-i)) for i in range(6)]
    store(world.uow, account, *posts)
    (claim,) = world.queue.claim_due(1, LEASE)
    stranger = Claim(**{**claim.__dict__, "holder": uuid.uuid4()})
    lost = Settlement(PostState.FAILED, "failed", "refused", events=(failed(stranger, now),))
    assert not world.queue.settle(stranger, lost)
    assert world.outbox() == []  # a settlement that does not land writes nothing
    written: list[events.DomainEvent] = []
    while True:
        event = failed(claim, now)
        assert world.queue.settle(claim, Settlement(PostState.FAILED, "failed", events=(event,)))
        written.append(event)
        claims = world.queue.claim_due(1, LEASE)
        if not claims:
            break
        (claim,) = claims
    rows = world.outbox()
    # The settlements' own events, in order, then the pause the last one caused.
    assert rows[:-1] == stored(*written)
    pause = rows[-1]
    assert (pause.event_type, pause.aggregate_id) == (events.ACCOUNT_SUSPENDED, str(account.id))
    assert pause.payload["affectedPosts"] == len(written)


def failed(claim: Claim, now: datetime) -> events.PostFailed:
    return events.PostFailed(
        post_id=claim.post_id,
        account_id=claim.account_id,
        user_id=claim.user_id,
        error_code="X_403",
        reason="refused",
        attempt=claim.attempt_number,
        state=PostState.FAILED,
        occurred_at=now,
    )


def test_a_stored_post_hands_the_events_it_recorded_to_the_commit(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    post = a_post(account, now, state=PostState.DRAFT, due_in=None)
    store(world.uow, account)
    due = now + timedelta(hours=2)
    with world.uow() as uow:
        post.schedule(due, "UTC", Priority.HIGH, now)
        uow.posts.add(post)
        assert post.pull_events() == []  # handed over
        uow.commit()
    with world.uow() as uow:
        stored = uow.posts.get(post.id, for_update=True)
        assert stored is not None
        assert stored.cancel("cancelled by user:alice", now)
        # A save refused for its version takes nothing: the post keeps its events.
        assert not uow.posts.save(stored, stored.version + 1)
        assert uow.posts.save(stored, stored.version)
        uow.commit()
    with world.uow() as uow:
        again = uow.posts.get(post.id)
        assert again is not None
        assert again.pull_events() == []  # a loaded post has recorded nothing
    rows = world.outbox()
    assert [(row.event_type, row.aggregate_id) for row in rows] == [
        (events.POST_SCHEDULED, str(post.id)),
        (events.POST_QUEUE_ADDED, str(post.id)),
        (events.POST_CANCELLED, str(post.id)),
    ]
    assert rows[0].payload["priority"] == "PRIORITY_HIGH"
    assert rows[2].payload["reason"] == "cancelled by user:alice"


def test_a_posts_events_go_only_with_its_commit(world: World) -> None:
    now = world.time.now()
    _account, post = stored_post(world.uow, now, state=PostState.DRAFT, due_in=None)
    with world.uow() as uow:
        stored = uow.posts.get(post.id, for_update=True)
        assert stored is not None
        stored.queue_now(now)
        assert uow.posts.save(stored, stored.version)  # no commit
    assert world.outbox() == []
