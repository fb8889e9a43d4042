"""The unit of work over the memory store: serializable, rolled back unless committed;
the events of its changes go to the store's outbox when it commits."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from post_management.adapters.memory.analytics import (
    MemoryAccountInsights,
    MemoryAnalyticsRepository,
)
from post_management.adapters.memory.clock import SettableClock
from post_management.adapters.memory.repositories import (
    MemoryAccountRepository,
    MemoryAuditLog,
    MemoryCampaignRepository,
    MemoryErasureTombstones,
    MemoryIdempotencyKeys,
    MemoryMediaRepository,
    MemoryPostRepository,
    MemoryScheduleQueries,
    write_events,
)
from post_management.adapters.memory.spend_ledger import MemorySpendLedger
from post_management.adapters.memory.store import MemoryStore, Tables
from post_management.domain.events import EventLog
from post_management.domain.privacy import Pseudonyms
from post_management.domain.x_spend import PriceTable
from post_management.ports.analytics import AccountInsights, AnalyticsRepository
from post_management.ports.campaigns import CampaignRepository
from post_management.ports.media import MediaRepository
from post_management.ports.privacy import ErasureTombstones
from post_management.ports.repositories import (
    AccountRepository,
    AuditLog,
    IdempotencyKeys,
    PostRepository,
)
from post_management.ports.schedule_queries import ScheduleQueries
from post_management.ports.unit_of_work import UnitOfWork
from post_management.ports.x_spend import SpendLedger

# A fixed key: tombstones only need to be stable within one store.
_TEST_PSEUDONYM_KEY = b"memory-store-pseudonyms-are-not-secret"


class MemoryUnitOfWork:
    """Holds the store's lock from enter to exit, so units of work run one after the
    other; leaving without commit restores the rows as they were at enter."""

    # Typed as the ports, so mypy holds each repository to its port.
    posts: PostRepository
    accounts: AccountRepository
    idempotency: IdempotencyKeys
    audit: AuditLog
    outbox: EventLog
    schedule: ScheduleQueries
    media: MediaRepository
    erasures: ErasureTombstones
    campaigns: CampaignRepository
    spend: SpendLedger
    analytics: AnalyticsRepository
    insights: AccountInsights

    def __init__(self, store: MemoryStore, pseudonyms: Pseudonyms, prices: PriceTable) -> None:
        self._store = store
        self._saved: Tables | None = None
        self.outbox = EventLog()
        self.posts = MemoryPostRepository(store, self.outbox)
        self.accounts = MemoryAccountRepository(store)
        self.idempotency = MemoryIdempotencyKeys(store)
        self.audit = MemoryAuditLog(store)
        self.schedule = MemoryScheduleQueries(store)
        self.media = MemoryMediaRepository(store)
        self.erasures = MemoryErasureTombstones(store, pseudonyms)
        self.campaigns = MemoryCampaignRepository(store)
        self.spend = MemorySpendLedger(store, prices)
        self.analytics = MemoryAnalyticsRepository(store)
        self.insights = MemoryAccountInsights(store)

    def __enter__(self) -> Self:
        if self._store.async_unit_open:
            raise RuntimeError(
                "a synchronous memory unit of work cannot open while an asynchronous one is"
                " open on the same store (its lock is held across the other's awaits)"
            )
        self._store.lock.acquire()
        self._saved = self._store.snapshot()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()  # a no-op after commit
        finally:
            self._saved = None
            self._store.lock.release()

    def commit(self) -> None:
        assert self._saved is not None, "commit outside the unit of work"
        write_events(self._store, self.outbox.drain())
        self._saved = self._store.snapshot()

    def rollback(self) -> None:
        self.outbox.drain()
        if self._saved is not None:
            self._store.restore(self._saved)
            self._saved = self._store.snapshot()


class MemoryUnitOfWorkFactory:
    """The composition a test needs: one store, its clock, and units of work on it."""

    def __init__(
        self,
        store: MemoryStore | None = None,
        pseudonyms: Pseudonyms | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.store = store or MemoryStore(SettableClock())
        self._pseudonyms = pseudonyms or Pseudonyms(_TEST_PSEUDONYM_KEY)
        self._prices = prices or PriceTable()

    def __call__(self) -> UnitOfWork:
        return MemoryUnitOfWork(self.store, self._pseudonyms, self._prices)
