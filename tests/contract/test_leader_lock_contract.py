"""The leader lock (ports/analytics.py `LeaderLock`): one holder at a time among the
callers sharing it, the same from the memory twin and from PostgreSQL's advisory lock
(each handle a replica of its own)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from post_management.ports.analytics import LeaderLock
from tests.contract.conftest import World


def taken_elsewhere(lock: LeaderLock) -> bool:
    """Whether a caller on another thread would be the holder now (it lets go)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: _try(lock)).result(timeout=10)


def _try(lock: LeaderLock) -> bool:
    with lock.hold() as taken:
        return taken


def test_one_holder_at_a_time(world: World) -> None:
    first, second = world.leader_lock(), world.leader_lock()

    with first.hold() as taken:
        assert taken
        assert not _try(second)
        assert not taken_elsewhere(second)
        # Not re-entrant either: the holder asking again is refused too.
        assert not _try(first)


def test_a_refused_caller_leaves_the_holder_holding(world: World) -> None:
    holder, refused = world.leader_lock(), world.leader_lock()

    with holder.hold() as taken:
        assert taken
        for _ in range(3):
            assert not _try(refused)
        assert not taken_elsewhere(refused)


def test_released_at_the_end_of_the_block_and_taken_again(world: World) -> None:
    first, second = world.leader_lock(), world.leader_lock()

    for _ in range(3):
        assert _try(first)
        assert _try(second)
        assert taken_elsewhere(second)


def test_released_when_the_block_raises(world: World) -> None:
    first, second = world.leader_lock(), world.leader_lock()

    with pytest.raises(RuntimeError), first.hold() as taken:
        assert taken
        raise RuntimeError("the tick failed")

    assert _try(second)


def test_a_holder_on_another_thread_keeps_the_others_out_until_it_lets_go(
    world: World,
) -> None:
    lock = world.leader_lock()
    holding, release = threading.Event(), threading.Event()

    def hold() -> bool:
        with world.leader_lock().hold() as taken:
            holding.set()
            release.wait(timeout=10)
            return taken

    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(hold)
        try:
            assert holding.wait(timeout=10)
            assert not _try(lock)
        finally:
            release.set()
        assert holder.result(timeout=10)

    assert _try(lock)
