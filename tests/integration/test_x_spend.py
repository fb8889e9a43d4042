"""The X spend ledger and GetXSpend over real gRPC and PostgreSQL (and REST through a
real Envoy), on a fixed set of calls whose costs are worked out by hand.

Calls of account A (alice), at X's published prices:

| day | purpose | kind | units (resources) | billed | cost (micro-dollars) |
|---|---|---|---|---|---|
| D1 | publish p1 (campaign C) | post_create | 1 | 1 | 15,000 |
| D1 | publish p2 | post_create_with_url | 1 | 1 | 200,000 |
| D1 | publish p3 | post_create, refused by X | 0 | 0 | 0 |
| D1 | metrics | post_read | 3 (r1 r2 r3) | 3 | 15,000 |
| D1 | metrics | post_read | 3 (r1 r2 r4): r1, r2 read today | 1 | 5,000 |
| D1 | growth | user_read | 1 (u1) | 1 | 10,000 |
| D2 | metrics | post_read | 1 (r1): a new day | 1 | 5,000 |
| D2 | reconcile | post_read | 2 (r5 r6) | 2 | 10,000 |

Total 260,000: publishing 215,000 over 2 published posts (107,500 each), the collector
(metrics + growth) 35,000, the reconciler 10,000.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import requests
from sqlalchemy import Engine, text
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    account_service_pb2_grpc,
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    campaign_pb2,
    campaign_service_pb2,
    campaign_service_pb2_grpc,
)

from post_management.adapters.db.engine import make_engine
from post_management.domain.account import Account
from post_management.domain.post import PostState
from post_management.domain.x_spend import CallKind, Metered, Outcome, Purpose
from post_management.observability.metrics import X_SPEND
from tests.conftest import truncate
from tests.fixtures.envoy import EnvoyFactory
from tests.integration.analytics_fixtures import Data
from tests.integration.grpc_fixtures import rest_as
from tests.support.harness import RunningServer, auth

D1 = datetime(2026, 11, 10, 9, tzinfo=UTC)
D2 = D1 + timedelta(days=1)


@dataclass
class World:
    server: RunningServer
    engine: Engine
    account: Account
    campaign_id: str
    posts: dict[str, uuid.UUID]

    def metadata(self, subject: str = "alice") -> tuple[tuple[str, str], ...]:
        return auth(self.server.token(subject))

    def analytics(self) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
        return analytics_service_pb2_grpc.AnalyticsServiceStub(self.server.channel())


@pytest.fixture(scope="module")
def world(server: RunningServer, machine_database: str) -> Iterator[World]:
    truncate(machine_database)
    engine = make_engine(machine_database)
    data = Data(engine)
    account = data.account("alice")
    campaign = campaign_service_pb2_grpc.CampaignServiceStub(server.channel()).CreateCampaign(
        campaign_service_pb2.CreateCampaignRequest(
            campaign=campaign_pb2.Campaign(user_id="alice", name="C")
        ),
        metadata=auth(server.token("alice")),
    )
    p1 = data.post(account, published_at=D1 + timedelta(minutes=1))
    p2 = data.post(account, published_at=D1 + timedelta(minutes=2))
    p3 = data.post(account, PostState.FAILED, due_at=D1)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE posts SET campaign_id = :c WHERE id = :id"),
            {"c": campaign.id, "id": p1.id},
        )
    r = [f"{uuid.uuid4().hex[:10]}{n}" for n in range(7)]  # X ids unique to this run

    def call(at: datetime, kind: CallKind, purpose: Purpose, **extra: object) -> Metered:
        return Metered(at, kind, purpose, "alice", account.id, **extra)  # type: ignore[arg-type]

    entries = [
        call(D1, CallKind.POST_CREATE, Purpose.PUBLISH, post_id=p1.id),
        call(D1, CallKind.POST_CREATE_WITH_URL, Purpose.PUBLISH, post_id=p2.id),
        call(
            D1,
            CallKind.POST_CREATE,
            Purpose.PUBLISH,
            post_id=p3.id,
            units=0,
            outcome=Outcome.REFUSED,
        ),
        call(D1, CallKind.POST_READ, Purpose.METRICS, units=3, resources=(r[1], r[2], r[3])),
        call(D1, CallKind.POST_READ, Purpose.METRICS, units=3, resources=(r[1], r[2], r[4])),
        call(D1, CallKind.USER_READ, Purpose.GROWTH, resources=(r[0],)),
        call(D2, CallKind.POST_READ, Purpose.METRICS, units=1, resources=(r[1],)),
        call(D2, CallKind.POST_READ, Purpose.RECONCILE, units=2, resources=(r[5], r[6])),
    ]
    counted = X_SPEND.labels(kind="post_read")._value.get()
    with data.uow() as uow:
        assert uow.spend.record(entries) == 260_000
        uow.commit()
    # The Prometheus counter follows (post reads: 35,000 micro-dollars).
    assert X_SPEND.labels(kind="post_read")._value.get() - counted == pytest.approx(0.035)
    posts = {"p1": p1.id, "p2": p2.id, "p3": p3.id}
    yield World(server, engine, account, campaign.id, posts)
    engine.dispose()


def period() -> dict[str, str]:
    return {"from_date": "2026-11-01", "to_date": "2026-11-30"}


def test_account_spend_by_hand(world: World) -> None:
    spend = world.analytics().GetXSpend(
        analytics_service_pb2.GetXSpendRequest(account_id=str(world.account.id), **period()),
        metadata=world.metadata(),
    )
    assert spend.total_micros == 260_000
    kinds = {k.kind: (k.calls, k.units, k.charged_units, k.cost_micros, k.refused_calls)
             for k in spend.by_kind}  # fmt: skip
    assert kinds == {
        "post_create": (2, 1, 1, 15_000, 1),
        "post_create_with_url": (1, 1, 1, 200_000, 0),
        "post_read": (4, 9, 7, 35_000, 0),
        "user_read": (1, 1, 1, 10_000, 0),
    }
    purposes = {p.purpose: p.cost_micros for p in spend.by_purpose}
    assert purposes == {"publish": 215_000, "metrics": 25_000, "growth": 10_000,
                        "reconcile": 10_000}  # fmt: skip
    assert spend.published_posts == 2
    assert spend.cost_per_published_post_micros == 107_500
    assert spend.metrics_collector_micros == 35_000
    assert spend.reconciler_micros == 10_000
    daily = {(d.date, d.kind): (d.calls, d.units, d.cost_micros) for d in spend.daily}
    assert daily == {
        ("2026-11-10", "post_create"): (2, 1, 15_000),
        ("2026-11-10", "post_create_with_url"): (1, 1, 200_000),
        ("2026-11-10", "post_read"): (2, 6, 20_000),
        ("2026-11-10", "user_read"): (1, 1, 10_000),
        ("2026-11-11", "post_read"): (2, 3, 15_000),
    }
    assert spend.period_start.ToDatetime(UTC) == datetime(2026, 11, 1, tzinfo=UTC)


def test_user_and_campaign_scopes(world: World) -> None:
    stub = world.analytics()
    user = stub.GetXSpend(
        analytics_service_pb2.GetXSpendRequest(user_id="alice", **period()),
        metadata=world.metadata(),
    )
    assert user.total_micros == 260_000 and user.published_posts == 2
    campaign = stub.GetXSpend(
        analytics_service_pb2.GetXSpendRequest(campaign_id=world.campaign_id, **period()),
        metadata=world.metadata(),
    )
    # Only p1's publish belongs to the campaign; reads were made for no single post.
    assert campaign.total_micros == 15_000
    assert campaign.published_posts == 1 and campaign.cost_per_published_post_micros == 15_000
    empty = stub.GetXSpend(
        analytics_service_pb2.GetXSpendRequest(
            user_id="alice", from_date="2026-10-01", to_date="2026-10-31"
        ),
        metadata=world.metadata(),
    )
    assert empty.total_micros == 0 and not empty.by_kind


def test_bad_requests_and_other_users(world: World) -> None:
    stub = world.analytics()
    bad = [
        analytics_service_pb2.GetXSpendRequest(),
        analytics_service_pb2.GetXSpendRequest(user_id="alice", account_id=str(world.account.id)),
        analytics_service_pb2.GetXSpendRequest(user_id="alice", from_date="2020-01-01"),
        analytics_service_pb2.GetXSpendRequest(account_id="not-a-uuid"),
    ]
    for request in bad:
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetXSpend(request, metadata=world.metadata())
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    with pytest.raises(grpc.RpcError) as foreign:
        stub.GetXSpend(
            analytics_service_pb2.GetXSpendRequest(account_id=str(world.account.id)),
            metadata=world.metadata("bob"),
        )
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_budget_round_trip_and_month_to_date(world: World) -> None:
    accounts = account_service_pb2_grpc.AccountServiceStub(world.server.channel())
    metadata = world.metadata()
    updated = accounts.UpdateAccount(
        account_service_pb2.UpdateAccountRequest(
            account=account_pb2.Account(
                id=str(world.account.id), x_monthly_budget_micros=1_000_000
            ),
            update_mask={"paths": ["x_monthly_budget_micros"]},
        ),
        metadata=metadata,
    )
    assert updated.HasField("x_monthly_budget_micros")
    assert updated.x_monthly_budget_micros == 1_000_000 and not updated.x_budget_reached
    now = datetime.now(UTC)
    with Data(world.engine).uow() as uow:
        uow.spend.record(
            [Metered(now, CallKind.POST_CREATE, Purpose.PUBLISH, "alice", world.account.id)]
        )
        uow.commit()
    spend = world.analytics().GetXSpend(
        analytics_service_pb2.GetXSpendRequest(account_id=str(world.account.id)),
        metadata=metadata,
    )
    assert (spend.monthly_budget_micros, spend.month_to_date_micros) == (1_000_000, 15_000)
    with pytest.raises(grpc.RpcError) as negative:
        accounts.UpdateAccount(
            account_service_pb2.UpdateAccountRequest(
                account=account_pb2.Account(id=str(world.account.id), x_monthly_budget_micros=-1),
                update_mask={"paths": ["x_monthly_budget_micros"]},
            ),
            metadata=metadata,
        )
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    cleared = accounts.UpdateAccount(
        account_service_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=str(world.account.id)),
            update_mask={"paths": ["x_monthly_budget_micros"]},
        ),
        metadata=metadata,
    )
    assert not cleared.HasField("x_monthly_budget_micros")


@pytest.fixture(scope="module")
def rest(world: World, envoy_factory: EnvoyFactory) -> Iterator[tuple[str, requests.Session]]:
    base = envoy_factory(grpc_port=world.server.server.port).base_url
    yield from rest_as(world.server, base, "alice")


def test_rest_paths_through_envoy(world: World, rest: tuple[str, requests.Session]) -> None:
    base, session = rest
    query = {"fromDate": "2026-11-01", "toDate": "2026-11-30"}
    for path, total in [
        (f"/v1/accounts/{world.account.id}/xSpend", "260000"),
        ("/v1/users/alice/xSpend", "260000"),
        (f"/v1/campaigns/{world.campaign_id}/xSpend", "15000"),
    ]:
        answer = session.get(base + path, params=query, timeout=10)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["totalMicros"] == total  # int64 as a string
    denied = session.get(f"{base}/v1/users/bob/xSpend", timeout=10)
    assert denied.status_code == 403
