"""The publishing queue: the same claims, guards and settlements from memory and SQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import text

from post_management.adapters.db.engine import make_engine
from post_management.domain.account import AccountState
from post_management.domain.post import PostState, Priority
from post_management.domain.publishing import LEASE_EXPIRED, Claim, Settlement
from post_management.domain.publishing.failure_streak import MAX_CONSECUTIVE_FAILURES
from post_management.ports.publishing import XPostIdTaken
from tests.contract.builders import a_post, an_account, store, stored_post
from tests.contract.conftest import World

LEASE = timedelta(seconds=90)


def published(claim: Claim, x_post_id: str) -> Settlement:
    return Settlement(
        PostState.PUBLISHED, "published", x_post_id=x_post_id, published_at=claim.now()
    )


def unknown(cause: str = "timeout", reconcile_in: timedelta = timedelta(seconds=30)) -> Settlement:
    return Settlement(
        PostState.PUBLISHING, "unknown", "no answer", reconcile_in=reconcile_in, unknown_cause=cause
    )


def test_claim_due_takes_each_accounts_head_in_priority_then_due_order(world: World) -> None:
    now = world.time.now()
    a, b, c = an_account(now), an_account(now), an_account(now)
    a_low = a_post(a, now, due_in=timedelta(minutes=-9), priority=Priority.LOW)
    a_urgent = a_post(a, now, due_in=timedelta(minutes=-1), priority=Priority.URGENT)
    b_old = a_post(b, now, due_in=timedelta(minutes=-5))
    b_newer = a_post(b, now, due_in=timedelta(minutes=-2))
    c_high = a_post(c, now, due_in=timedelta(minutes=-3), priority=Priority.HIGH)
    c_later = a_post(c, now, due_in=timedelta(hours=1), priority=Priority.URGENT)
    store(world.uow, a, b, c, a_low, a_urgent, b_old, b_newer, c_high, c_later)

    first = world.queue.claim_due(2, LEASE)
    assert [x.post_id for x in first] == [a_urgent.id, c_high.id]
    claim = first[0]
    assert (claim.attempt_number, claim.account_id, claim.x_user_id) == (1, a.id, a.x_user_id)
    assert claim.credentials == a.credentials
    assert claim.claimed_at is not None and claim.unknown_cause == ""
    # One post in flight per account: only b is free now.
    assert [x.post_id for x in world.queue.claim_due(10, LEASE)] == [b_old.id]
    assert world.queue.claim_due(10, LEASE) == []
    with world.uow() as uow:
        stored = uow.posts.get(a_urgent.id)
    assert stored is not None
    assert (stored.state, stored.attempt_count, stored.version) == (PostState.PUBLISHING, 1, 2)


def test_a_claim_reaches_past_one_accounts_backlog_at_the_queue_front(world: World) -> None:
    """More due posts of one publishing account than a claim reads at the queue's
    front (its window is a few times the claim, at least 100 posts) still leave the
    accounts behind them claimable, in order."""
    now = world.time.now()
    busy, b, c = an_account(now), an_account(now), an_account(now)
    backlog = [a_post(busy, now, due_in=timedelta(minutes=-30, seconds=i)) for i in range(150)]
    b_post = a_post(b, now, due_in=timedelta(minutes=-2))
    c_post = a_post(c, now, due_in=timedelta(minutes=-1))
    store(world.uow, busy, b, c, *backlog, b_post, c_post)

    assert [x.post_id for x in world.queue.claim_due(1, LEASE)] == [backlog[0].id]
    assert [x.post_id for x in world.queue.claim_due(1, LEASE)] == [b_post.id]
    assert [x.post_id for x in world.queue.claim_due(5, LEASE)] == [c_post.id]
    assert world.queue.claim_due(5, LEASE) == []


@pytest.mark.parametrize("world", ["postgres"], indirect=True)
def test_a_claim_goes_on_past_a_front_that_another_dispatcher_holds(
    world: World, machine_database: str
) -> None:
    """Due posts another dispatcher holds locked (SKIP LOCKED is PostgreSQL's) fill
    the whole window a claim reads at the queue's front: the claim goes on past it."""
    now = world.time.now()
    accounts = [an_account(now) for _ in range(101)]
    held = [
        a_post(account, now, due_in=timedelta(minutes=-10, seconds=i))
        for i, account in enumerate(accounts[:100])
    ]
    free = a_post(accounts[100], now, due_in=timedelta(minutes=-1))
    store(world.uow, *accounts, *held, free)
    other = make_engine(machine_database)
    try:
        with other.begin() as dispatcher:
            dispatcher.execute(
                text("SELECT id FROM posts WHERE id = ANY(:ids) FOR UPDATE"),
                {"ids": [post.id for post in held]},
            )
            assert [c.post_id for c in world.queue.claim_due(1, LEASE)] == [free.id]
    finally:
        other.dispose()


def test_paused_rate_limited_and_budget_held_accounts_wait(world: World) -> None:
    now = world.time.now()
    paused = an_account(now, state=AccountState.PAUSED)
    free = an_account(now)
    store(world.uow, paused, free, a_post(paused, now), a_post(free, now))
    claims = world.queue.claim_due(10, LEASE)
    assert [c.account_id for c in claims] == [free.id]
    month = claims[0].now().strftime("%Y-%m")
    assert world.queue.settle(
        claims[0],
        Settlement(
            PostState.SCHEDULED,
            "rate_limited",
            account_rate_limited_until=now + timedelta(minutes=10),
            refund_attempt=True,
        ),
    )
    assert world.queue.claim_due(10, LEASE) == []
    world.time.advance(timedelta(minutes=11))
    again = world.queue.claim_due(10, LEASE)
    assert [c.account_id for c in again] == [free.id]
    assert again[0].attempt_number == 1  # the rate limit refunded the attempt
    assert world.queue.settle(
        again[0], Settlement(PostState.SCHEDULED, "budget", account_budget_month=month)
    )
    assert world.queue.claim_due(10, LEASE) == []
    post = a_post(free, world.time.now())
    store(world.uow, post)
    assert world.queue.claim_post(post.id, LEASE) is None


def test_claim_post_only_when_scheduled_due_and_the_account_is_free(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    later = a_post(account, now, due_in=timedelta(hours=1))
    due = a_post(account, now)
    other = a_post(account, now, due_in=timedelta(minutes=-1))
    store(world.uow, account, later, due, other)
    assert world.queue.claim_post(later.id, LEASE) is None
    assert world.queue.claim_post(uuid.uuid4(), LEASE) is None
    claim = world.queue.claim_post(due.id, LEASE)
    assert claim is not None and claim.post_id == due.id
    assert world.queue.claim_post(due.id, LEASE) is None


def test_a_settlement_lands_only_for_the_holder(world: World) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now)
    (claim,) = world.queue.claim_due(1, LEASE)
    stranger = Claim(**{**claim.__dict__, "holder": uuid.uuid4()})
    assert not world.queue.settle(stranger, published(claim, "111"))
    assert not world.queue.renew(stranger, LEASE)
    assert not world.queue.sending(stranger, LEASE)
    assert world.queue.sending(claim, LEASE, ["m1"])
    assert world.queue.settle(claim, published(claim, "111"))
    assert not world.queue.settle(claim, published(claim, "111"))
    with world.uow() as uow:
        stored = uow.posts.get(post.id)
    assert stored is not None
    assert (stored.state, stored.x_post_id, stored.version) == (PostState.PUBLISHED, "111", 3)
    assert world.queue.stored_x_post_ids(account.id, ["111", "222"]) == {"111"}
    assert world.audit(post.id) == [
        (
            "system:publisher",
            "post.published",
            {"state": "PUBLISHED", "attempt": 1, "x_post_id": "111"},
        )
    ]
    assert world.queue.stored_x_post_ids(account.id, []) == set()


def test_an_expired_lease_goes_to_the_reconciler_with_a_new_holder(world: World) -> None:
    now = world.time.now()
    _account, post = stored_post(world.uow, now)
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.sending(claim, LEASE, ["m1", "m2"])
    assert world.queue.claim_for_reconcile(10, LEASE) == []
    world.time.advance(LEASE + timedelta(seconds=1))
    (taken,) = world.queue.claim_for_reconcile(10, LEASE)
    assert taken.post_id == post.id and taken.holder != claim.holder
    assert taken.unknown_cause == LEASE_EXPIRED
    assert taken.sent_at is not None and taken.sent_media_ids == ("m1", "m2")
    assert taken.first_sent_at == taken.sent_at
    assert taken.known_x_post_id == ""
    # The old holder lost everything; the new one holds.
    assert not world.queue.settle(claim, published(claim, "9"))
    assert world.queue.claim_for_reconcile(10, LEASE) == []
    assert world.queue.renew(taken, LEASE)


def test_a_reconcile_claim_tells_when_the_attempt_in_doubt_gave_up(world: World) -> None:
    now = world.time.now()
    stored_post(world.uow, now)
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.sending(claim, LEASE)
    # The call took 40 s before its caller gave up without an answer.
    world.time.advance(timedelta(seconds=40))
    assert world.queue.settle(claim, unknown("timeout", timedelta(seconds=30)))
    world.time.advance(timedelta(seconds=31))
    (taken,) = world.queue.claim_for_reconcile(10, LEASE)
    assert taken.sent_at is not None and taken.gave_up_at is not None
    gave_up_after = taken.gave_up_at - taken.sent_at
    assert timedelta(seconds=40) <= gave_up_after < timedelta(seconds=45)
    # A holder that never came back gave up nothing.
    stored_post(world.uow, world.time.now())
    (lost,) = world.queue.claim_due(1, LEASE)
    assert world.queue.sending(lost, LEASE)
    world.time.advance(LEASE + timedelta(seconds=1))
    # (The first post's reconciler lost its lease too.)
    expired = {c.post_id: c for c in world.queue.claim_for_reconcile(10, LEASE)}[lost.post_id]
    assert expired.sent_at is not None and expired.gave_up_at is None


def test_an_unknown_outcome_waits_for_its_reconcile_time(world: World) -> None:
    now = world.time.now()
    _account, post = stored_post(world.uow, now)
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.settle(claim, unknown("duplicate", timedelta(seconds=30)))
    # Settled PUBLISHING: the account stays blocked, and nobody holds the lease early.
    assert world.queue.claim_due(10, LEASE) == []
    assert world.queue.claim_for_reconcile(10, LEASE) == []
    world.time.advance(timedelta(seconds=31))
    (taken,) = world.queue.claim_for_reconcile(10, LEASE)
    assert taken.unknown_cause == "duplicate" and taken.sent_at is None
    # Looking again: not before `not_before`, with the reason as the post's last error.
    at = world.time.now() + timedelta(minutes=5)
    assert world.queue.look_again(taken, timedelta(seconds=10), not_before=at, reason="why")
    world.time.advance(timedelta(minutes=4))
    assert world.queue.claim_for_reconcile(10, LEASE) == []
    world.time.advance(timedelta(minutes=2))
    (again,) = world.queue.claim_for_reconcile(10, LEASE)
    assert not world.queue.look_again(taken, timedelta(seconds=1))
    with world.uow() as uow:
        stored = uow.posts.get(post.id)
    assert stored is not None and stored.last_error == "why"
    retry = Settlement(PostState.SCHEDULED, "retry", "not on X", due_in=timedelta(minutes=1))
    assert world.queue.settle(again, retry)
    assert world.queue.claim_due(10, LEASE) == []
    world.time.advance(timedelta(minutes=1, seconds=1))
    (second,) = world.queue.claim_due(10, LEASE)
    assert second.attempt_number == 2 and second.unknown_cause == ""


def test_thread_segments_record_in_order_and_an_answer_is_kept_for_the_next_holder(
    world: World,
) -> None:
    now = world.time.now()
    _account, post = stored_post(world.uow, now, thread=["two", "three"])
    (claim,) = world.queue.claim_due(1, LEASE)
    assert claim.segments == (post.text, "two", "three")
    assert not world.queue.record_segment(claim, 1, "501", LEASE)  # out of order
    assert world.queue.record_segment(claim, 0, "500", LEASE)
    assert not world.queue.record_segment(claim, 0, "500", LEASE)  # replayed
    world.time.advance(LEASE + timedelta(seconds=1))
    (taken,) = world.queue.claim_for_reconcile(1, LEASE)
    assert taken.segment_x_post_ids == ("500",)
    # The old holder's answer for segment 1 arrives late: kept, not recorded.
    assert not world.queue.record_segment(claim, 1, "501", LEASE)
    world.queue.record_answer(claim, 1, "501")
    world.queue.record_answer(claim, 1, "501")
    assert world.queue.look_again(taken, timedelta(0))
    (again,) = world.queue.claim_for_reconcile(1, LEASE)
    assert again.known_x_post_id == "501"
    assert world.queue.record_segment(again, 1, "501", LEASE)
    assert world.queue.record_segment(again, 2, "502", LEASE)
    assert world.queue.settle(again, published(again, "500"))
    with world.uow() as uow:
        stored = uow.posts.get(post.id)
    assert stored is not None and stored.segment_x_post_ids == ["500", "501", "502"]


def test_an_x_id_of_another_post_is_refused_and_nothing_lands(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    first, second = a_post(account, now, due_in=timedelta(minutes=-1)), a_post(account, now)
    store(world.uow, account, first, second)
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.settle(claim, published(claim, "700"))
    (other,) = world.queue.claim_due(1, LEASE)
    with pytest.raises(XPostIdTaken):
        world.queue.settle(other, published(other, "700"))
    with world.uow() as uow:
        stored = uow.posts.get(second.id)
    assert stored is not None and stored.state is PostState.PUBLISHING
    assert world.queue.settle(other, published(other, "701"))


def test_consecutive_final_failures_pause_the_account_once(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    posts = [a_post(account, now, due_in=timedelta(seconds=-i)) for i in range(6)]
    store(world.uow, account, *posts)
    failed = Settlement(PostState.FAILED, "failed", "refused")
    settled = 0
    while claims := world.queue.claim_due(1, LEASE):
        assert world.queue.settle(claims[0], failed)
        settled += 1
    with world.uow() as uow:
        stored = uow.accounts.get(account.id)
    assert stored is not None and stored.state is AccountState.PAUSED
    assert 1 < settled < len(posts)
    (paused,) = world.audit(account.id)
    assert paused[:2] == ("system:publisher", "account.paused")
    assert paused[2]["state"] == "PAUSED" and paused[2]["reason"]
    failed_entry = world.audit(posts[-1].id)
    assert [(a, b, c["last_error"]) for a, b, c in failed_entry] == [
        ("system:publisher", "post.failed", "refused")
    ]


def _settle_next(world: World, settlement: Settlement) -> None:
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.settle(claim, settlement)


def _account_state(world: World, account_id: uuid.UUID) -> AccountState:
    with world.uow() as uow:
        stored = uow.accounts.get(account_id)
    assert stored is not None
    return stored.state


def test_a_published_post_restarts_the_failure_count(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    posts = [a_post(account, now, due_in=timedelta(seconds=-20 + i)) for i in range(10)]
    store(world.uow, account, *posts)
    failed = Settlement(PostState.FAILED, "failed", "refused")
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        _settle_next(world, failed)
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.settle(claim, published(claim, "900"))
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        _settle_next(world, failed)
    assert _account_state(world, account.id) is AccountState.ACTIVE
    assert world.audit(account.id) == []
    _settle_next(world, failed)
    assert _account_state(world, account.id) is AccountState.PAUSED
    assert [entry[:2] for entry in world.audit(account.id)] == [
        ("system:publisher", "account.paused")
    ]


def test_a_streak_ending_in_an_x_suspension_does_not_pause_the_account(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    posts = [a_post(account, now, due_in=timedelta(seconds=-9 + i)) for i in range(6)]
    store(world.uow, account, *posts)
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        _settle_next(world, Settlement(PostState.FAILED, "failed", "refused"))
    unknown_and_revoked = Settlement(
        PostState.DEAD_LETTERED,
        "dead_lettered",
        "outcome on X unknown",
        account_state=AccountState.SUSPENDED,
    )
    _settle_next(world, unknown_and_revoked)
    assert _account_state(world, account.id) is AccountState.SUSPENDED
    assert world.audit(account.id) == [
        (
            "system:publisher",
            "account.suspended",
            {"state": "SUSPENDED", "reason": "outcome on X unknown"},
        )
    ]


def test_retries_and_unknown_outcomes_are_not_audited_an_x_suspension_is(world: World) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now)
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.settle(claim, unknown())
    world.time.advance(timedelta(seconds=31))
    (taken,) = world.queue.claim_for_reconcile(1, LEASE)
    retry = Settlement(PostState.SCHEDULED, "retry", "x", due_in=timedelta(0))
    assert world.queue.settle(taken, retry)
    assert world.audit(post.id) == []
    (again,) = world.queue.claim_due(1, LEASE)
    suspended = Settlement(
        PostState.SCHEDULED,
        "suspended",
        "account suspended by X",
        refund_attempt=True,
        account_state=AccountState.SUSPENDED,
    )
    assert world.queue.settle(again, suspended)
    assert world.audit(account.id) == [
        (
            "system:publisher",
            "account.suspended",
            {"state": "SUSPENDED", "reason": "account suspended by X"},
        )
    ]
    assert world.queue.claim_due(1, LEASE) == []


def test_x_ids_outlive_their_post_but_not_their_account(world: World) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now)
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.settle(claim, published(claim, "800"))
    with world.uow() as uow:
        assert uow.posts.delete(post.id, 3)
        uow.commit()
    assert world.queue.stored_x_post_ids(account.id, ["800"]) == {"800"}
    with world.uow() as uow:
        assert uow.accounts.delete(account.id, 1)
        uow.commit()
    assert world.queue.stored_x_post_ids(account.id, ["800"]) == set()


def test_leases_only_move_forward_and_a_renewal_keeps_the_post(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    store(world.uow, account, a_post(account, now))
    (claim,) = world.queue.claim_due(1, LEASE)
    assert world.queue.renew(claim, timedelta(seconds=10))  # shorter: the lease stays
    world.time.advance(timedelta(seconds=60))
    assert world.queue.claim_for_reconcile(1, LEASE) == []
    assert world.queue.renew(claim, LEASE)  # now + 90 s
    world.time.advance(timedelta(seconds=60))
    assert world.queue.claim_for_reconcile(1, LEASE) == []
    world.time.advance(timedelta(seconds=31))
    assert len(world.queue.claim_for_reconcile(1, LEASE)) == 1


def test_concurrent_claims_never_share_a_post_or_an_account(world: World) -> None:
    now = world.time.now()
    accounts = [an_account(now) for _ in range(8)]
    posts = [a_post(a, now, due_in=timedelta(seconds=-i)) for a in accounts for i in range(3)]
    store(world.uow, *accounts, *posts)
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: world.queue.claim_due(3, LEASE), range(8)))
    # Whatever a claim skipped as locked by another is claimed by that other, or later.
    claims = [claim for batch in [*batches, world.queue.claim_due(10, LEASE)] for claim in batch]
    assert len({c.post_id for c in claims}) == len(claims)
    assert sorted(c.account_id for c in claims) == sorted(a.id for a in accounts)


def test_many_sends_and_settlements_each_hold_only_for_their_own_holder(world: World) -> None:
    """The batched forms the dispatcher uses: one commit for many posts, each post's
    send and settlement still guarded by its own holder token."""
    now = world.time.now()
    accounts = [an_account(now) for _ in range(3)]
    posts = [a_post(account, now) for account in accounts]
    store(world.uow, *accounts, *posts)
    claims = {claim.post_id: claim for claim in world.queue.claim_due(3, LEASE)}
    first, second, third = (claims[post.id] for post in posts)
    stranger = Claim(**{**second.__dict__, "holder": uuid.uuid4()})

    sent = world.queue.sending_many([(first, ["m1"]), (stranger, None), (third, None)], LEASE)
    assert sent == [True, False, True]
    settled = world.queue.settle_many(
        [(first, published(first, "801")), (stranger, published(second, "802")), (third, unknown())]
    )
    assert settled == [True, False, True]

    with world.uow() as uow:
        stored = [uow.posts.get(post.id) for post in posts]
    assert [(p.state, p.x_post_id) for p in stored if p is not None] == [
        (PostState.PUBLISHED, "801"),
        (PostState.PUBLISHING, ""),
        (PostState.PUBLISHING, ""),
    ]
    assert world.queue.stored_x_post_ids(accounts[1].id, ["802"]) == set()
    world.time.advance(LEASE + timedelta(seconds=1))
    again = {c.post_id: c for c in world.queue.claim_for_reconcile(10, LEASE)}
    # The lost holder's send was never noted: its post never reached X.
    assert again[second.post_id].sent_at is None
    assert again[third.post_id].sent_at is not None


def test_a_batched_settlement_that_fails_fails_alone(world: World) -> None:
    now = world.time.now()
    busy, other = an_account(now), an_account(now)
    earlier, later = a_post(busy, now, due_in=timedelta(minutes=-1)), a_post(busy, now)
    theirs = a_post(other, now)
    store(world.uow, busy, other, earlier, later, theirs)
    claims = {claim.post_id: claim for claim in world.queue.claim_due(10, LEASE)}
    first, held = claims[earlier.id], claims[theirs.id]
    assert world.queue.settle(first, published(first, "700"))
    (taken,) = world.queue.claim_due(10, LEASE)
    assert taken.post_id == later.id

    # X's id of another post of the account: that settlement fails, the other lands.
    results = world.queue.settle_many(
        [(taken, published(taken, "700")), (held, published(held, "900"))]
    )
    assert isinstance(results[0], XPostIdTaken)
    assert results[1] is True
    with world.uow() as uow:
        refused, applied = uow.posts.get(later.id), uow.posts.get(theirs.id)
    assert refused is not None and refused.state is PostState.PUBLISHING
    assert applied is not None
    assert (applied.state, applied.x_post_id) == (PostState.PUBLISHED, "900")
