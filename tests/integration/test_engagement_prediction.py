"""PredictEngagement over real gRPC and PostgreSQL, and its REST path through a real
Envoy: an account with structured history (the model), one with noise (the median,
honestly), a thin one (the median with a wide interval), a young one (the pooled
model), bad input, and the per-account fit cache."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import requests
from bench.engagement_model import START, synthetic_history
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine, text
from xmp.posts.v1 import analytics_service_pb2 as pb
from xmp.posts.v1 import analytics_service_pb2_grpc, media_pb2

from post_management.adapters.db.engine import make_engine
from post_management.domain.account import Account
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.engagement_features import PastPost
from post_management.domain.post import Post, PostState
from post_management.ports.analytics import SOURCE_POLL
from post_management.services.analytics.engagement_prediction import EngagementPredictor
from tests.conftest import truncate
from tests.fixtures.envoy import EnvoyFactory
from tests.integration.analytics_fixtures import Data
from tests.integration.grpc_fixtures import error_details, rest_as
from tests.support.harness import RunningServer, auth, settings_for


def history_shift() -> timedelta:
    """How far write_history moves synthetic dates: the same whole number of weeks for
    every account (hours of the week keep their structure in UTC, accounts their
    relative order) so that 200 posts at most 12 hours apart end two days ago."""
    latest_start = datetime.now(UTC) - timedelta(days=2 + 100)
    return timedelta(days=7) * ((latest_start - START) // timedelta(days=7))


def write_history(data: Data, account: Account, history: Sequence[PastPost]) -> None:
    """The history's posts as PUBLISHED posts with one mature snapshot each, moved by
    history_shift()."""
    shift = history_shift()
    with data.uow() as uow:
        for past in history:
            at = past.draft.at + shift
            post = Post(
                id=uuid.uuid4(),
                user_id=account.user_id,
                account_id=account.id,
                text=past.draft.text,
                created_at=at,
                updated_at=at,
                media_ids=["1"] if past.draft.media else [],
                state=PostState.PUBLISHED,
                scheduled_for=at,
                timezone="UTC",
                published_at=at,
                x_post_id=str(uuid.uuid4().int % 10**15),
            )
            uow.posts.add(post)
            likes = round(past.impressions * past.engagement_rate)
            counts = Counts(impressions=past.impressions, likes=likes)
            uow.analytics.add_snapshot(
                post.id, Snapshot(at + timedelta(days=1), counts), SOURCE_POLL
            )
        uow.commit()


@dataclass
class World:
    server: RunningServer
    engine: Engine
    data: Data
    rich: Account
    noise: Account
    thin: Account
    young: Account
    noise_history: list[PastPost]

    def stub(self) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
        return analytics_service_pb2_grpc.AnalyticsServiceStub(self.server.channel())

    def predict(self, account: Account, **fields: object) -> pb.EngagementPrediction:
        request = pb.PredictEngagementRequest(account_id=str(account.id), **fields)  # type: ignore[arg-type]
        answer: pb.EngagementPrediction = self.stub().PredictEngagement(
            request, metadata=auth(self.server.token("alice"))
        )
        return answer

    @property
    def predictor(self) -> EngagementPredictor:
        return self.server.container.services.analytics.prediction


@pytest.fixture(scope="module")
def world(machine_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    truncate(machine_database)
    server = RunningServer(settings_for(machine_database, Path(tmp_path_factory.mktemp("ep"))))
    engine = make_engine(machine_database)
    data = Data(engine)
    rich, noise, thin, young = (data.account("alice") for _ in range(4))
    noise_history = synthetic_history(200, seed=2, structured=False, account_id="noise")
    write_history(data, rich, synthetic_history(200, seed=3, account_id="rich"))
    write_history(data, noise, noise_history)
    write_history(data, thin, synthetic_history(3, seed=4, account_id="thin"))
    write_history(data, young, synthetic_history(12, seed=8, account_id="young"))
    yield World(server, engine, data, rich, noise, thin, young, noise_history)
    server.stop()
    engine.dispose()


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def next_tuesday_noon() -> datetime:
    day = datetime.now(UTC).replace(hour=12, minute=30, second=0, microsecond=0)
    while day.weekday() != 1 or day < datetime.now(UTC):
        day += timedelta(days=1)
    return day


def test_an_account_with_structure_gets_its_model(world: World) -> None:
    answer = world.predict(
        world.rich,
        text="Launch day? https://ex.am/x #launch",
        media_kind=media_pb2.MEDIA_KIND_VIDEO,
        planned_time=stamp(next_tuesday_noon()),
    )
    assert answer.history_posts == 200
    for name in ("impressions", "engagement_rate"):
        figure = getattr(answer, name)
        assert figure.basis == pb.PREDICTION_BASIS_ACCOUNT_MODEL, name
        assert figure.lower <= figure.value <= figure.upper, name
        assert figure.lower < figure.upper, name
        assert figure.error.holdout_posts == 40
        assert figure.error.beats_baseline
        assert figure.error.mean_absolute_error < figure.error.baseline_mean_absolute_error
        assert 0.5 <= figure.error.interval_coverage <= 1.0
        assert figure.effects, name
    assert not answer.notes
    # The known structure: a question lifts the rate, a midday video lifts impressions.
    rate_effects = {e.feature: e for e in answer.engagement_rate.effects}
    assert rate_effects["question"].effect > 0 and rate_effects["question"].value == "yes"
    night = world.predict(
        world.rich,
        text="Launch day? https://ex.am/x #launch",
        media_kind=media_pb2.MEDIA_KIND_VIDEO,
        planned_time=stamp(next_tuesday_noon() - timedelta(hours=10)),
    )
    assert night.impressions.value < answer.impressions.value


def test_an_account_with_noise_gets_its_median_and_is_told_why(world: World) -> None:
    answer = world.predict(world.noise, text="anything")
    impressions = [float(p.impressions) for p in world.noise_history]
    for name in ("impressions", "engagement_rate"):
        figure = getattr(answer, name)
        assert figure.basis == pb.PREDICTION_BASIS_ACCOUNT_MEDIAN, name
        assert not figure.error.beats_baseline
        assert figure.error.holdout_posts == 40
        assert not figure.effects
    assert answer.impressions.value == pytest.approx(statistics.median(impressions))
    assert answer.impressions.lower < answer.impressions.value < answer.impressions.upper
    assert len(answer.notes) == 2
    assert "did not beat its median" in answer.notes[0]


def test_a_thin_history_answers_the_median_with_a_wide_interval(world: World) -> None:
    answer = world.predict(world.thin, text="hello")
    assert answer.history_posts == 3
    figure = answer.impressions
    assert figure.basis == pb.PREDICTION_BASIS_ACCOUNT_MEDIAN
    assert not figure.HasField("error")
    assert figure.lower == pytest.approx(figure.value / 4)
    assert figure.upper == pytest.approx(figure.value * 4)
    assert any("too thin" in note for note in answer.notes)


def test_fits_are_cached_per_account_and_redone_on_new_data(world: World) -> None:
    world.predict(world.rich, text="first")
    fits = world.predictor.cache.fits
    world.predict(world.rich, text="second", media_kind=media_pb2.MEDIA_KIND_IMAGE)
    assert world.predictor.cache.fits == fits  # same history: no refit
    write_history(world.data, world.rich, synthetic_history(1, seed=11, account_id="rich"))
    world.predict(world.rich, text="third")
    assert world.predictor.cache.fits == fits + 2  # both targets refitted


def test_bad_input(world: World) -> None:
    stub = world.stub()
    metadata = auth(world.server.token("alice"))
    cases = [
        (pb.PredictEngagementRequest(account_id="nope"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            pb.PredictEngagementRequest(account_id=str(world.rich.id), text="x" * 25_001),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.PredictEngagementRequest(
                account_id=str(world.rich.id),
                planned_time=stamp(datetime.now(UTC) + timedelta(days=400)),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.PredictEngagementRequest(account_id=str(world.rich.id), media_kind=9),  # type: ignore[arg-type]
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.PredictEngagementRequest(account_id=str(uuid.uuid4())),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]
    for request, code in cases:
        with pytest.raises(grpc.RpcError) as raised:
            stub.PredictEngagement(request, metadata=metadata)
        assert raised.value.code() == code, request
    with pytest.raises(grpc.RpcError) as raised:
        stub.PredictEngagement(
            pb.PredictEngagementRequest(account_id=str(world.rich.id), text="x" * 25_001),
            metadata=metadata,
        )
    _, violations = error_details(raised.value)
    assert [field for field, _ in violations] == ["text"]


@pytest.fixture(scope="module")
def rest(world: World, envoy_factory: EnvoyFactory) -> Iterator[tuple[str, requests.Session]]:
    base = envoy_factory(grpc_port=world.server.server.port).base_url
    yield from rest_as(world.server, base, "alice")


def test_rest_path_through_envoy(world: World, rest: tuple[str, requests.Session]) -> None:
    base, session = rest
    url = f"{base}/v1/accounts/{world.rich.id}:predictEngagement"
    answer = session.post(
        url,
        json={
            "text": "Launch day? #launch",
            "mediaKind": "MEDIA_KIND_IMAGE",
            "plannedTime": next_tuesday_noon().isoformat().replace("+00:00", "Z"),
        },
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["historyPosts"] >= 200  # 201 after the cache test added one
    assert body["impressions"]["basis"] == "PREDICTION_BASIS_ACCOUNT_MODEL"
    assert body["engagementRate"]["error"]["beatsBaseline"] is True
    assert body["impressions"]["effects"][0]["feature"]
    too_long = session.post(url, json={"text": "x" * 25_001}, timeout=10)
    assert too_long.status_code == 400
    bob = session.post(
        url, json={}, headers={"authorization": f"Bearer {world.server.token('bob')}"}
    )
    assert bob.status_code == 403


def test_a_young_account_gets_the_pooled_model(world: World) -> None:
    # Last: the pool loses the noise account, which would hide the structure of the
    # others (the pooled model then honestly falls back to the median).
    with world.engine.begin() as connection:
        connection.execute(text("DELETE FROM posts WHERE account_id = :a"), {"a": world.noise.id})
    answer = world.predict(world.young, text="Ready? #new", planned_time=stamp(next_tuesday_noon()))
    assert answer.history_posts == 12
    rate = answer.engagement_rate
    assert rate.basis == pb.PREDICTION_BASIS_POOLED_MODEL
    assert rate.error.beats_baseline and rate.error.holdout_posts > 0
    assert rate.lower <= rate.value <= rate.upper
