"""The unit of work and its repositories: the same answers from memory and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from post_management.domain import events
from post_management.domain.campaigns import Campaign
from post_management.domain.content_rules import Finding, Rule, Screening
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import PostState, Priority
from post_management.domain.x_spend import CallKind, Metered, Outcome, Purpose
from post_management.ports.repositories import (
    AuditEntry,
    Cursor,
    DuplicateKey,
    IdempotencyRecord,
    PostFilter,
)
from post_management.ports.x_spend import SpendScope
from tests.contract.builders import a_post, an_account, store, stored_post
from tests.contract.conftest import World


def test_nothing_stays_without_commit_and_a_commit_stays(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    with world.uow() as uow:
        uow.accounts.add(account)  # no commit
    with world.uow() as uow:
        assert uow.accounts.get(account.id) is None
        uow.accounts.add(account)
        uow.commit()
    with world.uow() as uow:
        found = uow.accounts.get(account.id)
    assert found is not None
    assert (found.handle, found.credentials, found.version) == (
        account.handle,
        account.credentials,
        1,
    )


def test_an_error_rolls_back_and_a_later_rollback_undoes_only_the_uncommitted(
    world: World,
) -> None:
    now = world.time.now()
    first, second = an_account(now), an_account(now)
    with pytest.raises(RuntimeError), world.uow() as uow:
        uow.accounts.add(first)
        raise RuntimeError("boom")
    with world.uow() as uow:
        uow.accounts.add(second)
        uow.commit()
        uow.accounts.add(first)
        uow.rollback()
    with world.uow() as uow:
        assert uow.accounts.get(first.id) is None
        assert uow.accounts.get(second.id) is not None


def test_post_versions_guard_saves_and_deletes(world: World) -> None:
    now = world.time.now()
    _account, post = stored_post(world.uow, now, state=PostState.DRAFT, due_in=None)
    with world.uow() as uow:
        loaded = uow.posts.get(post.id)
        assert loaded is not None and loaded.version == 1
        loaded.text = "edited"
        assert uow.posts.save(loaded, expected_version=1)
        assert loaded.version == 2
        loaded.text = "stale"
        assert not uow.posts.save(loaded, expected_version=1)
        assert not uow.posts.delete(post.id, expected_version=1)
        uow.commit()
    with world.uow() as uow:
        stored = uow.posts.get(post.id)
        assert stored is not None and (stored.text, stored.version) == ("edited", 2)
        assert uow.posts.delete(post.id, expected_version=2)
        uow.commit()
    with world.uow() as uow:
        assert uow.posts.get(post.id) is None
        assert uow.posts.get(uuid.uuid4()) is None


def test_a_loaded_post_is_a_copy(world: World) -> None:
    now = world.time.now()
    _account, post = stored_post(world.uow, now)
    post.text = "changed after add"
    with world.uow() as uow:
        loaded = uow.posts.get(post.id)
        assert loaded is not None and loaded.text != "changed after add"
        loaded.thread.append("not saved")
    with world.uow() as uow:
        again = uow.posts.get(post.id)
        assert again is not None and again.thread == []


def test_a_posts_content_screening_is_kept_replaced_and_cleared(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    found = (
        Finding(Rule.HASHTAG_STUFFING, "#a #b #c #d #e #f", 0.6),
        Finding(Rule.OFFENSIVE_LANGUAGE, "word…", 0.912),
    )
    post = a_post(account, now, screening=Screening("key-1", found))
    unscreened = a_post(account, now)
    store(world.uow, account, post, unscreened)
    with world.uow() as uow:
        loaded = uow.posts.get(post.id, for_update=True)
        assert loaded is not None and loaded.screening == Screening("key-1", found)
        assert [p.screening for p in uow.posts.list(PostFilter(), None, 10)].count(None) == 1
        loaded.screening = Screening("key-2")
        assert uow.posts.save(loaded, loaded.version)
        uow.commit()
    with world.uow() as uow:
        again = uow.posts.get(post.id)
        assert again is not None and again.screening == Screening("key-2", ())
        again.screening = None
        assert uow.posts.save(again, again.version)
        uow.commit()
    with world.uow() as uow:
        cleared = uow.posts.get(post.id)
        assert cleared is not None and cleared.screening is None
        other = uow.posts.get(unscreened.id)
        assert other is not None and other.screening is None


def test_posts_list_in_keyset_pages_and_count_active(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now, user_id="bob")
    posts = [
        a_post(account, now + timedelta(seconds=i), created_at=now + timedelta(seconds=i))
        for i in range(5)
    ]
    posts[3].state = PostState.PUBLISHED
    posts[4].state = PostState.DRAFT
    store(world.uow, account, other, *posts, a_post(other, now))
    with world.uow() as uow:
        page = uow.posts.list(PostFilter(user_id="alice"), None, 2)
        assert [p.id for p in page] == [posts[0].id, posts[1].id]
        after = Cursor(page[-1].created_at, page[-1].id)
        rest = uow.posts.list(PostFilter(user_id="alice"), after, 10)
        assert [p.id for p in rest] == [p.id for p in posts[2:]]
        drafts = uow.posts.list(PostFilter(account_id=account.id, state=PostState.DRAFT), None, 9)
        assert [p.id for p in drafts] == [posts[4].id]
        assert uow.posts.count_active_for_account(account.id) == 3
        assert uow.posts.count_active_for_account(other.id) == 1


def test_a_users_post_and_its_account_in_one_locking_read(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now, user_id="bob")
    post = a_post(account, now, screening=Screening("k"))
    store(world.uow, account, other, post)
    with world.uow() as uow:
        locked = uow.accounts.lock_with_post(post.id, "alice")
        assert locked is not None
        found, read = locked
        assert (found.id, found.handle, found.credentials) == (
            account.id,
            account.handle,
            account.credentials,
        )
        assert (read.id, read.account_id, read.text, read.version, read.screening) == (
            post.id,
            account.id,
            post.text,
            1,
            Screening("k"),
        )
        # Another user's post, or none: nothing.
        assert uow.accounts.lock_with_post(post.id, "bob") is None
        assert uow.accounts.lock_with_post(uuid.uuid4(), "alice") is None


def test_accounts_unique_per_user_and_x_user(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    store(world.uow, account)
    twin = an_account(now, x_user_id=account.x_user_id)
    with pytest.raises(DuplicateKey), world.uow() as uow:
        uow.accounts.add(twin)
        uow.commit()
    # Another user may connect the same X account.
    store(world.uow, an_account(now, user_id="bob", x_user_id=account.x_user_id))
    with world.uow() as uow:
        found = uow.accounts.find_by_x_user("alice", account.x_user_id)
        assert found is not None and found.id == account.id
        assert uow.accounts.find_by_x_user("carol", account.x_user_id) is None
        assert [a.id for a in uow.accounts.list("alice", None, 10)] == [account.id]
        assert len(uow.accounts.list(None, None, 10)) == 2


def test_account_save_is_versioned_and_a_new_budget_clears_nothing_else(world: World) -> None:
    now = world.time.now()
    account = an_account(now, x_monthly_budget_micros=5_000_000)
    store(world.uow, account)
    with world.uow() as uow:
        loaded = uow.accounts.get(account.id)
        assert loaded is not None and loaded.x_budget_reached_month is None
        loaded.handle = "renamed"
        loaded.x_monthly_budget_micros = 9_000_000
        assert uow.accounts.save(loaded, 1)
        assert not uow.accounts.save(loaded, 1)
        uow.commit()
    with world.uow() as uow:
        stored = uow.accounts.get(account.id)
        assert stored is not None
        assert (stored.handle, stored.x_monthly_budget_micros, stored.version) == (
            "renamed",
            9_000_000,
            2,
        )
        assert not uow.accounts.delete(account.id, 1)
        assert uow.accounts.delete(account.id, 2)
        uow.commit()


def test_deleting_an_account_deletes_its_posts(world: World) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now)
    with world.uow() as uow:
        assert uow.accounts.delete(account.id, 1)
        uow.commit()
    with world.uow() as uow:
        assert uow.posts.get(post.id) is None


def test_idempotency_keys_are_written_once(world: World) -> None:
    record = IdempotencyRecord("hash-1", uuid.uuid4())
    with world.uow() as uow:
        assert uow.idempotency.get("CreatePost:alice", "r1") is None
        uow.idempotency.put("CreatePost:alice", "r1", record)
        uow.commit()
    with pytest.raises(DuplicateKey), world.uow() as uow:
        uow.idempotency.put("CreatePost:alice", "r1", IdempotencyRecord("hash-2", uuid.uuid4()))
        uow.commit()
    with world.uow() as uow:
        assert uow.idempotency.get("CreatePost:alice", "r1") == record
        assert uow.idempotency.get("CreatePost:bob", "r1") is None


def test_audit_and_outbox_take_their_entries_and_an_event_id_once(world: World) -> None:
    now = world.time.now()
    event = events.PostCancelled(
        post_id=uuid.uuid4(), account_id=uuid.uuid4(), user_id="alice", reason="r", occurred_at=now
    )
    with world.uow() as uow:
        uow.audit.record(
            AuditEntry("user:alice", "post.create", "post", uuid.uuid4(), "alice", None, {})
        )
        uow.outbox.add(event)
        uow.commit()
    with pytest.raises(DuplicateKey), world.uow() as uow:
        uow.outbox.add(event)
        uow.commit()


def test_schedule_queries(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    later = a_post(account, now, due_in=timedelta(hours=2), priority=Priority.HIGH)
    soon = a_post(account, now, due_in=timedelta(hours=1))
    past = a_post(account, now, due_in=timedelta(hours=-5))
    published = a_post(
        account, now, due_in=timedelta(hours=-1), state=PostState.PUBLISHED, published_at=now
    )
    cancelled = a_post(account, now, due_in=timedelta(hours=3), state=PostState.CANCELLED)
    store(world.uow, account, later, soon, past, published, cancelled)
    with world.uow() as uow:
        taken = uow.schedule.taken_times(account.id, now - timedelta(minutes=1))
        assert [t.post_id for t in taken] == [published.id, soon.id, later.id]
        assert taken[0].at == now
        excluded = uow.schedule.taken_times(account.id, now, exclude_post_id=soon.id)
        assert [t.post_id for t in excluded] == [published.id, later.id]


def test_media_kinds_only_of_the_owner(world: World) -> None:
    now = world.time.now()
    mine = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, 4, now)
    theirs = Media(uuid.uuid4(), "bob", "video/mp4", MediaKind.VIDEO, 4, now)
    with world.uow() as uow:
        uow.media.add(mine, b"\x89PNG")
        uow.media.add(theirs, b"mp4!")
        uow.commit()
    with world.uow() as uow:
        assert uow.media.get(mine.id) == mine
        assert uow.media.get(uuid.uuid4()) is None
        assert uow.media.kinds("alice", [mine.id, theirs.id]) == {mine.id: MediaKind.IMAGE}
        assert uow.media.kinds("alice", []) == {}


def test_campaigns_newest_first(world: World) -> None:
    now = world.time.now()
    campaigns = [
        Campaign(uuid.uuid4(), "alice", f"c{i}", now + timedelta(seconds=i), now) for i in range(3)
    ]
    with world.uow() as uow:
        for campaign in [*campaigns, Campaign(uuid.uuid4(), "bob", "b", now, now)]:
            uow.campaigns.add(campaign)
        uow.commit()
    with world.uow() as uow:
        page = uow.campaigns.list("alice", None, 2)
        assert [c.name for c in page] == ["c2", "c1"]
        rest = uow.campaigns.list("alice", Cursor(page[-1].created_at, page[-1].id), 5)
        assert [c.name for c in rest] == ["c0"]
        assert uow.campaigns.get(campaigns[0].id) == campaigns[0]
        assert uow.campaigns.get(uuid.uuid4()) is None


def test_erasure_tombstones(world: World) -> None:
    world.erase("mallory")
    with world.uow() as uow:
        assert uow.erasures.is_erased("mallory")
        assert not uow.erasures.is_erased("alice")


def test_spend_ledger_prices_dedupes_reads_and_sums_by_scope(world: World) -> None:
    now = world.time.now()
    account = an_account(now, x_monthly_budget_micros=10_000_000)
    post = a_post(account, now, state=PostState.PUBLISHED, published_at=now)
    queued = a_post(account, now, due_in=timedelta(minutes=5), thread=["more"])
    store(world.uow, account, post, queued)
    create = Metered(now, CallKind.POST_CREATE, Purpose.PUBLISH, "alice", account.id, post.id)
    read = Metered(
        now,
        CallKind.POST_READ,
        Purpose.RECONCILE,
        "alice",
        account.id,
        post.id,
        2,
        Outcome.CHARGED,
        ("1", "2"),
    )
    refused = Metered(
        now,
        CallKind.POST_CREATE,
        Purpose.PUBLISH,
        "alice",
        account.id,
        post.id,
        outcome=Outcome.REFUSED,
    )
    with world.uow() as uow:
        first = uow.spend.record([create, read, refused])
        again = uow.spend.record([read])
        uow.commit()
    assert first > 0 and again == 0
    day_start, day_end = now - timedelta(days=1), now + timedelta(days=1)
    with world.uow() as uow:
        rows = uow.spend.rows(SpendScope(account_id=account.id), day_start, day_end)
        by_outcome = {(r.kind, r.outcome): (r.calls, r.charged_units) for r in rows}
        assert by_outcome[("post_read", "deduplicated")] == (1, 0)
        assert by_outcome[("post_read", "charged")] == (1, 2)
        assert sum(r.cost_micros for r in rows) == first
        assert uow.spend.rows(SpendScope(user_id="bob"), day_start, day_end) == []
        assert uow.spend.published_posts(SpendScope(user_id="alice"), day_start, day_end) == 1
        states = uow.spend.budget_states([account.id, uuid.uuid4()])
        assert list(states) == [account.id]
        assert states[account.id].budget_micros == 10_000_000
        assert states[account.id].spent_micros == first
        assert states[account.id].reserved_micros > 0


def test_unique_rows_name_their_constraint_and_nothing_stays(world: World) -> None:
    now = world.time.now()
    account, post = stored_post(world.uow, now, state=PostState.PUBLISHING)
    with pytest.raises(DuplicateKey) as twice, world.uow() as uow:
        uow.posts.add(a_post(account, now, id=post.id))
        uow.commit()
    assert twice.value.constraint == "pk_posts"
    # One post in flight per account.
    second = a_post(account, now, state=PostState.PUBLISHING)
    with pytest.raises(DuplicateKey) as in_flight, world.uow() as uow:
        uow.posts.add(second)
        uow.commit()
    assert in_flight.value.constraint == "uq_posts_one_publishing_per_account"
    with pytest.raises(DuplicateKey) as same, world.uow() as uow:
        uow.accounts.add(an_account(now, id=account.id))
        uow.commit()
    assert same.value.constraint == "pk_accounts"
    with world.uow() as uow:
        assert uow.posts.get(second.id) is None
        assert uow.posts.count_active_for_account(account.id) == 1


def test_a_post_of_a_missing_account_is_refused(world: World) -> None:
    now = world.time.now()
    orphan = a_post(an_account(now), now)
    # PostgreSQL's foreign key error is not a port type: only that it refuses is shared.
    with pytest.raises(Exception, match="fk_posts_account_id_accounts"), world.uow() as uow:
        uow.posts.add(orphan)
        uow.commit()
    with world.uow() as uow:
        assert uow.posts.get(orphan.id) is None


def test_posts_by_any_of_several_states_and_by_error_text(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    failed = a_post(account, now, state=PostState.FAILED, last_error="X refused: 100% Dup_")
    dead = a_post(account, now, state=PostState.DEAD_LETTERED, last_error="gave up")
    store(world.uow, account, failed, dead, a_post(account, now))
    stuck = (PostState.FAILED, PostState.DEAD_LETTERED)
    with world.uow() as uow:
        both = uow.posts.list(PostFilter(user_id="alice", states=stuck), None, 10)
        assert {p.id for p in both} == {failed.id, dead.id}
        # Case-insensitive, and LIKE's wildcards are plain characters.
        for text_ in ("100% dup_", "REFUSED"):
            found = uow.posts.list(PostFilter(states=stuck, error_contains=text_), None, 10)
            assert [p.id for p in found] == [failed.id]
        assert uow.posts.list(PostFilter(error_contains="0%_D"), None, 10) == []


def test_media_usage_counts_the_users_items_and_bytes(world: World) -> None:
    now = world.time.now()
    with world.uow() as uow:
        assert uow.media.usage("alice") == (0, 0)
        for size in (3, 5):
            item = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, size, now)
            uow.media.add(item, b"x" * size)
        uow.media.add(Media(uuid.uuid4(), "bob", "image/png", MediaKind.IMAGE, 7, now), b"x" * 7)
        uow.commit()
    with world.uow() as uow:
        assert uow.media.usage("alice") == (2, 8)
