"""Concurrent X webhook deliveries over PostgreSQL: two deliveries that touch the same
posts in opposite orders wait for each other and both apply (no deadlock), and no
increment is lost."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.adapters.clock import SystemClock
from post_management.adapters.crypto import FernetBox
from post_management.adapters.db import async_unit_of_work
from post_management.adapters.db.async_reads import AsyncPool
from post_management.adapters.db.async_unit_of_work import AsyncSqlUnitOfWorkFactory
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.memory.clock import SettableClock
from post_management.domain.privacy import Pseudonyms
from post_management.services.analytics.webhooks import XWebhooks, signature
from tests.contract.builders import an_account, published, store

SECRET = "webhook-secret-" + "x" * 20
BOX = FernetBox([Fernet.generate_key().decode()])
PSEUDONYMS = Pseudonyms(secrets.token_bytes(32))


def _likes(*x_post_ids: str) -> bytes:
    """A delivery of one like on each post, in this order."""
    events = [
        {"id": f"fav-{uuid.uuid4().hex}", "favorited_status": {"id_str": x_id}}
        for x_id in x_post_ids
    ]
    return json.dumps({"for_user_id": "1", "favorite_events": events}).encode()


async def test_deliveries_touching_the_same_posts_in_opposite_orders_both_apply(
    machine_database: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    account = an_account(now)
    first, second = published(account, now), published(account, now)
    store(SqlUnitOfWorkFactory(engine, BOX, PSEUDONYMS), account, first, second)
    get = async_unit_of_work.AsyncSqlPosts.get

    async def slow_lock(self: Any, post_id: uuid.UUID, *, for_update: bool = False) -> Any:
        found = await get(self, post_id, for_update=for_update)
        if for_update:
            await asyncio.sleep(0.3)  # each delivery holds its first lock a while
        return found

    monkeypatch.setattr(async_unit_of_work.AsyncSqlPosts, "get", slow_lock)
    pool = AsyncPool(machine_database, min_size=2, max_size=2, name="webhooks")
    await pool.open()
    webhooks = XWebhooks(
        AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS),
        SystemClock(),
        AwaitedInProcessCache(InProcessCache()),
        SECRET,
    )
    factory = AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)
    try:
        forward = _likes(first.x_post_id or "", second.x_post_id or "")
        backward = _likes(second.x_post_id or "", first.x_post_id or "")
        results = await asyncio.wait_for(
            asyncio.gather(
                *(webhooks.receive(body, signature(SECRET, body)) for body in (forward, backward))
            ),
            timeout=30,
        )
        async with factory() as work:
            likes = [(await work.analytics.latest(post.id)) for post in (first, second)]
    finally:
        await pool.close()
    assert [(r.applied, r.duplicates, r.ignored) for r in results] == [(2, 0, 0), (2, 0, 0)]
    # Both likes on each post counted: neither delivery's increment lost.
    assert [snapshot.counts.likes if snapshot else None for snapshot in likes] == [2, 2]


async def test_a_delivery_timed_before_the_last_snapshot_still_counts_on_top_of_it(
    machine_database: str, engine: Engine
) -> None:
    """A delivery whose clock read comes before the snapshot it adds to (it read the
    time, then waited for another delivery's lock; or a replica's clock is behind)
    still leaves the larger count as the post's latest."""
    now = datetime.now(UTC)
    account = an_account(now)
    post = published(account, now)
    store(SqlUnitOfWorkFactory(engine, BOX, PSEUDONYMS), account, post)
    pool = AsyncPool(machine_database, min_size=1, max_size=2, name="webhooks")
    await pool.open()
    clock = SettableClock(now)
    factory = AsyncSqlUnitOfWorkFactory(pool, BOX, PSEUDONYMS)
    webhooks = XWebhooks(factory, clock, AwaitedInProcessCache(InProcessCache()), SECRET)
    try:
        for at in (now, now - timedelta(seconds=1)):
            clock.set(at)
            body = _likes(post.x_post_id or "")
            assert (await webhooks.receive(body, signature(SECRET, body))).applied == 1
        async with factory() as work:
            latest = await work.analytics.latest(post.id)
    finally:
        await pool.close()
    assert latest is not None and latest.counts.likes == 2
