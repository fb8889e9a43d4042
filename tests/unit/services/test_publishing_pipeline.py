"""The dispatcher's batching (services/publishing/pipeline.py): what tasks submit
together is written together, and each task gets its own item's result or error."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from post_management.services.publishing.pipeline import GroupCommit, run_inline


class Writer:
    def __init__(self, fail_batch: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_batch = fail_batch

    def write(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        if self.fail_batch:
            raise ConnectionError("the database went away")
        return [ValueError(f"item {i}") if i < 0 else i * 10 for i in items]


async def _submit_all(commit: GroupCommit[int, int], items: list[int]) -> list[object]:
    return list(await asyncio.gather(*(commit.submit(i) for i in items), return_exceptions=True))


def test_items_submitted_together_are_written_in_one_batch_in_order() -> None:
    writer = Writer()
    with ThreadPoolExecutor(1) as executor:
        results = asyncio.run(_submit_all(GroupCommit(writer.write, executor), [1, 2, 3, 4]))
    assert writer.batches == [[1, 2, 3, 4]]
    assert results == [10, 20, 30, 40]


def test_items_that_arrive_during_a_write_go_in_the_next_batch() -> None:
    writer = Writer()

    async def scenario(commit: GroupCommit[int, int]) -> list[int]:
        first = asyncio.ensure_future(commit.submit(1))
        await asyncio.sleep(0)  # the first batch is being written
        rest = [asyncio.ensure_future(commit.submit(i)) for i in (2, 3)]
        return [await first, *[await r for r in rest]]

    with ThreadPoolExecutor(1) as executor:
        results = asyncio.run(scenario(GroupCommit(writer.write, executor)))
    assert results == [10, 20, 30]
    assert writer.batches == [[1], [2, 3]]


def test_an_items_own_error_reaches_its_task_alone() -> None:
    writer = Writer()
    with ThreadPoolExecutor(1) as executor:
        results = asyncio.run(_submit_all(GroupCommit(writer.write, executor), [1, -2, 3]))
    assert results[0] == 10 and results[2] == 30
    assert isinstance(results[1], ValueError) and str(results[1]) == "item -2"


def test_a_failed_write_fails_every_task_of_its_batch_and_the_next_batch_still_runs() -> None:
    writer = Writer(fail_batch=True)

    async def scenario(commit: GroupCommit[int, int]) -> tuple[list[object], object]:
        failed = await _submit_all(commit, [1, 2])
        writer.fail_batch = False
        return failed, await commit.submit(3)

    with ThreadPoolExecutor(1) as executor:
        failed, later = asyncio.run(scenario(GroupCommit(writer.write, executor)))
    assert all(isinstance(r, ConnectionError) for r in failed)
    assert later == 30


def test_a_large_burst_is_cut_into_batches_of_the_maximum() -> None:
    writer = Writer()
    with ThreadPoolExecutor(1) as executor:
        commit: GroupCommit[int, int] = GroupCommit(writer.write, executor, max_batch=2)
        results = asyncio.run(_submit_all(commit, [1, 2, 3, 4, 5]))
    assert writer.batches == [[1, 2], [3, 4], [5]]
    assert results == [10, 20, 30, 40, 50]


def test_inline_runs_a_coroutine_that_never_waits_and_refuses_one_that_does() -> None:
    async def direct() -> int:
        return 7

    async def waits() -> int:
        await asyncio.sleep(0)
        return 7

    assert run_inline(direct()) == 7
    with pytest.raises(RuntimeError, match="waited for an event loop"):
        run_inline(waits())
