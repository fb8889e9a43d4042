"""GetPost's cache over real gRPC and PostgreSQL: hits skip the database, every
write path invalidates, and Redis may die and come back mid-run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from sqlalchemy import Engine, event, text
from xmp.posts.v1 import (
    post_pb2,
    post_service_pb2,
    publishing_service_pb2,
    publishing_service_pb2_grpc,
    service_info_service_pb2,
    service_info_service_pb2_grpc,
)

from post_management.adapters.db.async_reads import AsyncPostReads
from post_management.domain.post import Post
from tests.conftest import truncate
from tests.fixtures.emulator import Emulator
from tests.integration.grpc_fixtures import Client, x_account
from tests.integration.scheduling_support import Scheduler
from tests.support.harness import RunningServer, settings_for
from tests.support.redis_server import RedisServer
from x_emulator.server import EmulatorThread


class PostLoads:
    """Counts loads of one post by id: GetPost's asynchronous reads and any load by
    id through the engine. A cache hit makes none."""

    def __init__(self, engine: Engine, reads: AsyncPostReads) -> None:
        self.count = 0
        self._engine = engine
        self._reads = reads
        event.listen(engine, "before_cursor_execute", self._seen)
        read = reads.get

        async def counted(post_id: uuid.UUID) -> Post | None:
            self.count += 1
            return await read(post_id)

        reads.get = counted  # type: ignore[method-assign]

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT posts.") and "WHERE posts.id =" in statement:
            self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)
        del self._reads.get


class Replica(Client):
    def __init__(self, server: RunningServer, subject: str = "alice") -> None:
        super().__init__(server, subject)
        self.server = server
        (reads,) = [r for r in server.container.services.resources if isinstance(r, AsyncPostReads)]
        self.loads = PostLoads(server.container.engine, reads)
        self.publishing = publishing_service_pb2_grpc.PublishingServiceStub(self.channel)
        self.info = service_info_service_pb2_grpc.ServiceInfoServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def get(self, post_id: str) -> post_pb2.Post:
        return self.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=post_id), metadata=self.metadata, timeout=10
        )

    def loads_for_get(self, post_id: str) -> tuple[post_pb2.Post, int]:
        """The post, and how many database loads that GetPost made."""
        before = self.loads.count
        post = self.get(post_id)
        return post, self.loads.count - before

    def update_text(self, post: post_pb2.Post, new_text: str) -> post_pb2.Post:
        return self.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=post.id, text=new_text, etag=post.etag),
                update_mask=FieldMask(paths=["text"]),
            ),
            metadata=self.metadata,
            timeout=10,
        )

    def publish_now(self, post_id: str) -> post_pb2.Post:
        response = self.publishing.PublishPost(
            publishing_service_pb2.PublishPostRequest(
                post_id=post_id, user_id=self.subject, immediate_publish=True
            ),
            metadata=self.metadata,
            timeout=15,
        )
        return response.post

    def redis_readiness(self) -> tuple[bool, service_info_service_pb2.ComponentStatus]:
        # Readiness answers from the server's last health check (every 5 s): run one now.
        self.server._call(self.server.server.refresh_health())  # type: ignore[arg-type]
        ready = self.info.GetReadiness(service_info_service_pb2.GetReadinessRequest(), timeout=10)
        (redis,) = [c for c in ready.components if c.name == "redis"]
        return ready.ready, redis

    def serving(self) -> bool:
        answer = self.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self.loads.close()
        self.channel.close()


def _gauge(component: str) -> float | None:
    return REGISTRY.get_sample_value("post_management_redis_degraded", {"component": component})


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as resources:
        yield resources


def _replica(
    stack: ExitStack, database: str, emulator_server: EmulatorThread, tmp: Path, **extra: object
) -> Replica:
    settings = settings_for(
        database,
        tmp / uuid.uuid4().hex,
        dispatcher_enabled=False,  # its claim queries would muddle the load counts
        x_api_base_url=emulator_server.base_url,
        x_timeout_seconds=2,
        **extra,
    )
    server = RunningServer(settings)
    stack.callback(server.stop)
    replica = Replica(server)
    stack.callback(replica.close)
    return replica


def test_cached_reads_skip_the_database_and_every_write_path_invalidates(
    machine_database: str,
    emulator_server: EmulatorThread,
    emulator: Emulator,
    stack: ExitStack,
    tmp_path: Path,
) -> None:
    truncate(machine_database)
    alice = _replica(stack, machine_database, emulator_server, tmp_path)  # no Redis: in process
    account = x_account(alice, emulator)
    created = alice.create_post(account.id, "first")

    post, loads = alice.loads_for_get(created.id)
    assert (post.text, loads) == ("first", 1)
    post, loads = alice.loads_for_get(created.id)
    assert (post.text, loads) == ("first", 0)  # a hit: no database

    updated = alice.update_text(post, "second")
    post, loads = alice.loads_for_get(created.id)
    assert (post.text, post.etag, loads) == ("second", updated.etag, 1)
    assert alice.loads_for_get(created.id)[1] == 0

    # A rolled-back write leaves the entry alone; a committed raw-SQL write (the
    # way publishing settlements and scheduling write) drops it.
    engine = alice.server.container.engine
    with engine.connect() as connection:
        connection.execute(text("UPDATE posts SET text = 'never' WHERE id = :id"), {"id": post.id})
        connection.rollback()
    assert alice.loads_for_get(created.id) == (post, 0)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE posts SET text = 'raw', version = version + 1 WHERE id = :id"),
            {"id": post.id},
        )
    post, loads = alice.loads_for_get(created.id)
    assert (post.text, loads) == ("raw", 1)

    # Scheduling and cancelling: the asynchronous unit of work's commits.
    scheduler = Scheduler(alice)
    other = alice.create_post(account.id, "to schedule")
    assert alice.loads_for_get(other.id)[1] == 1
    assert alice.loads_for_get(other.id)[1] == 0
    scheduler.schedule(other.id, user_id="alice")
    got, loads = alice.loads_for_get(other.id)
    assert (got.state, loads) == (post_pb2.POST_STATE_SCHEDULED, 1)
    assert alice.loads_for_get(other.id)[1] == 0
    scheduler.cancel(other.id)
    got, loads = alice.loads_for_get(other.id)
    assert (got.state, loads) == (post_pb2.POST_STATE_CANCELLED, 1)
    # Every post write starts a new generation: the first post is read again once.
    assert alice.loads_for_get(created.id)[1] == 1

    # The publishing engine's claim and settlement.
    assert alice.loads_for_get(created.id)[1] == 0
    published = alice.publish_now(created.id)
    assert published.state == post_pb2.POST_STATE_PUBLISHED
    post = alice.get(created.id)
    assert (post.state, post.x_post_id) == (post_pb2.POST_STATE_PUBLISHED, published.x_post_id)

    # Delete: a draft this time.
    draft = alice.create_post(account.id, "to delete")
    alice.get(draft.id)
    alice.posts.DeletePost(
        post_service_pb2.DeletePostRequest(post_id=draft.id), metadata=alice.metadata, timeout=10
    )
    with pytest.raises(grpc.RpcError) as caught:
        alice.get(draft.id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    # Another user's cached post is still refused.
    bob = Client(alice.server, "bob")
    stack.callback(bob.channel.close)
    with pytest.raises(grpc.RpcError) as caught:
        bob.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=created.id), metadata=bob.metadata, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_replicas_share_redis_survive_its_death_and_share_again_after_restart(
    machine_database: str,
    emulator_server: EmulatorThread,
    emulator: Emulator,
    stack: ExitStack,
    tmp_path: Path,
) -> None:
    truncate(machine_database)
    redis_server = RedisServer()
    stack.callback(redis_server.kill)
    shared = {"redis_url": redis_server.url, "encryption_keys": Fernet.generate_key().decode()}
    a = _replica(stack, machine_database, emulator_server, tmp_path, **shared)
    b = _replica(stack, machine_database, emulator_server, tmp_path, **shared)
    account = x_account(a, emulator)
    first = a.create_post(account.id, "one")
    second = a.create_post(account.id, "two")

    # Shared: what A cached, B reads without its database; B's write reaches A.
    assert a.loads_for_get(first.id)[1] == 1
    assert b.loads_for_get(first.id) == (a.get(first.id), 0)
    b.update_text(b.get(first.id), "one, edited by B")
    assert a.get(first.id).text == "one, edited by B"
    assert a.redis_readiness() == (
        True,
        service_info_service_pb2.ComponentStatus(name="redis", ok=True, detail="shared"),
    )

    redis_server.kill()

    # Reads go on, from the database and then from each replica's own cache.
    post, loads = a.loads_for_get(first.id)
    assert (post.text, loads) == ("one, edited by B", 1)
    assert a.loads_for_get(first.id)[1] == 0
    for replica in (a, b):
        ready, redis = replica.redis_readiness()
        assert ready and redis.ok and redis.detail.startswith("degraded"), redis
        assert replica.serving()
    assert _gauge("cache") == 1.0  # the newest composition root (B) reports

    # Writes still invalidate, in process.
    cached = a.get(second.id)
    a.update_text(cached, "two, edited while Redis is down")
    assert a.get(second.id).text == "two, edited while Redis is down"
    # Publishing runs on the in-process rate limiter.
    assert b.get(first.id).state == post_pb2.POST_STATE_DRAFT
    assert b.publish_now(first.id).state == post_pb2.POST_STATE_PUBLISHED
    assert b.get(first.id).state == post_pb2.POST_STATE_PUBLISHED
    assert _gauge("rate_limiter") == 1.0

    redis_server.start()

    for replica in (a, b):
        assert replica.redis_readiness() == (
            True,
            service_info_service_pb2.ComponentStatus(name="redis", ok=True, detail="shared"),
        )
    assert _gauge("cache") == 0.0
    # Shared again: one database load between the two replicas, and B's write
    # reaches A.
    assert a.loads_for_get(second.id)[1] == 1
    post, loads = b.loads_for_get(second.id)
    assert (post.text, loads) == ("two, edited while Redis is down", 0)
    b.update_text(post, "two, edited by B")
    assert a.get(second.id).text == "two, edited by B"
