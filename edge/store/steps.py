"""Batch work in steps with a bounded number in flight: the nightly jobs' pipeline.

The nightly rescore and the customer scores walk every consenting household in steps of
``[models] batch_households``; each step reads (on a read thread), scores (in an executor) and writes
(through the single writer). `run_steps` runs up to ``in_flight`` steps at once, so one step's read and
another's write overlap the scoring, and with ``[models] batch_workers`` = 2 two steps are scored at
the same time on the box's two cores (numpy and onnxruntime release the GIL for most of it: two steps
of 2,000 households in two threads took 0.58x the time of one after the other).

Steps start in order (asyncio's semaphore is first come, first served), so reads queue on the read
thread in step order. Steps are disjoint households, so their writes commute. If a step fails, the
steps still running are cancelled and its error propagates (the first one, if several failed); a
write already queued in the writer commits anyway (only its waiter is cancelled), which is harmless
for the same reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["run_steps", "steps_in_flight"]

T = TypeVar("T")
R = TypeVar("R")


def steps_in_flight(workers: int) -> int:
    """Steps alive at once for ``workers`` scoring threads: one more, so a read or a write is always
    under way beside the scoring."""
    return workers + 1


async def run_steps(
    items: Sequence[T], step: int, work: Callable[[Sequence[T]], Awaitable[R]], *, in_flight: int
) -> list[R]:
    """``work`` on consecutive slices of ``items`` (``step`` each), at most ``in_flight`` at a time;
    the results in the slices' order."""
    if step < 1 or in_flight < 1:
        raise ValueError(f"step and in_flight must be >= 1, got {step} and {in_flight}")
    gate = asyncio.Semaphore(in_flight)

    async def one(chunk: Sequence[T]) -> R:
        async with gate:
            return await work(chunk)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(one(items[start : start + step])) for start in range(0, len(items), step)
            ]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from failed  # the first step's error, as a plain loop would raise it
    return [task.result() for task in tasks]
