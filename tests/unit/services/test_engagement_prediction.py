"""PredictEngagement, GetOptimalTimes and SchedulePost's best slot on the memory
adapters and the memory learner (adapters/memory/learner.py): which basis each
history gets (the account's model, the pooled one, the median with its reason), what
the answer carries, the fit cache, the checks before any fit, and the model's ranking
of free times. No PostgreSQL and no scikit-learn (tests/unit/conftest.py checks the
tier never imports it); tests/integration/test_engagement_prediction.py runs the same
use case on both, with the real learner."""

from __future__ import annotations

import asyncio
import random
import statistics
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from post_management.adapters.cache import AwaitedInProcessCache, InProcessCache
from post_management.adapters.memory.learner import NearestNeighboursLearner
from post_management.domain.account import Account
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.auth import Principal, Role
from post_management.domain.errors import InvalidArgument, NotFound, PermissionDenied
from post_management.domain.post import Post, PostState
from post_management.ports.analytics import SOURCE_POLL
from post_management.services.analytics.analytics import AnalyticsQueries
from post_management.services.analytics.engagement_prediction import (
    MIN_OWN_POSTS,
    Basis,
    EngagementPredictor,
    PredictionView,
)
from post_management.services.analytics.optimal_times import BestFreeTime, TimingBasis
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)
BOB = Principal("bob", Role.USER)
MIDDAY = range(12, 18)  # the hours the structured history rewards
# (impressions, engagement rate) of the i-th post published at `at`.
Earned = Callable[[int, datetime, bool], tuple[int, float]]


def structured(i: int, at: datetime, question: bool) -> tuple[int, float]:
    """A question and a midday hour lift both figures; a little deterministic noise."""
    midday = at.hour in MIDDAY
    impressions = 1000 * (2 if question else 1) * (3 if midday else 1) + (i * 53 % 11) * 10
    rate = 0.02 + (0.04 if question else 0) + (0.03 if midday else 0) + (i * 37 % 7) * 0.001
    return impressions, rate


def noise(seed: int) -> Earned:
    draw = random.Random(seed)

    def earned(i: int, at: datetime, question: bool) -> tuple[int, float]:
        return draw.randint(100, 10_000), draw.uniform(0.0, 0.2)

    return earned


def history(world: EngineWorld, account: Account, posts: int, earned: Earned) -> None:
    """`posts` measured posts 7 hours apart (every hour of the week comes round), the
    newest two days old; every third a question. Each has one snapshot, a day after it
    was published: mature."""
    newest = world.clock.now() - timedelta(days=2)
    with world.uow() as uow:
        for i in range(posts):
            at = newest - timedelta(hours=7 * (posts - 1 - i))
            question = i % 3 == 0
            post = Post(
                id=uuid.uuid4(),
                user_id=account.user_id,
                account_id=account.id,
                text="Ready? #go" if question else "Ready. #go",
                created_at=at,
                updated_at=at,
                state=PostState.PUBLISHED,
                scheduled_for=at,
                published_at=at,
                x_post_id=str(uuid.uuid4().int % 10**15),
            )
            uow.posts.add(post)
            impressions, rate = earned(i, at, question)
            counts = Counts(impressions=impressions, likes=round(impressions * rate))
            uow.analytics.add_snapshot(
                post.id, Snapshot(at + timedelta(days=1), counts), SOURCE_POLL
            )
        uow.commit()


def predictor(world: EngineWorld) -> EngagementPredictor:
    return EngagementPredictor(world.async_uow, world.clock, NearestNeighboursLearner())


def midday_tomorrow(world: EngineWorld, hour: int = 14) -> datetime:
    return (world.clock.now() + timedelta(days=1)).replace(hour=hour, minute=30)


def predict(
    service: EngagementPredictor,
    account: Account,
    text: str,
    at: datetime | None = None,
    principal: Principal = ALICE,
) -> PredictionView:
    return asyncio.run(service.predict(principal, account.id, text, None, at))


def test_an_account_with_structure_gets_its_model_and_its_effects() -> None:
    world = EngineWorld()
    account = world.account()
    history(world, account, 60, structured)
    service = predictor(world)

    answer = predict(service, account, "Ready? #go", midday_tomorrow(world))
    assert answer.history_posts == 60 and not answer.notes
    for figure in (answer.impressions, answer.engagement_rate):
        assert figure.basis is Basis.ACCOUNT_MODEL
        assert figure.holdout is not None and figure.holdout.posts == 12
        assert figure.holdout.beats_baseline
        assert figure.holdout.mae < figure.holdout.baseline_mae
        assert figure.lower <= figure.value <= figure.upper
        # A question differs from the typical post (which asks none): it is named.
        assert "question" in {e.feature for e in figure.effects}
    # The structure comes through: a question at midday earns more than a statement at
    # night, on both figures.
    night = predict(service, account, "Ready. #go", midday_tomorrow(world, hour=2))
    assert night.impressions.value < answer.impressions.value
    assert night.engagement_rate.value < answer.engagement_rate.value
    rate_effects = {e.feature: e for e in answer.engagement_rate.effects}
    assert rate_effects["question"].effect > 0 and rate_effects["question"].value == "yes"


def test_fits_are_cached_per_account_and_redone_on_new_data() -> None:
    world = EngineWorld()
    account = world.account()
    history(world, account, 60, structured)
    service = predictor(world)

    predict(service, account, "first")
    assert service.cache.fits == 2  # one per target
    predict(service, account, "second?")
    assert service.cache.fits == 2  # the same history: no refit
    history(world, account, 1, structured)  # one more mature post
    predict(service, account, "third")
    assert service.cache.fits == 4


def test_an_account_with_noise_gets_its_median_and_is_told_why() -> None:
    world = EngineWorld()
    account = world.account()
    history(world, account, 60, noise(2))
    answer = predict(predictor(world), account, "anything")

    for figure in (answer.impressions, answer.engagement_rate):
        assert figure.basis is Basis.ACCOUNT_MEDIAN
        assert figure.holdout is not None and not figure.holdout.beats_baseline
        assert not figure.effects
    impressions = [float(p) for p in _impressions(world, account)]
    assert answer.impressions.value == pytest.approx(statistics.median(impressions))
    assert answer.impressions.lower < answer.impressions.value < answer.impressions.upper
    assert len(answer.notes) == 2 and "did not beat its median" in answer.notes[0]


def _impressions(world: EngineWorld, account: Account) -> list[int]:
    async def read() -> list[int]:
        async with world.async_uow() as uow:
            found = await uow.insights.engagement_history(account.id, world.clock.now(), 1000)
        return [p.impressions for p in found]

    return asyncio.run(read())


def test_a_thin_history_answers_the_median_with_a_wide_interval() -> None:
    world = EngineWorld()
    account = world.account()
    history(world, account, 3, structured)
    service = predictor(world)
    answer = predict(service, account, "hello")

    assert answer.history_posts == 3
    figure = answer.impressions
    assert (figure.basis, figure.holdout) == (Basis.ACCOUNT_MEDIAN, None)
    assert figure.value == statistics.median(_impressions(world, account))
    assert (figure.lower, figure.upper) == (figure.value / 4, figure.value * 4)
    assert any("too thin" in note for note in answer.notes)
    assert service.cache.fits == 0  # nothing to fit on: no fit, no pool read either


def test_a_young_account_gets_the_pooled_model() -> None:
    world = EngineWorld()
    for _ in range(2):
        history(world, world.account(), 80, structured)
    young = world.account()
    history(world, young, 12, structured)
    answer = predict(predictor(world), young, "Ready? #new", midday_tomorrow(world))

    assert answer.history_posts == 12 < MIN_OWN_POSTS
    rate = answer.engagement_rate
    assert rate.basis is Basis.POOLED_MODEL
    assert rate.holdout is not None and rate.holdout.beats_baseline
    assert rate.lower <= rate.value <= rate.upper


def test_bad_input_and_anothers_account_are_refused_before_any_fit() -> None:
    world = EngineWorld()
    account = world.account()
    history(world, account, 60, structured)
    service = predictor(world)
    now = world.clock.now()

    with pytest.raises(InvalidArgument) as too_long:
        predict(service, account, "x" * 25_001)
    assert too_long.value.violations[0].field == "text"
    with pytest.raises(InvalidArgument) as too_far:
        predict(service, account, "x", now + timedelta(days=367))
    assert too_far.value.violations[0].field == "planned_time"
    with pytest.raises(PermissionDenied):
        predict(service, account, "x", principal=BOB)
    with pytest.raises(NotFound):
        asyncio.run(service.predict(ALICE, uuid.uuid4(), "x", None, None))
    assert service.cache.fits == 0


def analytics(world: EngineWorld, service: EngagementPredictor) -> AnalyticsQueries:
    return AnalyticsQueries(
        world.async_uow, world.clock, AwaitedInProcessCache(InProcessCache()), predictor=service
    )


def test_optimal_times_rank_by_the_model_where_it_beat_the_median() -> None:
    world = EngineWorld()
    account = world.account()
    history(world, account, 60, structured)
    service = predictor(world)

    view = asyncio.run(analytics(world, service).optimal_times(ALICE, account.id, 3, 4))
    assert view.basis is TimingBasis.ENGAGEMENT_MODEL
    assert len(view.slots) == 4
    assert all(slot.start.hour in MIDDAY for slot in view.slots), view.slots
    assert [s.score for s in view.slots] == sorted((s.score for s in view.slots), reverse=True)
    assert all(
        world.clock.now() <= s.start < world.clock.now() + timedelta(days=3) for s in view.slots
    )
    # SchedulePost's best slot ranks by the same model, over the same cached fit.
    fits = service.cache.fits
    best = BestFreeTime(service)

    async def best_time() -> datetime | None:
        async with world.async_uow() as uow:
            return await best.best_free_time(uow, account, [], world.clock.now(), timedelta(days=3))

    found = asyncio.run(best_time())
    assert found is not None and found.hour in MIDDAY
    assert found == max(view.slots, key=lambda s: (s.score, -s.start.timestamp())).start
    assert service.cache.fits == fits


def test_optimal_times_fall_back_to_the_hour_of_week_without_a_model() -> None:
    world = EngineWorld()
    noisy, thin = world.account(), world.account()
    history(world, noisy, 60, noise(5))
    history(world, thin, 10, structured)
    queries = analytics(world, predictor(world))

    for account in (noisy, thin):
        view = asyncio.run(queries.optimal_times(ALICE, account.id, 2, 3))
        assert view.basis is TimingBasis.HOUR_OF_WEEK, account
        assert len(view.slots) == 3
