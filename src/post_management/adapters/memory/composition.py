"""Every memory adapter on one store and one clock, typed as the ports they stand in
for, so mypy holds each to its port when a port changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from post_management.adapters.memory.async_unit_of_work import AsyncMemoryUnitOfWorkFactory
from post_management.adapters.memory.clock import SettableClock
from post_management.adapters.memory.leader_lock import MemoryLeaderLock
from post_management.adapters.memory.learner import NearestNeighboursLearner
from post_management.adapters.memory.post_reads import MemoryPostReads
from post_management.adapters.memory.privacy import MemoryPrivacyStore
from post_management.adapters.memory.privacy_jobs import MemoryPrivacyJobStore
from post_management.adapters.memory.publish_queue import MemoryPublishQueue
from post_management.adapters.memory.repositories import MemoryMediaUploads
from post_management.adapters.memory.spend_ledger import MemorySpendMeter
from post_management.adapters.memory.store import MemoryStore
from post_management.adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from post_management.adapters.memory.x_api import MemoryXApi
from post_management.domain.privacy import Pseudonyms
from post_management.domain.x_spend import PriceTable
from post_management.ports.analytics import LeaderLock
from post_management.ports.async_unit_of_work import AsyncUnitOfWorkFactory
from post_management.ports.engagement_model import Learner
from post_management.ports.media import MediaUploads
from post_management.ports.privacy import AsyncPrivacyStore, PrivacyStore
from post_management.ports.publishing import PublishQueue
from post_management.ports.support import Clock
from post_management.ports.unit_of_work import UnitOfWorkFactory
from post_management.ports.x_api import XApi
from post_management.ports.x_spend import SpendMeter


@dataclass(frozen=True)
class MemoryAdapters:
    store: MemoryStore
    # The test's levers: the clock to move and X to script.
    settable_clock: SettableClock
    scripted_x: MemoryXApi
    uow: UnitOfWorkFactory
    # The request path's asynchronous units of work, on the same store.
    async_uow: AsyncUnitOfWorkFactory
    # GetPost's and ListScheduledPosts' reads (ports/post_reads.py), on the same store.
    post_reads: MemoryPostReads
    # The privacy RPCs' store, on the asynchronous units of work.
    privacy: AsyncPrivacyStore
    # The background jobs' removals on X and retention's purges, on synchronous units
    # of work of the same store: they read the removals the erasure queued.
    privacy_jobs: PrivacyStore
    # The metrics collector's one-holder lock.
    leader_lock: LeaderLock
    # The engagement model's learner: the nearest rows' median, no scikit-learn.
    learner: Learner
    queue: PublishQueue
    uploads: MediaUploads
    meter: SpendMeter

    @property
    def clock(self) -> Clock:
        return self.settable_clock

    @property
    def x_api(self) -> XApi:
        return self.scripted_x


def memory_adapters(
    start: datetime | None = None,
    pseudonyms: Pseudonyms | None = None,
    prices: PriceTable | None = None,
) -> MemoryAdapters:
    clock = SettableClock(start)
    store = MemoryStore(clock)
    uow = MemoryUnitOfWorkFactory(store, pseudonyms, prices)
    async_uow = AsyncMemoryUnitOfWorkFactory(uow)
    return MemoryAdapters(
        store=store,
        settable_clock=clock,
        scripted_x=MemoryXApi(clock),
        uow=uow,
        async_uow=async_uow,
        post_reads=MemoryPostReads(async_uow),
        privacy=MemoryPrivacyStore(async_uow),
        privacy_jobs=MemoryPrivacyJobStore(uow),
        leader_lock=MemoryLeaderLock(),
        learner=NearestNeighboursLearner(),
        queue=MemoryPublishQueue(store, prices),
        uploads=MemoryMediaUploads(store),
        meter=MemorySpendMeter(store, prices),
    )
