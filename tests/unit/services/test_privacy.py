"""ListAuditEvents, ExportUserData and EraseUserData's use case on the memory adapters:
who may call it, the trail's pages and redaction, what an export holds, and what an
erasure leaves behind, without a database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.domain.account import Account, Credentials
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.auth import Principal, Role
from post_management.domain.campaigns import Campaign
from post_management.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from post_management.domain.post import Post, PostState
from post_management.domain.privacy import REDACTED, Pseudonyms
from post_management.domain.reasons import Reason
from post_management.ports.analytics import SOURCE_POLL
from post_management.ports.repositories import AuditEntry, Cursor
from post_management.services.accounts.accounts import AccountFields, AccountService
from post_management.services.analytics.analytics import AnalyticsQueries, metrics_key
from post_management.services.privacy import privacy
from post_management.services.privacy.privacy import PrivacyService
from post_management.services.shared.pagination import encode_token
from tests.unit.services.privacy_world import PrivacyWorld

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALICE = Principal("alice", Role.USER)
ADMIN = Principal("ops", Role.ADMIN)


class World(PrivacyWorld):
    def __init__(self) -> None:
        super().__init__(START)
        self.accounts = AccountService(self.adapters.async_uow, self.clock)

    def account(self, user_id: str = "alice") -> Account:
        account = asyncio.run(
            self.accounts.create(
                Principal(user_id, Role.USER),
                user_id,
                AccountFields(
                    handle=f"h{uuid.uuid4().hex[:6]}",
                    x_user_id=str(uuid.uuid4().int % 10**12),
                    credentials=Credentials("token-value", "secret-value"),
                ),
            )
        )
        self.clock.advance(timedelta(seconds=1))
        return account

    def post(self, account: Account, state: PostState = PostState.DRAFT, **fields: object) -> Post:
        post = self.stored_post(account, state, **fields)
        self.clock.advance(timedelta(seconds=1))
        return post

    def audit(self, user_id: str, action: str, **after: object) -> None:
        with self.adapters.uow() as work:
            work.audit.record(
                AuditEntry(f"user:{user_id}", action, "post", uuid.uuid4(), user_id, None, after)
            )
            work.commit()


@pytest.fixture
def world() -> World:
    return World()


def test_the_trail_pages_newest_first_through_tokens_with_secrets_redacted(
    world: World,
) -> None:
    for n in range(5):
        world.audit("alice", f"step{n}", text=f"v{n}", access_token="never shown")
    world.audit("bob", "bobs")

    actions: list[str] = []
    token = ""
    pages = 0
    while True:
        page = asyncio.run(world.privacy.list_audit_events(ALICE, "alice", 2, token))
        actions += [record.action for record in page.items]
        assert all(r.after and r.after["access_token"] == REDACTED for r in page.items)
        pages += 1
        token = page.next_page_token
        if not token or pages > 5:
            break
    assert actions == ["step4", "step3", "step2", "step1", "step0"]
    assert pages == 3
    # The stored row keeps what was recorded; only the answer is redacted.
    assert world.store.tables.audit[0][1].after == {"text": "v0", "access_token": "never shown"}


def test_the_trail_is_the_users_own_and_its_token_is_checked(world: World) -> None:
    world.audit("alice", "step")
    with pytest.raises(PermissionDenied):
        asyncio.run(world.privacy.list_audit_events(Principal("bob", Role.USER), "alice", 0, ""))
    with pytest.raises(InvalidArgument) as forged:
        asyncio.run(world.privacy.list_audit_events(ALICE, "alice", 0, "not-a-token"))
    assert forged.value.reason == Reason.INVALID_PAGE_TOKEN
    # A token of this service, for this query, whose cursor is no audit row id.
    query = {"user_id": "alice", "list": "audit"}
    out_of_range = encode_token(Cursor(START, uuid.UUID(int=2**64)), query)
    with pytest.raises(InvalidArgument) as refused:
        asyncio.run(world.privacy.list_audit_events(ALICE, "alice", 0, out_of_range))
    assert refused.value.reason == Reason.INVALID_PAGE_TOKEN
    # A service may read anyone's trail.
    crm = Principal("crm", Role.SERVICE)
    page = asyncio.run(world.privacy.list_audit_events(crm, "alice", 0, ""))
    assert [r.action for r in page.items] == ["step"]


def test_an_export_holds_all_the_users_rows_past_one_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy, "_EXPORT_BATCH", 2)
    accounts = [world.account() for _ in range(3)]
    posts = [world.post(accounts[0]) for _ in range(3)]
    published = world.post(accounts[1], PostState.PUBLISHED, x_post_id="9")
    bobs = world.account("bob")
    world.post(bobs)
    now = world.clock.now()
    campaigns = [Campaign(uuid.uuid4(), "alice", f"c{n}", now, now) for n in range(3)]
    with world.adapters.uow() as work:
        for campaign in campaigns:
            work.campaigns.add(campaign)
        work.analytics.add_snapshot(published.id, Snapshot(now, Counts(impressions=7)), SOURCE_POLL)
        work.commit()
    world.audit("alice", "post.update", credentials="sealed")

    export = asyncio.run(world.privacy.export(ALICE, "alice"))

    assert (export.user_id, export.exported_at) == ("alice", world.clock.now())
    assert [a.id for a in export.accounts] == [a.id for a in accounts]
    assert [p.id for p in export.posts] == [p.id for p in [*posts, published]]
    assert {c.id for c in export.campaigns} == {c.id for c in campaigns}
    assert [(m.post_id, m.impressions) for m in export.metrics] == [(published.id, 7)]
    # Three account creates and the update, newest first, secrets redacted.
    assert [r.action for r in export.audit_events] == ["post.update"] + ["account.create"] * 3
    assert export.audit_events[0].after == {"credentials": REDACTED}
    with pytest.raises(PermissionDenied):
        asyncio.run(world.privacy.export(Principal("bob", Role.USER), "alice"))


def test_only_an_admin_or_a_service_erases_and_a_refusal_changes_nothing(
    world: World,
) -> None:
    account = world.account()
    with pytest.raises(PermissionDenied) as refused:
        asyncio.run(world.privacy.erase(ALICE, "alice", delete_from_x=True))
    assert refused.value.reason == Reason.ERASE_NOT_ALLOWED
    assert list(world.store.tables.accounts) == [account.id]
    assert world.store.tables.erased_users == set()


def test_an_erasure_takes_the_users_rows_and_refuses_her_afterwards(world: World) -> None:
    account = world.account()
    world.post(account, PostState.PUBLISHED, x_post_id="11", segment_x_post_ids=["11", "12"])
    world.post(account)
    bobs = world.account("bob")
    hashed = world.pseudonyms.of("alice")

    report = asyncio.run(world.privacy.erase(ADMIN, "alice", delete_from_x=True))

    assert (report.posts_deleted, report.accounts_deleted, report.media_deleted) == (2, 1, 0)
    assert (report.audit_events_pseudonymised, report.x_removals_queued) == (1, 2)
    assert report.erased_at == world.clock.now()
    tables = world.store.tables
    assert list(tables.accounts) == [bobs.id] and tables.posts == {}
    assert tables.erased_users == {hashed}
    assert [(r.user_hash, r.x_post_id) for r in tables.x_removals] == [
        (hashed, "11"),
        (hashed, "12"),
    ]
    erased = [e for _, e in tables.audit if e.action == "user.erase"]
    assert [(e.actor, e.user_id) for e in erased] == [("admin:ops", hashed)]
    assert all(e.user_id != "alice" for _, e in tables.audit)
    # The tombstone refuses to bring her back.
    with pytest.raises(FailedPrecondition) as refused:
        world.account()
    assert refused.value.reason == Reason.USER_ERASED
    # A second erasure finds nothing more.
    again = asyncio.run(world.privacy.erase(ADMIN, "alice", delete_from_x=True))
    assert (again.posts_deleted, again.accounts_deleted, again.x_removals_queued) == (0, 0, 0)
    assert world.store.tables.erased_users == {hashed}


def test_an_erasure_re_keys_a_tombstone_from_before_pseudonyms_were_keyed(
    world: World,
) -> None:
    old = Pseudonyms.unkeyed("alice")
    world.store.tables.erased_users.add(old)
    world.audit(old, "post.create")

    asyncio.run(world.privacy.erase(Principal("crm", Role.SERVICE), "alice", False))

    hashed = world.pseudonyms.of("alice")
    assert world.store.tables.erased_users == {hashed}
    assert [(e.actor, e.user_id) for _, e in world.store.tables.audit] == [
        (f"user:{hashed}", hashed),
        ("service:crm", hashed),
    ]


def test_an_erasure_waits_while_a_post_is_being_published(world: World) -> None:
    account = world.account()
    world.post(account, PostState.PUBLISHING)
    with pytest.raises(FailedPrecondition) as refused:
        asyncio.run(world.privacy.erase(ADMIN, "alice", delete_from_x=True))
    assert refused.value.reason == Reason.POSTS_BEING_PUBLISHED
    assert list(world.store.tables.accounts) == [account.id]
    assert len(world.store.tables.posts) == 1 and world.store.tables.erased_users == set()


def test_an_erasure_drops_the_cached_metrics_and_analytics_of_her_posts(world: World) -> None:
    """GetPostMetrics and GetPostAnalytics answer from a cache (by post id) before they
    look for the post: after an erasure neither answers an erased post from it."""
    cache = AwaitedInProcessCache(InProcessCache())
    privacy_ = PrivacyService(
        world.adapters.async_uow, world.adapters.privacy, world.clock, world.pseudonyms, cache
    )
    queries = AnalyticsQueries(world.adapters.async_uow, world.clock, cache)
    account = world.account()
    published = world.post(account, PostState.PUBLISHED, x_post_id="31")
    bobs = world.post(world.account("bob"), PostState.PUBLISHED, x_post_id="32")
    with world.adapters.uow() as work:
        for post in (published, bobs):
            work.analytics.add_snapshot(
                post.id, Snapshot(world.clock.now(), Counts(impressions=5)), SOURCE_POLL
            )
        work.commit()

    async def scenario() -> None:
        for post in (published, bobs):  # cached
            assert (await queries.post_metrics(ADMIN, post.id)).latest is not None
            await queries.post_analytics(ADMIN, post.id)
        await privacy_.erase(ADMIN, "alice", delete_from_x=False)
        with pytest.raises(NotFound):
            await queries.post_metrics(ADMIN, published.id)
        with pytest.raises(NotFound):
            await queries.post_analytics(ADMIN, published.id)
        # Another user's answers stay cached.
        assert await cache.get(metrics_key(bobs.id)) is not None

    asyncio.run(scenario())
