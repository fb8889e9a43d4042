"""A claimed post and the retry timing the publishing tests start from (the outcome
table, the failure streak and the engine over the memory adapters)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from post_management.domain.post import Priority
from post_management.domain.publishing import Claim, Timing
from post_management.domain.retry import RetryPolicy

TIMING = Timing(
    RetryPolicy(base=timedelta(seconds=30), max_attempts=3),
    settle_delay=timedelta(seconds=20),
    give_up=timedelta(minutes=10),
    lag_bound=timedelta(seconds=120),
)


def a_claim(now: datetime, attempt: int = 1) -> Claim:
    """Attempt `attempt` at alice's text post, claimed at `now`, five seconds after it
    fell due."""
    return Claim(
        post_id=uuid.uuid4(),
        holder=uuid.uuid4(),
        attempt_number=attempt,
        account_id=uuid.uuid4(),
        user_id="alice",
        x_user_id="4242",
        text="hello",
        media_ids=(),
        reply_to_x_post_id="",
        priority=Priority.NORMAL,
        due_at=now - timedelta(seconds=5),
        started_at=now,
        credentials=None,
    )
