"""Our own count of X's posting budgets, so a busy account or app waits instead of
earning 429s (docs/reliability.md, "Posting budgets").

A post takes one unit of its account's budget and one of the app's together, or
none; a unit whose create-post call never left (no credentials, media failed, X
not reachable) is given back. The app budget is everyone's: when it is spent the
dispatcher claims nothing until a unit frees, so no account is marked as waiting
for it, and the posts then leave in the claim's (priority, due time) order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from post_management.domain import events
from post_management.domain.post import PostState
from post_management.domain.publishing import Claim, Settlement, outcomes
from post_management.ports.publishing import Budget, RateLimiter, Refused, Taken

log = logging.getLogger(__name__)

APP_KEY = "x:app"


@dataclass(frozen=True)
class BudgetSettings:
    user_limit: int
    user_window: timedelta
    app_limit: int
    app_window: timedelta


class PostBudgets:
    def __init__(self, limiter: RateLimiter, settings: BudgetSettings) -> None:
        self._limiter = limiter
        self._settings = settings
        self._app = Budget(APP_KEY, settings.app_limit, settings.app_window)

    def take(self, claim: Claim, now: datetime) -> Taken | Refused:
        """One create-post call's units of the account's and the app's budgets."""
        user = Budget(
            f"x:user:{claim.account_id}", self._settings.user_limit, self._settings.user_window
        )
        return self._limiter.take((user, self._app), now)

    def give_back(self, taken: Taken) -> None:
        self._limiter.release(taken)

    def app_room(self, now: datetime) -> int:
        return self._limiter.room(self._app, now)

    def refused(self, claim: Claim, refusal: Refused, now: datetime) -> Settlement:
        """Back to the queue with its due time and priority; the attempt is refunded.
        Only the account's own budget makes the account wait and says so."""
        if refusal.key != APP_KEY:
            return outcomes.rate_limited(
                claim, refusal.free_at, events.RateLimitScope.USER, self._settings.user_limit, now
            )
        return Settlement(
            state=PostState.SCHEDULED,
            outcome="rate_limited",
            detail=f"app posting budget spent until {refusal.free_at.isoformat()}",
            refund_attempt=True,
        )
