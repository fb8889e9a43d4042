"""A tick that fills every free slot is followed by a catch-up claim as soon as half
the slots are free again: a burst larger than the slots leaves within about one X
call of its due time, not one dispatch interval per batch."""

from __future__ import annotations

import time

from post_management.domain.post import PostState
from tests.integration.publishing_fixtures import Engine_


def test_a_full_batch_is_followed_without_waiting_for_the_next_tick(engine_: Engine_) -> None:
    slots = engine_.settings.max_in_flight
    posts = [engine_.post(engine_.account(), f"burst {i}") for i in range(slots + slots // 2)]

    assert engine_.dispatcher.tick() == slots  # one tick, and no other
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(engine_.load(p.id).state is PostState.PUBLISHED for p in posts):
            break
        time.sleep(0.1)
    engine_.dispatcher.drain()

    assert [engine_.load(p.id).state for p in posts] == [PostState.PUBLISHED] * len(posts)
