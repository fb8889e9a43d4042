"""One transaction over every repository; rolls back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from post_management.ports.campaigns import CampaignRepository
from post_management.ports.media import MediaRepository
from post_management.ports.privacy import ErasureTombstones
from post_management.ports.repositories import (
    AccountRepository,
    AuditLog,
    IdempotencyKeys,
    Outbox,
    PostRepository,
)
from post_management.ports.schedule_queries import ScheduleQueries
from post_management.ports.x_spend import SpendLedger


class UnitOfWork(Protocol):
    posts: PostRepository
    accounts: AccountRepository
    idempotency: IdempotencyKeys
    audit: AuditLog
    outbox: Outbox
    schedule: ScheduleQueries
    media: MediaRepository
    erasures: ErasureTombstones
    campaigns: CampaignRepository
    spend: SpendLedger

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
