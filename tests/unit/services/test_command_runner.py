"""The command runner (services/shared/commands.py) on the memory unit of work: request
id replay, authorization, the version check, the audit and the commit, the same for
every command."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from post_management.adapters.memory.composition import memory_adapters
from post_management.domain import events
from post_management.domain.account import Account
from post_management.domain.auth import Principal, Role
from post_management.domain.errors import Aborted, InvalidArgument, PermissionDenied
from post_management.domain.post import Post, PostState, Priority
from post_management.ports.async_unit_of_work import AsyncUnitOfWork
from post_management.ports.repositories import DuplicateKey, IdempotencyRecord
from post_management.services.shared.commands import AsyncCommand, AsyncCommandRunner, RequestKey

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALICE = Principal("alice", Role.USER)
KEY = RequestKey("CreatePost:alice", "r-1", "digest-1")
T = TypeVar("T")


class World:
    def __init__(self) -> None:
        adapters = memory_adapters(NOW)
        self.store = adapters.store
        self.uow = adapters.uow
        self.runner = AsyncCommandRunner(adapters.async_uow)
        self.account = Account(uuid.uuid4(), "alice", "alice", "42", NOW, NOW)
        with self.uow() as uow:
            uow.accounts.add(self.account)
            uow.commit()

    def draft(self, user_id: str = "alice") -> Post:
        return Post(uuid.uuid4(), user_id, self.account.id, "hello", NOW, NOW)

    def stored(self, post: Post) -> Post:
        with self.uow() as uow:
            uow.posts.add(post)
            uow.commit()
        return post

    def audit(self) -> list[tuple[str, str, str]]:
        return [(e.action, e.resource_type, e.request_id) for _, e in self.store.tables.audit]

    async def load(self, uow: AsyncUnitOfWork, post_id: uuid.UUID) -> Post:
        found = await uow.posts.get(post_id)
        assert found is not None
        return found


def done(step: Awaitable[T]) -> T:
    """The command run to its end (the runner is awaited on the serving loop)."""

    async def wait() -> T:
        return await step

    return asyncio.run(wait())


@pytest.fixture
def world() -> World:
    return World()


def test_a_create_is_stored_remembered_audited_and_committed(world: World) -> None:
    post = world.draft()

    async def create(run: AsyncCommand) -> Post:
        await run.add(post, "post.create")
        return post

    created = done(world.runner.run(ALICE, create, request=KEY, replay=world.load))
    assert created is post
    assert post.id in world.store.tables.posts
    assert world.store.tables.idempotency[(KEY.scope, KEY.request_id)] == IdempotencyRecord(
        KEY.digest, post.id
    )
    assert world.audit() == [("post.create", "post", "r-1")]
    (_, entry) = world.store.tables.audit[0]
    assert entry.actor == "user:alice" and entry.before is None and entry.after is not None
    assert entry.after["id"] == str(post.id)


def test_a_known_request_id_answers_with_the_earlier_result_and_runs_nothing(
    world: World,
) -> None:
    earlier = world.stored(world.draft())
    with world.uow() as uow:
        uow.idempotency.put(KEY.scope, KEY.request_id, IdempotencyRecord(KEY.digest, earlier.id))
        uow.commit()

    async def never(run: AsyncCommand) -> Post:
        raise AssertionError("a replayed request runs nothing")

    replayed = world.runner.run(ALICE, never, request=KEY, replay=world.load, replay_first=True)
    assert done(replayed) == earlier
    assert world.audit() == []
    other = RequestKey(KEY.scope, KEY.request_id, "another digest")
    with pytest.raises(InvalidArgument) as raised:
        done(world.runner.run(ALICE, never, request=other, replay=world.load, replay_first=True))
    assert raised.value.reason == "REQUEST_ID_REUSED"


def test_a_concurrent_twin_that_won_answers_like_a_replay(world: World) -> None:
    """The id was stored after this request looked (replay_first=False stands for that
    moment): storing it again is refused, and the runner answers with the winner's."""
    winner = world.stored(world.draft())
    with world.uow() as uow:
        uow.idempotency.put(KEY.scope, KEY.request_id, IdempotencyRecord(KEY.digest, winner.id))
        uow.commit()
    late = world.draft()

    async def create(run: AsyncCommand) -> Post:
        await run.add(late, "post.create")
        return late

    found = done(world.runner.run(ALICE, create, request=KEY, replay=world.load))
    assert found == winner
    assert late.id not in world.store.tables.posts and world.audit() == []
    # Without a request id there is nothing to answer with: the refusal stands.
    with pytest.raises(DuplicateKey):
        done(world.runner.run(ALICE, lambda run: run.add(winner, "post.create")))


def test_track_authorizes_checks_the_etag_and_save_checks_the_version(world: World) -> None:
    post = world.stored(world.draft())

    def schedule(etag: str, principal: Principal = ALICE) -> Post:
        async def command(run: AsyncCommand) -> Post:
            found = run.track(await world.load(run.uow, post.id), etag)
            found.schedule(NOW + timedelta(hours=1), "UTC", Priority.HIGH, NOW)
            await run.save(found, "post.schedule")
            return found

        return done(world.runner.run(principal, command))

    with pytest.raises(PermissionDenied):
        schedule("", Principal("bob", Role.USER))
    with pytest.raises(Aborted) as stale:
        schedule('"7"')
    assert stale.value.reason == "ETAG_MISMATCH"
    assert world.audit() == [] and world.store.tables.outbox == []
    scheduled = schedule(post.etag)
    assert (scheduled.state, scheduled.version) == (PostState.SCHEDULED, 2)
    (_, entry) = world.store.tables.audit[0]
    assert (entry.action, entry.before["state"], entry.after["state"]) == (  # type: ignore[index]
        "post.schedule",
        "DRAFT",
        "SCHEDULED",
    )
    # The events the post recorded were written with the commit.
    assert [e.event_type for e in world.store.tables.outbox] == [
        events.POST_SCHEDULED,
        events.POST_QUEUE_ADDED,
    ]


def test_a_change_that_lost_to_a_concurrent_one_is_refused_and_nothing_stays(
    world: World,
) -> None:
    post = world.stored(world.draft())

    async def publish_after_another(run: AsyncCommand) -> None:
        mine = run.track(await world.load(run.uow, post.id))
        theirs = await world.load(run.uow, post.id)
        theirs.text = "changed meanwhile"
        assert await run.uow.posts.save(theirs, theirs.version)
        mine.queue_now(NOW)
        await run.save(mine, "post.publish")

    with pytest.raises(Aborted) as lost:
        done(world.runner.run(ALICE, publish_after_another))
    assert lost.value.reason == "CONCURRENT_MODIFICATION"
    assert world.store.tables.posts[post.id].text == "hello"
    assert world.audit() == [] and world.store.tables.outbox == []


def test_a_delete_is_audited_with_what_was_deleted(world: World) -> None:
    post = world.stored(world.draft())

    async def delete(run: AsyncCommand) -> None:
        await run.delete(run.track(await world.load(run.uow, post.id), post.etag), "post.delete")

    done(world.runner.run(ALICE, delete))
    assert post.id not in world.store.tables.posts
    (_, entry) = world.store.tables.audit[0]
    assert (entry.action, entry.after) == ("post.delete", None)
    assert entry.before is not None and entry.before["text"] == "hello"


def test_batch_items_keep_their_own_request_ids_in_one_unit_of_work(world: World) -> None:
    first, second = world.draft(), world.draft()
    keys = [RequestKey(KEY.scope, f"r-{n}", "d") for n in (1, 2)]

    async def both(run: AsyncCommand) -> None:
        for post, key in zip((first, second), keys, strict=True):
            item = run.with_request(key)
            assert await item.earlier() is None
            await item.add(post, "post.create")

    done(world.runner.run(ALICE, both))
    assert world.audit() == [("post.create", "post", "r-1"), ("post.create", "post", "r-2")]
    assert {r.resource_id for r in world.store.tables.idempotency.values()} == {
        first.id,
        second.id,
    }
