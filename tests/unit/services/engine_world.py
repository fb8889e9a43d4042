"""The publishing engine over the memory adapters: no database, no X server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from post_management.adapters.memory.composition import memory_adapters
from post_management.adapters.rate_limit import InProcessRateLimiter
from post_management.domain.account import Account, Credentials
from post_management.domain.media import Media, kind_of
from post_management.domain.post import Post, PostState
from post_management.services.publishing.engine import (
    Dispatcher,
    EngineSettings,
    Publisher,
    Reconciler,
)
from tests.unit.domain.claims import TIMING

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class EngineWorld:
    def __init__(self, max_in_flight: int = 4) -> None:
        adapters = memory_adapters(START)
        self.clock = adapters.settable_clock
        self.store = adapters.store
        self.uow = adapters.uow
        self.async_uow = adapters.async_uow
        self.post_reads = adapters.post_reads
        self.queue = adapters.queue
        self.x = adapters.scripted_x
        self.meter = adapters.meter
        self.settings = EngineSettings(TIMING, max_in_flight=max_in_flight)
        self.publisher = Publisher(
            self.queue,
            adapters.x_api,
            InProcessRateLimiter(),
            adapters.clock,
            self.settings,
            adapters.uploads,
            adapters.meter,
        )
        self.dispatcher = Dispatcher(self.queue, self.publisher, adapters.clock, self.settings)
        self.reconciler = Reconciler(self.queue, adapters.x_api, self.settings, adapters.meter)

    def account(self) -> Account:
        x_user_id = str(uuid.uuid4().int % 10**12)
        token = f"token-{x_user_id}"
        self.x.register_user(token, x_user_id)
        now = self.clock.now()
        account = Account(
            id=uuid.uuid4(),
            user_id="alice",
            handle=f"u{x_user_id}",
            x_user_id=x_user_id,
            created_at=now,
            updated_at=now,
            credentials=Credentials(token, "secret"),
        )
        with self.uow() as uow:
            uow.accounts.add(account)
            uow.commit()
        return account

    def post(
        self,
        account: Account,
        text: str,
        thread: tuple[str, ...] = (),
        attachments: tuple[uuid.UUID, ...] = (),
    ) -> Post:
        now = self.clock.now()
        post = Post(
            id=uuid.uuid4(),
            user_id=account.user_id,
            account_id=account.id,
            text=text,
            created_at=now,
            updated_at=now,
            state=PostState.SCHEDULED,
            scheduled_for=now,
            thread=list(thread),
            attachment_ids=list(attachments),
        )
        with self.uow() as uow:
            uow.posts.add(post)
            uow.commit()
        return post

    def media(self, data: bytes, mime_type: str = "image/png") -> uuid.UUID:
        item = Media(uuid.uuid4(), "alice", mime_type, kind_of(mime_type), len(data), START)
        with self.uow() as uow:
            uow.media.add(item, data)
            uow.commit()
        return item.id

    def dispatch(self) -> int:
        claimed = self.dispatcher.tick()
        self.dispatcher.drain()
        return claimed

    def get(self, post: Post) -> Post:
        with self.uow() as uow:
            found = uow.posts.get(post.id)
        assert found is not None
        return found

    def event_types(self) -> list[str]:
        return [event.event_type for event in self.store.tables.outbox]

    def wait(self, by: timedelta) -> None:
        self.clock.advance(by)
