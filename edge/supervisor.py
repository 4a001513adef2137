"""Supervised tasks: a task that fails is logged and restarted with backoff; cancellation stops it."""

from __future__ import annotations

import asyncio
import logging
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
