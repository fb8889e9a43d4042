"""Helpers for the scheduling tests: a scheduling stub per client, SQL access, times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import text
from xmp.posts.v1 import account_pb2, scheduling_service_pb2, scheduling_service_pb2_grpc

from post_management.adapters.db.engine import make_engine
from tests.integration.grpc_fixtures import Client
from tests.support.harness import RunningServer

pb = scheduling_service_pb2


class Scheduler:
    """A client's PostSchedulingService stub, with REST-shaped helpers."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.stub = scheduling_service_pb2_grpc.PostSchedulingServiceStub(client.channel)

    def schedule(self, post_id: str, **fields: Any) -> pb.SchedulePostResponse:
        fields.setdefault("user_id", self.client.subject)
        return self.stub.SchedulePost(  # type: ignore[no-any-return]
            pb.SchedulePostRequest(post_id=post_id, **fields), metadata=self.client.metadata
        )

    def cancel(self, post_id: str, user_id: str = "") -> Any:
        return self.stub.CancelSchedule(
            pb.CancelScheduleRequest(post_id=post_id, user_id=user_id or self.client.subject),
            metadata=self.client.metadata,
        )

    def list(self, **fields: Any) -> pb.ListScheduledPostsResponse:
        fields.setdefault("user_id", self.client.subject)
        return self.stub.ListScheduledPosts(  # type: ignore[no-any-return]
            pb.ListScheduledPostsRequest(**fields), metadata=self.client.metadata
        )

    def batch(self, requests: list[pb.SchedulePostRequest], all_or_nothing: bool) -> Any:
        return self.stub.BatchSchedulePosts(
            pb.BatchSchedulePostsRequest(
                user_id=self.client.subject, requests=requests, all_or_nothing=all_or_nothing
            ),
            metadata=self.client.metadata,
        )

    def free_slots(self, account_id: str, **fields: Any) -> pb.ListFreeSlotsResponse:
        return self.stub.ListFreeSlots(  # type: ignore[no-any-return]
            pb.ListFreeSlotsRequest(account_id=account_id, **fields),
            metadata=self.client.metadata,
        )


def rules(**fields: Any) -> account_pb2.PostingRules:
    return account_pb2.PostingRules(**fields)


def failure(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def error_info(error: grpc.RpcError) -> dict[str, str]:
    """ErrorInfo.metadata of a rich status."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return dict(info.metadata)
    raise AssertionError("no ErrorInfo")


class Database:
    def __init__(self, server: RunningServer) -> None:
        url = server.database_url
        self.engine = make_engine(url, pool_size=1)

    def execute(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(statement), params)

    def rows(self, statement: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(statement), params))

    def outbox(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(event_type, aggregate_id, payload) in relay order."""
        return [
            (row.event_type, row.aggregate_id, row.payload)
            for row in self.rows("SELECT event_type, aggregate_id, payload FROM outbox ORDER BY id")
        ]

    def set_state(self, post_id: str, state: str, due_at: datetime | None = None) -> None:
        self.execute(
            "UPDATE posts SET state = :state, due_at = COALESCE(:due, due_at),"
            " version = version + 1 WHERE id = :id",
            state=state,
            due=due_at,
            id=post_id,
        )


def utc(stamp: Any) -> datetime:
    """A proto Timestamp as an aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


def z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_ahead(days: int = 3) -> date:
    return (datetime.now(UTC) + timedelta(days=days)).date()


def at_utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def next_us_transition(month: int, nth_sunday: int) -> date:
    """The next US DST change day (2nd Sunday of March, 1st Sunday of November)."""
    today = datetime.now(ZoneInfo("America/New_York")).date()
    for year in (today.year, today.year + 1):
        first = date(year, month, 1)
        sunday = first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth_sunday - 1))
        if sunday > today:
            return sunday
    raise AssertionError("unreachable")
