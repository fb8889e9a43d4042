"""Clients racing for one free time on one account: exactly one gets it.

Each client has its own channel and thread; a barrier releases them together,
so without the account row lock several would read "free" and all write it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest

from tests.integration.grpc_fixtures import Client, error_details
from tests.integration.scheduling_support import (
    Scheduler,
    at_utc,
    day_ahead,
    pb,
    rules,
    utc,
)
from tests.support.harness import RunningServer

CLIENTS = 8


def _race(
    server: RunningServer, post_ids: list[str], call: Callable[[Scheduler, str], object]
) -> list[object]:
    barrier = threading.Barrier(len(post_ids))
    outcomes: list[object] = [None] * len(post_ids)

    def run(index: int) -> None:
        client = Client(server, "alice")
        try:
            barrier.wait()
            outcomes[index] = call(Scheduler(client), post_ids[index])
        except grpc.RpcError as error:
            outcomes[index] = error
        finally:
            client.channel.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(post_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.parametrize("policy", [pb.CONFLICT_POLICY_MOVE, pb.CONFLICT_POLICY_REJECT])
def test_one_slot_many_clients(alice: Client, clean: RunningServer, policy: int) -> None:
    account = alice.create_account(posting_rules=rules(min_interval_minutes=60))
    post_ids = [alice.create_post(account.id, f"post {i}").id for i in range(CLIENTS)]
    target = at_utc(day_ahead(), 12)

    def schedule(scheduler: Scheduler, post_id: str) -> object:
        return scheduler.schedule(post_id, scheduled_for=target.isoformat(), conflict_policy=policy)

    outcomes = _race(clean, post_ids, schedule)
    wins = [o for o in outcomes if isinstance(o, pb.SchedulePostResponse)]
    errors = [o for o in outcomes if isinstance(o, grpc.RpcError)]
    assert len(wins) + len(errors) == CLIENTS
    at_target = [w for w in wins if utc(w.post.scheduled_for) == target]
    assert len(at_target) == 1 and not at_target[0].moved
    if policy == pb.CONFLICT_POLICY_MOVE:
        assert not errors
        times = sorted(utc(w.post.scheduled_for) for w in wins)
        assert all(b - a >= timedelta(minutes=60) for a, b in itertools.pairwise(times))
        assert all(w.moved for w in wins if w is not at_target[0])
    else:
        assert len(errors) == CLIENTS - 1
        for error in errors:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_details(error)[0] == "SCHEDULE_CONFLICT"
