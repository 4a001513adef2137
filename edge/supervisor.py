"""Supervised tasks: a task that fails is logged and restarted with backoff; cancellation stops it
(`cancel_all` stops a group of them within a deadline)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from edge.metrics import IngestMetrics
from sensors.backoff import Backoff

log = logging.getLogger(__name__)


async def supervise(name: str, run: Callable[[], Awaitable[None]], metrics: IngestMetrics) -> None:
    backoff = Backoff(minimum=0.5, maximum=30.0)
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            delay = backoff.next_delay()
            metrics.task_restarts.inc(name)
            log.exception("task_failed", extra={"task": name, "restart_in_s": round(delay, 2)})
            await asyncio.sleep(delay)
        else:
            log.info("task_finished", extra={"task": name})
            return


async def cancel_all(tasks: list[asyncio.Task[None]], timeout_s: float) -> None:
    """Cancel and wait. Cancels again while any is still running: on Python 3.11, asyncio.wait_for
    (used inside an MQTT publish's wait for its PUBACK) can swallow a cancellation that races with its inner future."""
    deadline = time.monotonic() + timeout_s
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.25)
        if pending and time.monotonic() > deadline:
            log.error("tasks_did_not_stop", extra={"tasks": ",".join(sorted(t.get_name() for t in pending))})
            return
