"""One transaction over every repository; rolls back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from post_management.domain.events import EventLog
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
from post_management.ports.x_spend import SpendLedger


class UnitOfWork(Protocol):
    posts: PostRepository
    accounts: AccountRepository
    idempotency: IdempotencyKeys
    audit: AuditLog
    # The events of this unit of work's changes: the use case adds those no aggregate
    # records; the unit of work writes them all to the outbox when it commits.
    outbox: EventLog
    schedule: ScheduleQueries
    media: MediaRepository
    erasures: ErasureTombstones
    campaigns: CampaignRepository
    spend: SpendLedger
    analytics: AnalyticsRepository
    insights: AccountInsights

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
