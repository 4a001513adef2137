"""`edge.store.steps.run_steps`: the nightly jobs' bounded pipeline of steps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from edge.store.steps import run_steps, steps_in_flight


async def test_results_come_in_the_order_of_the_slices_whatever_order_they_finish_in() -> None:
    async def work(chunk: Sequence[int]) -> list[int]:
        await asyncio.sleep(0.001 * (10 - chunk[0] // 3))  # later slices finish first
        return list(chunk)

    out = await run_steps(list(range(10)), 3, work, in_flight=4)
    assert out == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


@pytest.mark.parametrize("in_flight", [1, 2, 3])
async def test_never_more_than_in_flight_steps_at_once_and_they_start_in_order(in_flight: int) -> None:
    alive = 0
    peak = 0
    started: list[int] = []

    async def work(chunk: Sequence[int]) -> int:
        nonlocal alive, peak
        started.append(chunk[0])
        alive += 1
        peak = max(peak, alive)
        await asyncio.sleep(0.002)
        alive -= 1
        return len(chunk)

    sizes = await run_steps(list(range(20)), 2, work, in_flight=in_flight)
    assert sizes == [2] * 10
    assert peak == in_flight
    assert started == list(range(0, 20, 2))


async def test_a_failing_step_cancels_the_others_and_its_error_propagates() -> None:
    cancelled: list[int] = []

    async def work(chunk: Sequence[int]) -> int:
        if chunk[0] == 2:
            raise RuntimeError("step 2 broke")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(chunk[0])
            raise
        return 0

    with pytest.raises(RuntimeError, match="step 2 broke"):
        await run_steps([0, 1, 2, 3], 1, work, in_flight=3)
    assert {0, 1} <= set(cancelled)
    assert 2 not in cancelled


async def test_no_items_no_steps() -> None:
    async def work(chunk: Sequence[int]) -> int:
        raise AssertionError("no step expected")

    assert await run_steps([], 5, work, in_flight=2) == []


@pytest.mark.parametrize(("step", "in_flight"), [(0, 1), (1, 0)])
async def test_sizes_below_one_are_refused(step: int, in_flight: int) -> None:
    async def work(chunk: Sequence[int]) -> int:
        return 0

    with pytest.raises(ValueError, match="must be >= 1"):
        await run_steps([1], step, work, in_flight=in_flight)


def test_one_step_more_than_scoring_threads_is_alive() -> None:
    assert steps_in_flight(1) == 2
    assert steps_in_flight(2) == 3
