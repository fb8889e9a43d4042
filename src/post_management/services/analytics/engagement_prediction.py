"""PredictEngagement: what a draft is likely to earn, with an honest error.

Per account, on its own mature history (posts at least MATURE_AGE old, newest
MAX_HISTORY_POSTS): with MIN_OWN_POSTS or more, the account's model; with fewer (but
MIN_LEVEL_POSTS or more), the pooled model of all accounts, which learns each post's
deviation from its account's median; otherwise, and whenever a model did not beat the
median on its hold-out, the account's median. docs/analytics.md has the method and
the measured figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from post_management.domain import engagement_evaluation as judge
from post_management.domain.account import Account
from post_management.domain.analytics import median
from post_management.domain.auth import Principal
from post_management.domain.engagement_features import (
    FEATURE_NAMES,
    Draft,
    PastPost,
    describe_value,
    features,
    history_rows,
    previous_before,
)
from post_management.domain.errors import InvalidArgument
from post_management.domain.media import MediaKind
from post_management.domain.reasons import Reason
from post_management.domain.timezones import load_zone
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.engagement_model import Learner
from post_management.ports.support import Clock
from post_management.services.analytics.engagement_fitting import (
    ENGAGEMENT_RATE,
    IMPRESSIONS,
    TARGETS,
    Fit,
    FitCache,
    HoldOut,
    Target,
    fit_target,
)
from post_management.services.shared.common import load_account

MIN_OWN_POSTS = 40  # the account's own model needs this many mature posts
MIN_LEVEL_POSTS = 5  # below this even the account's median is a guess
MAX_HISTORY_POSTS = 500  # newest mature posts an account's fit reads
POOLED_POSTS = 2000  # newest mature posts of all accounts for the pooled fit
MATURE_AGE = timedelta(hours=24)  # younger posts are still collecting impressions
THIN_FACTOR = 4.0  # a thin history's interval: median / 4 .. median x 4
MAX_TEXT_CHARS = 25_000
PLANNED_RANGE = timedelta(days=366)
TOP_EFFECTS = 3
TIME_FEATURES = ("hour_of_week", "local_hour", "weekend")
POOLED = "pooled"


class Basis(StrEnum):
    ACCOUNT_MODEL = "ACCOUNT_MODEL"
    POOLED_MODEL = "POOLED_MODEL"
    ACCOUNT_MEDIAN = "ACCOUNT_MEDIAN"


@dataclass(frozen=True)
class Effect:
    """How far the prediction moved because this feature differs from a typical post."""

    feature: str
    value: str
    effect: float


@dataclass(frozen=True)
class TargetPrediction:
    value: float
    lower: float
    upper: float
    basis: Basis
    holdout: HoldOut | None
    effects: list[Effect] = field(default_factory=list)


@dataclass(frozen=True)
class PredictionView:
    account_id: UUID
    planned_time: datetime
    history_posts: int
    impressions: TargetPrediction
    engagement_rate: TargetPrediction
    notes: list[str]


def _fingerprint(history: Sequence[PastPost]) -> tuple[int, str, int]:
    """Changes when a post matures or a mature post's impressions move."""
    newest = history[-1].draft.at.isoformat() if history else ""
    return len(history), newest, sum(p.impressions for p in history)


def _raw(target: Target, post: PastPost) -> float:
    return float(post.impressions) if target is IMPRESSIONS else post.engagement_rate


def _pooled(every: list[PastPost]) -> list[PastPost]:
    """All accounts' mature posts, of accounts with at least MIN_LEVEL_POSTS."""
    counts: dict[str, int] = {}
    for post in every:
        counts[post.account_id] = counts.get(post.account_id, 0) + 1
    return [p for p in every if counts[p.account_id] >= MIN_LEVEL_POSTS]


class EngagementPredictor:
    """PredictEngagement reads over the asynchronous unit of work (`uow`) and fits in a
    worker thread; GetOptimalTimes and SchedulePost BEST read the account's history
    (own_history) in their own unit of work and rate candidate times over it
    (rates_over)."""

    def __init__(
        self,
        uow: AsyncUnitOfWorkFactory,
        clock: Clock,
        learner: Learner,
        cache: FitCache | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._learner = learner
        self.cache = cache or FitCache()

    # --- PredictEngagement ------------------------------------------------------

    async def predict(
        self,
        principal: Principal,
        account_id: UUID,
        text: str,
        media: MediaKind | None,
        planned_time: datetime | None,
    ) -> PredictionView:
        if len(text) > MAX_TEXT_CHARS:  # size before contents
            raise InvalidArgument.for_field("text", f"must be at most {MAX_TEXT_CHARS} characters")
        now = self._clock.now()
        at = planned_time or now
        if abs(at - now) > PLANNED_RANGE:
            raise InvalidArgument.for_field(
                "planned_time", "must be within 366 days of now", reason=Reason.INVALID_DATE
            )
        async with self._uow() as uow:
            account = await load_account(uow, principal, account_id)
            cutoff = now - MATURE_AGE
            history = await self.own_history(uow, account_id, now)
            pooled = []
            if len(history) < MIN_OWN_POSTS:
                every = await uow.insights.engagement_history(None, cutoff, POOLED_POSTS)
                pooled = _pooled(every)
        # Fitting and predicting is CPU work: in a worker thread, off the loop.
        return await asyncio.to_thread(
            self._prediction, account, history, pooled, Draft(text, media, at), now
        )

    def _prediction(
        self,
        account: Account,
        history: list[PastPost],
        pooled: list[PastPost],
        draft: Draft,
        now: datetime,
    ) -> PredictionView:
        at = draft.at
        zone = load_zone(account.timezone)
        row = features(draft, zone, previous_before(history, at))
        notes: list[str] = []
        answers = {
            target.name: self._answer(target, account, history, pooled, row, now, notes)
            for target in TARGETS
        }
        return PredictionView(
            account.id,
            at,
            len(history),
            answers[IMPRESSIONS.name],
            answers[ENGAGEMENT_RATE.name],
            notes,
        )

    def _answer(
        self,
        target: Target,
        account: Account,
        history: list[PastPost],
        pooled: list[PastPost],
        row: list[float],
        now: datetime,
        notes: list[str],
    ) -> TargetPrediction:
        values = [_raw(target, p) for p in history]
        if len(history) >= MIN_OWN_POSTS:
            fit = self.cache.get(
                (str(account.id), target.name),
                _fingerprint(history),
                now,
                lambda: fit_target(self._learner, target, history_rows(history), values),
            )
            if fit.model is not None:
                return self._modelled(target, fit, row, 0.0, Basis.ACCOUNT_MODEL)
            notes.append(
                f"{target.name}: the account's model did not beat its median on the "
                f"{fit.holdout.posts} newest posts held out; answering the median."
            )
            return TargetPrediction(
                median(values),
                judge.empirical_quantile(values, 0.1),
                judge.empirical_quantile(values, 0.9),
                Basis.ACCOUNT_MEDIAN,
                fit.holdout,
            )
        if len(history) >= MIN_LEVEL_POSTS and pooled:
            shared = self._pooled_fit(target, pooled, now)
            if shared is not None and shared.model is not None:
                level = median([target.forward(v) for v in values])
                return self._modelled(target, shared, row, level, Basis.POOLED_MODEL)
        notes.append(
            f"{target.name}: history too thin ({len(history)} measured posts at least "
            f"{int(MATURE_AGE.total_seconds() // 3600)} h old; the account's model needs "
            f"{MIN_OWN_POSTS}) and no pooled model beat the median: answering the "
            f"account's median with a wide interval."
        )
        middle = median(values)
        return TargetPrediction(
            middle,
            middle / THIN_FACTOR,
            min(middle * THIN_FACTOR, target.high),
            Basis.ACCOUNT_MEDIAN,
            None,
        )

    def _pooled_fit(self, target: Target, pooled: list[PastPost], now: datetime) -> Fit | None:
        by_account: dict[str, list[float]] = {}
        for post in pooled:
            by_account.setdefault(post.account_id, []).append(target.forward(_raw(target, post)))
        levels = {key: median(found) for key, found in by_account.items()}
        if len(pooled) < MIN_OWN_POSTS:
            return None
        return self.cache.get(
            (POOLED, target.name),
            _fingerprint(pooled),
            now,
            lambda: fit_target(
                self._learner,
                target,
                history_rows(pooled),
                [_raw(target, p) for p in pooled],
                [levels[p.account_id] for p in pooled],
            ),
        )

    def _modelled(
        self, target: Target, fit: Fit, row: list[float], level: float, basis: Basis
    ) -> TargetPrediction:
        assert fit.model is not None
        variants = [row]
        changed = []
        for index, name in enumerate(FEATURE_NAMES):
            if row[index] != fit.reference[index]:
                variant = list(row)
                variant[index] = fit.reference[index]
                variants.append(variant)
                changed.append((index, name))
        predicted = fit.model.predict(variants)
        point = predicted[0]
        value = target.raw(level + point)
        effects = [
            Effect(name, describe_value(name, row[index]), value - target.raw(level + other))
            for (index, name), other in zip(changed, predicted[1:], strict=True)
        ]
        effects = sorted(
            (e for e in effects if e.effect != 0), key=lambda e: (-abs(e.effect), e.feature)
        )[:TOP_EFFECTS]
        return TargetPrediction(
            value,
            target.raw(level + point - fit.radius),
            target.raw(level + point + fit.radius),
            basis,
            fit.holdout,
            effects,
        )

    # --- scores of candidate times (GetOptimalTimes, SchedulePost BEST) ----------

    async def own_history(
        self, uow: AsyncUnitOfWork, account_id: UUID, now: datetime
    ) -> list[PastPost]:
        """The account's mature history rates_over is fitted on."""
        return await uow.insights.engagement_history(
            account_id, now - MATURE_AGE, MAX_HISTORY_POSTS
        )

    def rates_over(
        self,
        history: list[PastPost],
        account: Account,
        candidates: Sequence[datetime],
        now: datetime,
    ) -> list[float] | None:
        """The account model's engagement rate for a typical post of the account (the
        history's median features) at each candidate time, over its history
        (own_history's); None when the account has no model that beat its median."""
        if len(history) < MIN_OWN_POSTS:
            return None
        values = [p.engagement_rate for p in history]
        fit = self.cache.get(
            (str(account.id), ENGAGEMENT_RATE.name),
            _fingerprint(history),
            now,
            lambda: fit_target(self._learner, ENGAGEMENT_RATE, history_rows(history), values),
        )
        if fit.model is None:
            return None
        zone = ZoneInfo(account.timezone)
        rows = []
        for at in candidates:
            timed = features(Draft("", None, at), zone, None)
            row = list(fit.reference)
            for name in TIME_FEATURES:
                index = FEATURE_NAMES.index(name)
                row[index] = timed[index]
            rows.append(row)
        return [ENGAGEMENT_RATE.raw(p) for p in fit.model.predict(rows)]
