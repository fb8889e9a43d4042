"""The background jobs' privacy store (ports/privacy.py `PrivacyStore`): the same
removals on X and the same retention purges from the memory twin and from PostgreSQL,
on the rows the erasure and the units of work share with them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from post_management.domain.account import Account
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post, PostState
from post_management.domain.x_spend import CallKind, Metered, Outcome, Purpose
from post_management.ports.analytics import SOURCE_POLL
from post_management.ports.privacy import MAX_REMOVAL_ATTEMPTS, PendingRemoval, RetentionCutoffs
from post_management.ports.x_spend import SpendScope
from tests.contract.builders import a_post, an_account, published, snap, store
from tests.contract.conftest import World, read

TICK = timedelta(microseconds=1)


def erase_with_removals(world: World, account: Account) -> str:
    """Erases the account's user, queueing her published posts' removals on X; her
    pseudonym."""
    pseudonym = world.pseudonyms.of(account.user_id)

    async def erased() -> None:
        async with world.async_uow() as factory:
            await world.privacy(factory).erase(
                account.user_id, pseudonym, "admin:ops", True, world.time.now()
            )

    asyncio.run(erased())
    return pseudonym


def queued(world: World, *posts: list[str]) -> tuple[Account, str]:
    """Alice's published posts, each with its segments' X ids (by default a thread of
    two and a post of one), erased: her account and pseudonym."""
    now = world.time.now()
    account = an_account(now)
    segments = posts or (["101", "102"], ["103"])
    store(
        world.uow,
        account,
        *[published(account, now, x_post_id=ids[0], segment_x_post_ids=ids) for ids in segments],
    )
    return account, erase_with_removals(world, account)


def deletion(at: datetime, user_hash: str, outcome: Outcome = Outcome.CHARGED) -> Metered:
    return Metered(at, CallKind.POST_DELETE, Purpose.ERASURE, user_hash, None, outcome=outcome)


def spend(world: World, user_hash: str, at: datetime) -> list[tuple[str, str, str, int]]:
    """The user's spend rows around `at`: (kind, purpose, outcome, calls)."""
    with world.uow() as work:
        rows = work.spend.rows(
            SpendScope(user_id=user_hash), at - timedelta(days=1), at + timedelta(days=1)
        )
    return [(row.kind, row.purpose, row.outcome, row.calls) for row in rows]


def pending(world: World) -> list[PendingRemoval]:
    return world.privacy_jobs.pending_removals(100)


def test_the_erasures_removals_are_pending_lowest_id_first_with_their_tokens(
    world: World,
) -> None:
    account, hashed = queued(world)

    found = pending(world)

    assert sorted(r.x_post_id for r in found) == ["101", "102", "103"]
    assert [r.id for r in found] == sorted({r.id for r in found})
    assert {(r.credentials, r.attempts, r.user_hash) for r in found} == {
        (account.credentials, 0, hashed)
    }
    # A limit takes the lowest ids.
    assert world.privacy_jobs.pending_removals(2) == found[:2]
    assert world.privacy_jobs.pending_removals(0) == []


def test_a_final_finish_is_done_drops_its_tokens_and_records_its_call(world: World) -> None:
    _, hashed = queued(world)
    first, second, third = pending(world)
    now = world.time.now()

    world.privacy_jobs.finish_removal(first.id, now, "", final=True, spent=[deletion(now, hashed)])

    assert pending(world) == [second, third]
    assert sorted(world.removals()) == sorted(
        [
            (hashed, first.x_post_id, False),
            (hashed, second.x_post_id, True),
            (hashed, third.x_post_id, True),
        ]
    )
    assert spend(world, hashed, now) == [("post_delete", "erasure", "charged", 1)]


def test_a_failed_attempt_is_counted_and_retried_until_the_limit_gives_it_up(
    world: World,
) -> None:
    _, hashed = queued(world, ["101"])
    (removal,) = pending(world)
    now = world.time.now()

    for attempt in range(1, MAX_REMOVAL_ATTEMPTS):
        refused = deletion(now, hashed, Outcome.REFUSED)
        world.privacy_jobs.finish_removal(removal.id, now, "X answered 503", False, [refused])
        assert pending(world) == [
            PendingRemoval(removal.id, removal.x_post_id, removal.credentials, attempt, hashed)
        ]
        assert world.removals() == [(hashed, removal.x_post_id, True)]

    world.privacy_jobs.finish_removal(removal.id, now, "X answered 503", final=False)

    assert pending(world) == []
    assert world.removals() == [(hashed, removal.x_post_id, False)]
    # Each refused call was recorded with its attempt; the last had none to record.
    assert spend(world, hashed, now) == [
        ("post_delete", "erasure", "refused", MAX_REMOVAL_ATTEMPTS - 1)
    ]


def test_a_call_recorded_on_its_own_leaves_the_removal_as_it_was(world: World) -> None:
    _, hashed = queued(world, ["101"])
    before = pending(world)
    now = world.time.now()

    world.privacy_jobs.record_spent([deletion(now, hashed, Outcome.REFUSED)])

    assert pending(world) == before
    assert spend(world, hashed, now) == [("post_delete", "erasure", "refused", 1)]
    world.privacy_jobs.record_spent([])
    assert spend(world, hashed, now) == [("post_delete", "erasure", "refused", 1)]


def series(world: World, post_id: uuid.UUID) -> list[datetime]:
    return [s.collected_at for s in read(world, lambda w: w.analytics.series(post_id))]


class Kept:
    """Rows on either side of each cutoff, and a user whose finished removals have
    their done times on either side too."""

    def __init__(self, world: World) -> None:
        now = self.now = world.time.now()
        self.cutoffs = RetentionCutoffs(
            metrics_before=now - timedelta(days=400),
            dead_letters_before=now - timedelta(days=90),
            removals_before=now - timedelta(days=30),
            unattached_media_before=now - timedelta(days=7),
            published_media_before=now - timedelta(days=30),
        )
        cut = self.cutoffs
        # Removals: one done just before its cutoff, one at it, one still pending.
        _, hashed = queued(world)
        first, second, third = pending(world)
        world.privacy_jobs.finish_removal(first.id, cut.removals_before - TICK, "", True)
        world.privacy_jobs.finish_removal(second.id, cut.removals_before, "", True)
        self.removals = {
            "gone": (hashed, first.x_post_id, False),
            "kept": [(hashed, second.x_post_id, False), (hashed, third.x_post_id, True)],
        }

        bob = self.account = an_account(now, "bob")
        media = self.media = {
            name: Media(uuid.uuid4(), "bob", "image/png", MediaKind.IMAGE, 3, created_at)
            for name, created_at in {
                "unattached, old": cut.unattached_media_before - TICK,
                "unattached, at the cutoff": cut.unattached_media_before,
                "a dead letter's, old": now - timedelta(days=365),
                "a scheduled post's, old": now - timedelta(days=365),
                "published before": now - timedelta(days=365),
                "published at the cutoff": now - timedelta(days=365),
                "published before, and scheduled": now - timedelta(days=365),
            }.items()
        }

        def attaching(name: str, post: Post) -> Post:
            post.attachment_ids = [media[name].id]
            return post

        old, at_cutoff = cut.published_media_before - TICK, cut.published_media_before
        self.posts = {
            "measured": published(bob, now),
            "dead letter, old": attaching(
                "a dead letter's, old",
                a_post(
                    bob,
                    now,
                    state=PostState.DEAD_LETTERED,
                    updated_at=cut.dead_letters_before - TICK,
                ),
            ),
            "dead letter, at the cutoff": a_post(
                bob, now, state=PostState.DEAD_LETTERED, updated_at=cut.dead_letters_before
            ),
            "failed, old": a_post(
                bob, now, state=PostState.FAILED, updated_at=cut.dead_letters_before - TICK
            ),
            "scheduled": attaching(
                "a scheduled post's, old", a_post(bob, now, due_in=timedelta(days=1))
            ),
            "published before": attaching("published before", published(bob, old)),
            "published at the cutoff": attaching(
                "published at the cutoff", published(bob, at_cutoff)
            ),
            "published before, too": attaching(
                "published before, and scheduled", published(bob, old)
            ),
            "scheduled, too": attaching(
                "published before, and scheduled", a_post(bob, now, due_in=timedelta(days=2))
            ),
        }
        store(world.uow, bob, *self.posts.values())
        measured = self.posts["measured"].id
        dead = self.posts["dead letter, old"].id
        self.snapshots = [cut.metrics_before - TICK, cut.metrics_before, now]
        with world.uow() as work:
            for item in media.values():
                work.media.add(item, b"png")
            for at in self.snapshots:
                work.analytics.add_snapshot(measured, snap(at), SOURCE_POLL)
            # A dead letter's own fresh snapshot goes with it, not counted as a snapshot.
            work.analytics.add_snapshot(dead, snap(now), SOURCE_POLL)
            work.commit()
        # An upload to X goes with its media.
        for number, item in enumerate(media.values()):
            world.uploads.record(item.id, bob.id, f"x-media-{number}", now)


def test_retention_purges_what_is_older_than_each_cutoff_and_keeps_the_rest(
    world: World,
) -> None:
    rows = Kept(world)

    purged = world.privacy_jobs.purge(rows.cutoffs)

    assert purged == {
        "metric_snapshots": 1,
        "dead_letters": 1,
        "x_removals": 1,
        "unattached_media": 2,
        "published_media": 1,
    }
    assert series(world, rows.posts["measured"].id) == rows.snapshots[1:]
    assert series(world, rows.posts["dead letter, old"].id) == []
    with world.uow() as work:
        posts_left = {name for name, post in rows.posts.items() if work.posts.get(post.id)}
        media_left = {name for name, item in rows.media.items() if work.media.get(item.id)}
    assert posts_left == set(rows.posts) - {"dead letter, old"}
    assert media_left == {
        "unattached, at the cutoff",
        "a scheduled post's, old",
        "published at the cutoff",
        "published before, and scheduled",
    }
    uploads = world.uploads.uploaded(
        rows.account.id, [item.id for item in rows.media.values()], rows.now - timedelta(days=1)
    )
    assert set(uploads) == {rows.media[name].id for name in media_left}
    assert sorted(world.removals()) == sorted(rows.removals["kept"])
    assert len(pending(world)) == 1

    # Nothing more is due.
    assert set(world.privacy_jobs.purge(rows.cutoffs).values()) == {0}
