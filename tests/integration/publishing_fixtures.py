"""The publishing engine over the machine's PostgreSQL and the X emulator: `make_engine_`
builds one, and the `engine_` fixture (registered for every tier by tests/conftest.py)
gives each test a fresh one."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, event, text

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.clock import TEST_OFFSET_SETTING, DatabaseClock
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.media_repository import SqlMediaUploads
from post_management.adapters.db.publish_queue import SqlPublishQueue
from post_management.adapters.db.spend_ledger import SqlSpendMeter
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.adapters.rate_limit import InProcessRateLimiter
from post_management.adapters.x.client import TweepyXApi
from post_management.adapters.x.poster import TweepyXPoster
from post_management.domain.account import Account, Credentials
from post_management.domain.media import Media, kind_of
from post_management.domain.post import Post, PostState, Priority
from post_management.domain.privacy import Pseudonyms
from post_management.domain.publishing import Timing
from post_management.domain.retry import RetryPolicy
from post_management.domain.x_spend import PriceTable
from post_management.ports.publishing import RateLimiter
from post_management.services.publishing.engine import (
    Dispatcher,
    EngineSettings,
    Publisher,
    Reconciler,
)
from tests.conftest import truncate
from tests.fixtures.emulator import Emulator

ENCRYPTION_KEY = Fernet.generate_key().decode()


class MovableClock:
    """Time as the engine sees it, which is the database's: `now()` reads it, and
    `advance()` moves it forward for this engine's connections (the test-only session
    offset of adapters/db/clock.py) and moves the emulator's clock along, so leases,
    due times, budgets, X's windows and its timeline lag all pass alike."""

    def __init__(self, engine: Engine, emulator: Emulator) -> None:
        self._engine = engine
        self._emulator = emulator
        self._offset = timedelta(0)
        self._lock = threading.Lock()
        event.listen(engine, "checkout", self._on_checkout)

    def _on_checkout(self, connection: Any, record: Any, proxy: Any) -> None:
        with self._lock:
            seconds = self._offset.total_seconds()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config(%s, %s, false)", (TEST_OFFSET_SETTING, f"{seconds} seconds")
            )

    def now(self) -> datetime:
        return DatabaseClock(self._engine).now()

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta
        self._emulator.control.advance_clock(delta.total_seconds())


@dataclass
class Engine_:
    engine: Engine
    uow: SqlUnitOfWorkFactory
    queue: SqlPublishQueue
    clock: MovableClock
    settings: EngineSettings
    publisher: Publisher
    dispatcher: Dispatcher
    reconciler: Reconciler
    emulator: Emulator
    meter: SqlSpendMeter

    def account(self, x_user_id: str | None = None, *, credentials: bool = True) -> Account:
        x_user_id = x_user_id or str(uuid.uuid4().int % 10**12)
        token = f"token-{x_user_id}"
        self.emulator.control.register_user(token, user_id=x_user_id, username=f"u{x_user_id}")
        now = self.clock.now()
        account = Account(
            id=uuid.uuid4(),
            user_id="alice",
            handle=f"u{x_user_id}",
            x_user_id=x_user_id,
            created_at=now,
            updated_at=now,
            credentials=Credentials(token, f"secret-{x_user_id}") if credentials else None,
        )
        with self.uow() as uow:
            uow.accounts.add(account)
            uow.commit()
        return account

    def post(
        self,
        account: Account,
        text: str,
        *,
        due_in: timedelta = timedelta(0),
        priority: Priority = Priority.NORMAL,
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
            priority=priority,
            scheduled_for=now + due_in,
            timezone="UTC",
            thread=list(thread),
            attachment_ids=list(attachments),
        )
        with self.uow() as uow:
            uow.posts.add(post)
            uow.commit()
        return post

    def media(self, data: bytes, mime_type: str, user_id: str = "alice") -> uuid.UUID:
        """A stored media item, as MediaService.upload leaves it."""
        item = Media(
            uuid.uuid4(), user_id, mime_type, kind_of(mime_type), len(data), self.clock.now()
        )
        with self.uow() as uow:
            uow.media.add(item, data)
            uow.commit()
        return item.id

    def load(self, post_id: uuid.UUID) -> Post:
        with self.uow() as uow:
            post = uow.posts.get(post_id)
        assert post is not None
        return post

    def events(self, post_id: uuid.UUID | None = None) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT event_type, aggregate_id FROM outbox ORDER BY id")
            ).all()
        return [t for t, key in rows if post_id is None or key == str(post_id)]

    def attempts(self, post_id: uuid.UUID) -> list[tuple[int, str]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT number, outcome FROM post_attempts WHERE post_id = :id ORDER BY id"),
                {"id": post_id},
            ).all()
        return [(n, o) for n, o in rows]

    def run_until_idle(self, rounds: int = 20) -> None:
        """Tick dispatcher and reconciler until nothing is claimed."""
        for _ in range(rounds):
            claimed = self.dispatcher.tick()
            self.dispatcher.drain()
            reconciled = self.reconciler.tick()
            if not claimed and not reconciled:
                return


def make_engine_(
    database_url: str,
    x_api: TweepyXApi,
    emulator: Emulator,
    limiter: RateLimiter | None = None,
    **overrides: object,
) -> Engine_:
    truncate(database_url)
    engine = make_engine(database_url)
    # One key for every engine of a test: they share the database's accounts.
    box = FernetBox([ENCRYPTION_KEY])
    uow = SqlUnitOfWorkFactory(engine, box, Pseudonyms(secrets.token_bytes(32)))
    queue = SqlPublishQueue(engine, box)
    meter = SqlSpendMeter(engine, PriceTable())
    clock = MovableClock(engine, emulator)
    values: dict[str, object] = {
        "timing": Timing(
            RetryPolicy(base=timedelta(seconds=10), factor=2, max_attempts=3),
            settle_delay=timedelta(seconds=5),
            # The emulator lists a post at once unless a test sets a timeline lag.
            lag_bound=timedelta(seconds=5),
        ),
        "lease": timedelta(seconds=60),
        "max_in_flight": 8,
    }
    values.update(overrides)
    settings = EngineSettings(**values)  # type: ignore[arg-type]
    publisher = Publisher(
        queue,
        x_api,
        limiter or InProcessRateLimiter(),
        clock,
        settings,
        media=SqlMediaUploads(engine),
        meter=meter,
        # The dispatcher's asynchronous client, as the service has it; a test's
        # stand-in for X is called through as it is.
        poster=TweepyXPoster(x_api.settings) if type(x_api) is TweepyXApi else None,
    )
    return Engine_(
        engine=engine,
        uow=uow,
        queue=queue,
        clock=clock,
        settings=settings,
        publisher=publisher,
        dispatcher=Dispatcher(queue, publisher, clock, settings),
        reconciler=Reconciler(queue, x_api, settings, meter),
        emulator=emulator,
        meter=meter,
    )


@pytest.fixture
def engine_(machine_database: str, x_api: TweepyXApi, emulator: Emulator) -> Iterator[Engine_]:
    built = make_engine_(machine_database, x_api, emulator)
    yield built
    built.dispatcher.close()
    built.engine.dispose()
