"""The publishing engine's transitions in the audit trail, with the actor "system:publisher"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from post_management.domain.post import PostState
from tests.integration.publishing_fixtures import Engine_


def _audit(engine: Engine_, resource_id: Any) -> list[tuple[str, str, dict[str, Any]]]:
    with engine.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT actor, action, after FROM audit_log WHERE resource_id = :id ORDER BY id"),
            {"id": resource_id},
        ).all()
    return [(row.actor, row.action, row.after) for row in rows]


def test_published_failed_and_paused_are_audited(engine_: Engine_) -> None:
    account = engine_.account()
    published = engine_.post(account, "goes out")
    engine_.run_until_idle()
    ((actor, action, after),) = _audit(engine_, published.id)
    assert (actor, action) == ("system:publisher", "post.published")
    assert (
        after["state"] == "PUBLISHED" and after["x_post_id"] == engine_.load(published.id).x_post_id
    )

    # Five final failures in a row pause the account (domain/publishing/failure_streak.py).
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "status", status=400, count=5)
    failing = [engine_.post(account, f"refused {index}") for index in range(5)]
    engine_.run_until_idle()
    for post in failing:
        assert engine_.load(post.id).state is PostState.FAILED
        ((actor, action, after),) = _audit(engine_, post.id)
        assert (actor, action) == ("system:publisher", "post.failed")
        assert after["last_error"]
    ((actor, action, after),) = _audit(engine_, account.id)[-1:]
    assert (actor, action) == ("system:publisher", "account.paused")
    assert after["state"] == "PAUSED" and after["reason"]


def test_suspended_by_x_is_audited(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.suspend(account.x_user_id)
    engine_.post(account, "while suspended")
    engine_.run_until_idle()
    actions = [
        (actor, action, after["state"]) for actor, action, after in _audit(engine_, account.id)
    ]
    assert ("system:publisher", "account.suspended", "SUSPENDED") in actions


def test_dead_lettered_is_audited(engine_: Engine_) -> None:
    account = engine_.account()
    post = engine_.post(account, "flaky")
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "status", status=503, count=3)
    engine_.run_until_idle()
    for _ in range(2):
        engine_.clock.advance(engine_.settings.timing.settle_delay)
        engine_.reconciler.tick()
        retried = engine_.load(post.id)
        assert retried.scheduled_for is not None
        engine_.clock.advance(retried.scheduled_for - engine_.clock.now() + timedelta(seconds=1))
        engine_.run_until_idle()
    engine_.clock.advance(engine_.settings.timing.settle_delay)
    engine_.reconciler.tick()
    assert engine_.load(post.id).state is PostState.DEAD_LETTERED
    # Retries are no transitions a user acts on: only the final one is recorded.
    ((actor, action, after),) = _audit(engine_, post.id)
    assert (actor, action) == ("system:publisher", "post.dead_lettered")
    assert after["attempt"] == 3 and "gave up after 3 attempts" in after["last_error"]
