"""GetOptimalTimes and SchedulePost(SLOT_POLICY_BEST) ranked by the engagement model,
over real gRPC and PostgreSQL and through a real Envoy.

The "timed" account's engagement rate is 0.02, plus 0.03 when it posts between 12:00
and 17:59 local time (Europe/Berlin), plus noise: its model learns the hours, so both
calls pick times in that afternoon. A thin account falls back to the hour-of-week scores.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
import requests
from sqlalchemy import Engine
from xmp.posts.v1 import analytics_service_pb2 as apb
from xmp.posts.v1 import analytics_service_pb2_grpc, scheduling_service_pb2_grpc
from xmp.posts.v1 import scheduling_service_pb2 as spb

from post_management.adapters.db.engine import make_engine
from post_management.domain.account import Account
from post_management.domain.engagement_features import Draft, PastPost
from post_management.domain.post import Post, PostState
from tests.conftest import truncate
from tests.fixtures.envoy import EnvoyFactory
from tests.integration.analytics_fixtures import Data
from tests.integration.grpc_fixtures import rest_as
from tests.integration.test_engagement_prediction import history_shift, write_history
from tests.support.harness import RunningServer, auth, settings_for

BERLIN = ZoneInfo("Europe/Berlin")
GOOD_HOURS = set(range(12, 18))


def timed_history(posts: int, seed: int) -> list[PastPost]:
    rng = random.Random(seed)
    at = datetime(2026, 1, 5, tzinfo=UTC)
    history = []
    for _ in range(posts):
        at += timedelta(hours=rng.uniform(4, 12))
        # Judged where write_history puts the post: the local hour is what matters.
        good = (at + history_shift()).astimezone(BERLIN).hour in GOOD_HOURS
        rate = max(0.02 + (0.03 if good else 0.0) + rng.gauss(0, 0.004), 0.0)
        impressions = round(math.exp(rng.gauss(math.log(2000), 0.3)))
        history.append(
            PastPost("timed", "Europe/Berlin", Draft("a post", None, at), impressions, rate)
        )
    return history


@dataclass
class World:
    server: RunningServer
    engine: Engine
    data: Data
    timed: Account
    thin: Account

    def metadata(self, subject: str = "alice") -> tuple[tuple[str, str], ...]:
        return auth(self.server.token(subject))

    def draft(self, account: Account) -> Post:
        now = datetime.now(UTC)
        post = Post(
            id=uuid.uuid4(),
            user_id=account.user_id,
            account_id=account.id,
            text=f"draft {uuid.uuid4().hex}",
            created_at=now,
            updated_at=now,
            state=PostState.DRAFT,
        )
        with self.data.uow() as uow:
            uow.posts.add(post)
            uow.commit()
        return post

    def schedule(self, post: Post, **fields: object) -> spb.SchedulePostResponse:
        stub = scheduling_service_pb2_grpc.PostSchedulingServiceStub(self.server.channel())
        request = spb.SchedulePostRequest(post_id=str(post.id), user_id="alice", **fields)  # type: ignore[arg-type]
        answer: spb.SchedulePostResponse = stub.SchedulePost(request, metadata=self.metadata())
        return answer


@pytest.fixture(scope="module")
def world(machine_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    truncate(machine_database)
    server = RunningServer(settings_for(machine_database, Path(tmp_path_factory.mktemp("mt"))))
    engine = make_engine(machine_database)
    data = Data(engine)
    timed = data.account(
        "alice", timezone="Europe/Berlin", posting_rules={"min_interval_minutes": 90}
    )
    thin = data.account("alice", timezone="Europe/Berlin")
    write_history(data, timed, timed_history(200, seed=1))
    yield World(server, engine, data, timed, thin)
    server.stop()
    engine.dispose()


def berlin_hour(stamp: datetime) -> int:
    return stamp.astimezone(BERLIN).hour


def test_optimal_times_come_from_the_model_when_it_beats_the_median(world: World) -> None:
    stub = analytics_service_pb2_grpc.AnalyticsServiceStub(world.server.channel())
    answer = stub.GetOptimalTimes(
        apb.GetOptimalTimesRequest(account_id=str(world.timed.id), days=7, count=5),
        metadata=world.metadata(),
    )
    assert answer.basis == apb.TIMING_BASIS_ENGAGEMENT_MODEL
    hours = [berlin_hour(s.start.ToDatetime(tzinfo=UTC)) for s in answer.slots]
    assert len(hours) == 5 and set(hours) <= GOOD_HOURS, hours
    scores = [s.score for s in answer.slots]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.035
    thin = stub.GetOptimalTimes(
        apb.GetOptimalTimesRequest(account_id=str(world.thin.id)), metadata=world.metadata()
    )
    assert thin.basis == apb.TIMING_BASIS_HOUR_OF_WEEK and len(thin.slots) == 5


def test_schedule_best_takes_the_best_free_time_and_next_stays_the_default(world: World) -> None:
    now = datetime.now(UTC)
    best = world.schedule(world.draft(world.timed), slot_policy=spb.SLOT_POLICY_BEST)
    at = best.post.scheduled_for.ToDatetime(tzinfo=UTC)
    assert berlin_hour(at) in GOOD_HOURS and now < at < now + timedelta(days=7)
    # A second BEST post takes another good time: the account's 90-minute interval
    # keeps it away from the first.
    second = world.schedule(world.draft(world.timed), slot_policy=spb.SLOT_POLICY_BEST)
    other = second.post.scheduled_for.ToDatetime(tzinfo=UTC)
    assert berlin_hour(other) in GOOD_HOURS and abs(other - at) >= timedelta(minutes=90)
    # Without a policy: the next free time, as before (within the next minutes).
    plain = world.schedule(world.draft(world.thin))
    assert plain.post.scheduled_for.ToDatetime(tzinfo=UTC) < now + timedelta(minutes=5)
    # URGENT ignores BEST: it goes out as soon as possible.
    urgent = world.schedule(
        world.draft(world.thin), slot_policy=spb.SLOT_POLICY_BEST, priority="urgent"
    )
    assert urgent.post.scheduled_for.ToDatetime(tzinfo=UTC) < now + timedelta(minutes=5)
    # The thin account: BEST by hour-of-week scores, still a free full hour this week.
    thin = world.schedule(world.draft(world.thin), slot_policy=spb.SLOT_POLICY_BEST)
    thin_at = thin.post.scheduled_for.ToDatetime(tzinfo=UTC)
    assert thin_at.astimezone(BERLIN).minute == 0 and now < thin_at < now + timedelta(days=7)


def test_best_with_a_requested_time_is_refused(world: World) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        world.schedule(
            world.draft(world.timed),
            slot_policy=spb.SLOT_POLICY_BEST,
            scheduled_for=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "slot_policy" in (raised.value.details() or "")
    with pytest.raises(grpc.RpcError) as unknown:
        world.schedule(world.draft(world.timed), slot_policy=7)
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def rest(world: World, envoy_factory: EnvoyFactory) -> Iterator[tuple[str, requests.Session]]:
    base = envoy_factory(grpc_port=world.server.server.port).base_url
    yield from rest_as(world.server, base, "alice")


def test_rest_paths_through_envoy(world: World, rest: tuple[str, requests.Session]) -> None:
    base, session = rest
    times = session.get(f"{base}/v1/accounts/{world.timed.id}/optimalTimes?count=3", timeout=20)
    assert times.status_code == 200, times.text
    assert times.json()["basis"] == "TIMING_BASIS_ENGAGEMENT_MODEL"
    post = world.draft(world.timed)
    scheduled = session.post(
        f"{base}/api/posts/{post.id}/schedule",
        json={"userId": "alice", "slotPolicy": "SLOT_POLICY_BEST"},
        timeout=20,
    )
    assert scheduled.status_code == 200, scheduled.text
    at = datetime.fromisoformat(scheduled.json()["post"]["scheduledFor"].replace("Z", "+00:00"))
    assert berlin_hour(at) in GOOD_HOURS
    refused = session.post(
        f"{base}/api/posts/{world.draft(world.timed).id}/schedule",
        json={"userId": "alice", "slotPolicy": "SLOT_POLICY_BEST", "scheduledFor": "2099-01-01"},
        timeout=20,
    )
    assert refused.status_code == 400
