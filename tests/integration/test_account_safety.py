"""Repeated failures pause an account's queue until it is resumed explicitly."""

from __future__ import annotations

import json

from sqlalchemy import text

from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing.failure_streak import MAX_CONSECUTIVE_FAILURES
from tests.integration.publishing_fixtures import Engine_


def _account_state(engine_: Engine_, account_id: object) -> AccountState:
    with engine_.uow() as uow:
        stored = uow.accounts.get(account_id)  # type: ignore[arg-type]
    assert stored is not None
    return stored.state


def test_consecutive_failures_pause_the_account_with_a_reason(engine_: Engine_) -> None:
    account = engine_.account()
    posts = [engine_.post(account, f"refused {n}") for n in range(MAX_CONSECUTIVE_FAILURES + 1)]
    engine_.emulator.control.inject_fault(
        "POST", "/2/tweets", "status", status=400, count=MAX_CONSECUTIVE_FAILURES + 1
    )
    engine_.run_until_idle(rounds=3 * len(posts))

    states = [engine_.load(p.id).state for p in posts]
    assert states.count(PostState.FAILED) == MAX_CONSECUTIVE_FAILURES
    assert states.count(PostState.SCHEDULED) == 1  # waits for the resume
    assert _account_state(engine_, account.id) is AccountState.PAUSED
    with engine_.engine.connect() as connection:
        payloads = (
            connection.execute(
                text("SELECT payload FROM outbox WHERE event_type = 'account.suspended'")
            )
            .scalars()
            .all()
        )
    assert len(payloads) == 1
    body = payloads[0] if isinstance(payloads[0], dict) else json.loads(payloads[0])
    assert body["accountId"] == str(account.id)
    assert "consecutive failed posts" in body["reason"]
    assert engine_.emulator.control.counters().get("POST /2/tweets") == MAX_CONSECUTIVE_FAILURES


def test_a_success_restarts_the_count(engine_: Engine_) -> None:
    account = engine_.account()
    engine_.emulator.control.inject_fault(
        "POST", "/2/tweets", "status", status=400, count=MAX_CONSECUTIVE_FAILURES - 1
    )
    for n in range(MAX_CONSECUTIVE_FAILURES - 1):
        engine_.post(account, f"refused {n}")
    engine_.run_until_idle(rounds=3 * MAX_CONSECUTIVE_FAILURES)
    ok = engine_.post(account, "this one goes out")
    engine_.run_until_idle()
    assert engine_.load(ok.id).state is PostState.PUBLISHED
    engine_.emulator.control.inject_fault("POST", "/2/tweets", "status", status=400, count=2)
    for n in range(2):
        engine_.post(account, f"refused again {n}")
    engine_.run_until_idle()
    assert _account_state(engine_, account.id) is AccountState.ACTIVE
    with engine_.engine.connect() as connection:
        count = connection.execute(
            text("SELECT consecutive_failures FROM accounts WHERE id = :id"), {"id": account.id}
        ).scalar_one()
    assert count == 2
