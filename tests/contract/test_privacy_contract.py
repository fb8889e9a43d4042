"""The privacy RPCs' store (ports/privacy.py `AsyncPrivacyStore`): the same audit
pages, metrics and erasures from the memory twin and from psycopg over PostgreSQL,
seen through the units of work that share their rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from post_management.domain.campaigns import Campaign
from post_management.domain.errors import FailedPrecondition
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import PostState
from post_management.domain.privacy import AuditRecord, MetricsRecord, erasure_resource_id
from post_management.domain.reasons import Reason
from post_management.domain.x_spend import CallKind, Metered, Purpose
from post_management.ports.analytics import SOURCE_POLL
from post_management.ports.async_unit_of_work import AsyncUnitOfWork
from post_management.ports.privacy import AsyncPrivacyStore, ErasureReport
from post_management.ports.repositories import AuditEntry, IdempotencyRecord
from post_management.ports.x_spend import SpendScope
from tests.contract.builders import a_post, an_account, published, snap, store
from tests.contract.conftest import World, read

T = TypeVar("T")


def run(world: World, scenario: Callable[[AsyncPrivacyStore], Awaitable[T]]) -> T:
    """`scenario` on the world's privacy store, on a loop of its own."""

    async def opened() -> T:
        async with world.async_uow() as factory:
            return await scenario(world.privacy(factory))

    return asyncio.run(opened())


def record(world: World, *entries: AuditEntry) -> None:
    """Each entry in a transaction of its own, in order."""
    for entry in entries:
        with world.uow() as work:
            work.audit.record(entry)
            work.commit()


def entry(user_id: str, action: str, actor: str = "", **documents: Any) -> AuditEntry:
    return AuditEntry(
        actor or f"user:{user_id}",
        action,
        "post",
        uuid.uuid4(),
        user_id,
        documents.get("before"),
        documents.get("after"),
        request_id=f"req-{action}",
    )


def trail(world: World, user_id: str) -> list[AuditRecord]:
    """The user's whole trail, newest first."""
    return run(world, lambda privacy: privacy.audit_events(user_id, None, 1000))


def test_a_users_trail_pages_newest_first_by_id_and_holds_no_one_elses(world: World) -> None:
    alice = [
        entry("alice", f"post.step{n}", before={"text": f"v{n}"}, after={"text": f"v{n + 1}"})
        for n in range(5)
    ]
    bob = entry("bob", "post.create", after={"text": "bob's"})
    record(world, alice[0], alice[1], bob, alice[2], alice[3], alice[4])

    async def pages(privacy: AsyncPrivacyStore) -> list[list[AuditRecord]]:
        found: list[list[AuditRecord]] = []
        before: int | None = None
        for _ in range(5):  # at most: a cursor that does not move must not loop
            page = await privacy.audit_events("alice", before, 2)
            if not page:
                break
            found.append(page)
            before = page[-1].id
        return found

    found = run(world, pages)
    assert [[r.action for r in page] for page in found] == [
        ["post.step4", "post.step3"],
        ["post.step2", "post.step1"],
        ["post.step0"],
    ]
    ids = [r.id for page in found for r in page]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    newest = found[0][0]
    assert (newest.actor, newest.resource_type, newest.resource_id) == (
        "user:alice",
        "post",
        alice[4].resource_id,
    )
    assert (newest.user_id, newest.request_id) == ("alice", "req-post.step4")
    assert (newest.before, newest.after) == ({"text": "v4"}, {"text": "v5"})
    assert isinstance(newest.occurred_at, datetime)
    # A limit caps a page; a cursor below every row finds none.
    assert len(run(world, lambda privacy: privacy.audit_events("alice", None, 1))) == 1
    assert run(world, lambda privacy: privacy.audit_events("alice", min(ids), 10)) == []
    assert [r.action for r in trail(world, "bob")] == ["post.create"]
    assert trail(world, "nobody") == []


def test_metrics_are_the_users_snapshots_by_post_then_collection_time(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now, "bob")
    first, second = published(account, now), published(account, now)
    bobs = published(other, now)
    store(world.uow, account, other, first, second, bobs)
    with world.uow() as work:
        for post, hours in ((first, 2), (second, 1), (first, 1), (bobs, 1), (second, 3)):
            at = now - timedelta(hours=hours)
            work.analytics.add_snapshot(post.id, snap(at, impressions=hours * 10), SOURCE_POLL)
        work.commit()

    metrics = run(world, lambda privacy: privacy.metrics("alice"))

    expected = sorted(
        [
            (first.id, now - timedelta(hours=2), 20),
            (first.id, now - timedelta(hours=1), 10),
            (second.id, now - timedelta(hours=1), 10),
            (second.id, now - timedelta(hours=3), 30),
        ],
        key=lambda row: (row[0], row[1]),
    )
    assert [(m.post_id, m.collected_at, m.impressions) for m in metrics] == expected
    assert metrics[0] == MetricsRecord(
        impressions=expected[0][2],
        likes=5,
        reposts=0,
        replies=0,
        quotes=0,
        bookmarks=0,
        post_id=expected[0][0],
        collected_at=expected[0][1],
    )
    assert run(world, lambda privacy: privacy.metrics("nobody")) == []


class Alice:
    """Everything a user can own, and a neighbour's rows that must stay."""

    def __init__(self, world: World) -> None:
        now = self.now = world.time.now()
        self.account = an_account(now)
        self.thread = published(
            self.account, now, x_post_id="101", segment_x_post_ids=["101", "102"]
        )
        self.draft = a_post(self.account, now, state=PostState.DRAFT, due_in=None)
        self.bob = an_account(now, "bob")
        self.bobs_post = published(self.bob, now)
        store(world.uow, self.account, self.bob, self.thread, self.draft, self.bobs_post)
        self.media = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, 3, now)
        self.campaign = Campaign(uuid.uuid4(), "alice", "Summer", now, now)
        self.bobs_campaign = Campaign(uuid.uuid4(), "bob", "Winter", now, now)
        self.keys = {
            ("CreatePost:alice", "k1"): self.draft.id,
            # Another scope's key for one of her rows goes too.
            ("Imported:crm", "k2"): self.account.id,
            ("CreateAccount:bob", "k3"): self.bob.id,
        }
        with world.uow() as work:
            work.media.add(self.media, b"png")
            work.campaigns.add(self.campaign)
            work.campaigns.add(self.bobs_campaign)
            for (scope, key), resource in self.keys.items():
                work.idempotency.put(scope, key, IdempotencyRecord("h", resource))
            work.analytics.add_snapshot(self.thread.id, snap(now), SOURCE_POLL)
            work.spend.record(
                [
                    Metered(now, CallKind.POST_CREATE, Purpose.PUBLISH, "alice", self.account.id),
                    Metered(now, CallKind.POST_CREATE, Purpose.PUBLISH, "bob", self.bob.id),
                ]
            )
            work.commit()
        record(
            world,
            entry("alice", "post.create", after={"text": "mine"}),
            entry("alice", "account.create", actor="service:crm", after={"handle": "a"}),
            entry("bob", "post.create", actor="user:alice", after={"text": "bob's"}),
        )


def spend_calls(world: World, user_id: str, now: datetime) -> int:
    with world.uow() as work:
        rows = work.spend.rows(
            SpendScope(user_id=user_id), now - timedelta(days=1), now + timedelta(days=1)
        )
    return sum(row.calls for row in rows)


def erase(world: World, user_id: str, **options: Any) -> ErasureReport:
    now = options.pop("now", world.time.now())
    pseudonym = options.pop("pseudonym", world.pseudonyms.of(user_id))
    return run(
        world,
        lambda privacy: privacy.erase(
            user_id,
            pseudonym,
            "admin:ops",
            options.pop("delete_from_x", False),
            now,
            options.pop("replaces", ()),
        ),
    )


def test_an_erasure_takes_the_users_rows_and_keeps_the_trail_without_her(
    world: World,
) -> None:
    alice = Alice(world)
    hashed = world.pseudonyms.of("alice")
    now = world.time.now()

    report = erase(world, "alice", delete_from_x=True, now=now)

    assert report == ErasureReport(
        posts_deleted=2,
        accounts_deleted=1,
        media_deleted=1,
        audit_events_pseudonymised=2,
        x_removals_queued=2,
        erased_at=now,
    )

    async def left(work: AsyncUnitOfWork) -> list[Any]:
        return [
            await work.accounts.get(alice.account.id),
            await work.posts.get(alice.thread.id),
            await work.posts.get(alice.draft.id),
            await work.media.get(alice.media.id),
            await work.campaigns.get(alice.campaign.id),
            await work.erasures.is_erased("alice"),
            await work.erasures.is_erased("bob"),
        ]

    assert read(world, left) == [None, None, None, None, None, True, False]
    with world.uow() as work:
        bob = work.accounts.get(alice.bob.id)
        assert bob is not None and work.posts.get(alice.bobs_post.id) is not None
        assert work.campaigns.get(alice.bobs_campaign.id) is not None
        kept = {key: work.idempotency.get(*key) for key in alice.keys}
    assert read(world, lambda w: w.analytics.series(alice.thread.id)) == []
    assert [key for key, found in kept.items() if found] == [("CreateAccount:bob", "k3")]
    assert world.tombstones() == {hashed}
    # Every segment of her thread is queued with its tokens.
    assert sorted(world.removals()) == [(hashed, "101", True), (hashed, "102", True)]
    assert run(world, lambda privacy: privacy.metrics("alice")) == []
    # What X cost stays, under the pseudonym.
    assert (spend_calls(world, "alice", now), spend_calls(world, hashed, now)) == (0, 1)
    assert spend_calls(world, "bob", now) == 1

    assert trail(world, "alice") == []
    erased, *pseudonymised = trail(world, hashed)
    assert (erased.actor, erased.action, erased.resource_type) == (
        "admin:ops",
        "user.erase",
        "user",
    )
    assert (erased.resource_id, erased.request_id, erased.before) == (
        erasure_resource_id(hashed),
        "",
        None,
    )
    assert erased.after == {
        "posts_deleted": 2,
        "accounts_deleted": 1,
        "media_deleted": 1,
        "audit_events_pseudonymised": 2,
        "x_removals_queued": 2,
        "erased_at": now.isoformat(),
    }
    assert [(r.actor, r.action, r.before, r.after) for r in pseudonymised] == [
        ("service:crm", "account.create", None, None),
        (f"user:{hashed}", "post.create", None, None),
    ]
    # A row of someone else's trail keeps its documents and actor (the user id only
    # is compared): erasure pseudonymises the erased user's own trail.
    assert [(r.actor, r.after) for r in trail(world, "bob")] == [("user:alice", {"text": "bob's"})]


def test_without_delete_from_x_nothing_is_queued(world: World) -> None:
    Alice(world)
    assert erase(world, "alice").x_removals_queued == 0
    assert world.removals() == []


def test_a_second_erasure_finds_nothing_more_and_records_itself_again(world: World) -> None:
    Alice(world)
    hashed = world.pseudonyms.of("alice")
    first = erase(world, "alice", delete_from_x=True)
    later = world.time.now() + timedelta(minutes=5)

    again = erase(world, "alice", delete_from_x=True, now=later)

    assert again == ErasureReport(0, 0, 0, 0, 0, later)
    assert world.tombstones() == {hashed}
    assert len(world.removals()) == 2  # queued once
    records = [r for r in trail(world, hashed) if r.action == "user.erase"]
    assert [r.after["erased_at"] if r.after else None for r in records] == [
        later.isoformat(),
        first.erased_at.isoformat(),
    ]
    assert records[1].after == {**first.__dict__, "erased_at": first.erased_at.isoformat()}


def test_an_erasure_waits_while_a_post_is_being_published_and_writes_nothing(
    world: World,
) -> None:
    now = world.time.now()
    account = an_account(now)
    flying = a_post(account, now, state=PostState.PUBLISHING)
    store(world.uow, account, flying)
    record(world, entry("alice", "post.create", after={"text": "mine"}))

    with pytest.raises(FailedPrecondition) as refused:
        erase(world, "alice", delete_from_x=True)

    assert refused.value.reason == Reason.POSTS_BEING_PUBLISHED
    assert world.tombstones() == set() and world.removals() == []
    with world.uow() as work:
        assert work.posts.get(flying.id) is not None
        assert work.accounts.get(account.id) is not None
    assert [(r.actor, r.after) for r in trail(world, "alice")] == [("user:alice", {"text": "mine"})]


def test_an_erasure_that_fails_part_way_leaves_every_row_as_it_was(world: World) -> None:
    alice = Alice(world)
    before = trail(world, "alice")
    failure = world.fail_erasure_record()  # its last write

    with pytest.raises(failure):
        erase(world, "alice", delete_from_x=True)

    assert world.tombstones() == set() and world.removals() == []
    assert trail(world, "alice") == before
    assert trail(world, world.pseudonyms.of("alice")) == []
    with world.uow() as work:
        assert work.accounts.get(alice.account.id) is not None
        assert work.posts.get(alice.thread.id) is not None
        assert work.posts.get(alice.draft.id) is not None
        assert work.media.get(alice.media.id) is not None
        assert work.campaigns.get(alice.campaign.id) is not None
        assert work.idempotency.get("CreatePost:alice", "k1") is not None
    assert len(read(world, lambda w: w.analytics.series(alice.thread.id))) == 1
    assert spend_calls(world, "alice", alice.now) == 1


def test_an_erasure_moves_a_former_pseudonyms_rows_to_the_current_one(world: World) -> None:
    Alice(world)
    former, hashed = "erased:former-form", world.pseudonyms.of("alice")
    erase(world, "alice", pseudonym=former, delete_from_x=True)
    assert world.tombstones() == {former}

    again = erase(world, "alice", replaces=[former])

    assert again.audit_events_pseudonymised == 0
    assert world.tombstones() == {hashed}
    assert sorted(world.removals()) == [(hashed, "101", True), (hashed, "102", True)]
    assert trail(world, former) == []
    moved = trail(world, hashed)
    assert [r.action for r in moved] == [
        "user.erase",
        "user.erase",
        "account.create",
        "post.create",
    ]
    # The former erasure's own row is found under the current pseudonym's resource.
    assert {r.resource_id for r in moved if r.action == "user.erase"} == {
        erasure_resource_id(hashed)
    }
    assert {r.actor for r in moved} == {"admin:ops", "service:crm", f"user:{hashed}"}
