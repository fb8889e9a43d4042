"""The SQL unit of work: one connection, one transaction, rollback by default; the
events of its changes are written to the outbox when it commits, in that transaction."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.account_repository import SqlAccountRepository
from post_management.adapters.db.analytics_repository import SqlAnalyticsRepository
from post_management.adapters.db.campaign_repository import SqlCampaignRepository
from post_management.adapters.db.insights_repository import SqlAccountInsights
from post_management.adapters.db.media_repository import SqlMediaRepository
from post_management.adapters.db.outbox import write_events
from post_management.adapters.db.post_repository import SqlPostRepository
from post_management.adapters.db.privacy_repository import SqlErasureTombstones
from post_management.adapters.db.records import SqlAuditLog, SqlIdempotencyKeys
from post_management.adapters.db.schedule_queries import SqlScheduleQueries
from post_management.adapters.db.spend_ledger import SqlSpendLedger
from post_management.adapters.db.telemetry import UnitOfWorkTrace
from post_management.domain.errors import Unavailable
from post_management.domain.events import EventLog
from post_management.domain.privacy import Pseudonyms
from post_management.domain.reasons import Reason
from post_management.domain.x_spend import PriceTable
from post_management.ports.analytics import AccountInsights, AnalyticsRepository
from post_management.ports.campaigns import CampaignRepository
from post_management.ports.media import MediaRepository
from post_management.ports.privacy import ErasureTombstones
from post_management.ports.repositories import (
    AccountRepository,
    AuditLog,
    DuplicateKey,
    IdempotencyKeys,
    PostRepository,
)
from post_management.ports.schedule_queries import ScheduleQueries
from post_management.ports.x_spend import SpendLedger

UNIQUE_VIOLATION = "23505"


class SqlUnitOfWork:
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
    # The analytics repositories: this is also the analytics use cases' unit of work.
    analytics: AnalyticsRepository
    insights: AccountInsights

    def __init__(
        self,
        engine: Engine,
        box: FernetBox,
        pseudonyms: Pseudonyms,
        prices: PriceTable | None = None,
    ) -> None:
        self._engine = engine
        self._box = box
        self._pseudonyms = pseudonyms
        self._prices = prices or PriceTable()
        self._conn: Connection | None = None
        self._trace: UnitOfWorkTrace | None = None

    def __enter__(self) -> Self:
        try:
            self._conn = self._engine.connect()
            self._conn.begin()
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable(
                "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
            ) from exc
        self._trace = UnitOfWorkTrace()
        self.outbox = EventLog()
        self.posts = SqlPostRepository(self._conn, self.outbox)
        self.accounts = SqlAccountRepository(self._conn, self._box)
        self.idempotency = SqlIdempotencyKeys(self._conn)
        self.audit = SqlAuditLog(self._conn)
        self.schedule = SqlScheduleQueries(self._conn)
        self.media = SqlMediaRepository(self._conn)
        self.erasures = SqlErasureTombstones(self._conn, self._pseudonyms)
        self.campaigns = SqlCampaignRepository(self._conn)
        self.spend = SqlSpendLedger(self._conn, self._prices)
        self.analytics = SqlAnalyticsRepository(self._conn, self._box)
        self.insights = SqlAccountInsights(self._conn, self._box)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            self._conn.rollback()  # a no-op after commit
        finally:
            self._conn.close()
            self._conn = None
            if self._trace is not None:
                self._trace.finish(exc)
                self._trace = None
        # Translate driver errors into the ports' vocabulary so services and the
        # gRPC edge never see SQLAlchemy types.
        if isinstance(exc, IntegrityError) and _sqlstate(exc) == UNIQUE_VIOLATION:
            raise DuplicateKey(_constraint(exc)) from exc
        if isinstance(exc, OperationalError | InterfaceError):
            raise Unavailable(
                "the database is unavailable", reason=Reason.DATABASE_UNAVAILABLE
            ) from exc

    def commit(self) -> None:
        assert self._conn is not None
        written = self.outbox.drain()
        write_events(self._conn, written)
        self._conn.commit()
        if self._trace is not None:
            self._trace.committed(written)

    def rollback(self) -> None:
        assert self._conn is not None
        self.outbox.drain()
        self._conn.rollback()


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _constraint(exc: DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


class SqlUnitOfWorkFactory:
    def __init__(
        self,
        engine: Engine,
        box: FernetBox,
        pseudonyms: Pseudonyms,
        prices: PriceTable | None = None,
    ) -> None:
        self._engine = engine
        self._box = box
        # Erased users are found by their pseudonym (docs/security.md).
        self._pseudonyms = pseudonyms
        self._prices = prices

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._box, self._pseudonyms, self._prices)
