"""Keeping `edge.store.history_cache` up to date: before each nightly job reads it, the purchases
stored since the last refresh are packed into it (a night's: one step of a second or so; the first
refresh after an upgrade packs the whole history, a step of `STEP_HOUSEHOLDS` households at a time,
so the writer is never held for long and ingest keeps committing in between)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edge.store import history_cache
from edge.store.db import ReadThread
from edge.store.writer import StoreWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RefreshReport:
    households: int  # households that got new purchases
    chunks: int  # chunks written
    upto_id: int  # the watermark after the refresh
    seconds: float


class HistoryCache:
    """Refreshes the packed history; one per daemon, shared by the nightly jobs (a lock keeps one
    refresh at a time)."""

    def __init__(
        self, db_path: Path, writer: StoreWriter, *, step_households: int = history_cache.STEP_HOUSEHOLDS
    ):
        self._writer = writer
        self._step = step_households
        self._reads = ReadThread(db_path, "history-cache")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-pack")
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._reads.close()
        self._pool.shutdown(wait=True)

    async def refresh(self, keep_since_ms: int) -> RefreshReport:
        """Pack every purchase stored since the last refresh; lines older than ``keep_since_ms`` are
        dropped when a household's chunks are merged."""
        async with self._lock:
            began = time.perf_counter()
            upto = await self._reads.run(history_cache.watermark)
            top = await self._reads.run(history_cache.newest_purchase)
            if top <= upto:
                return RefreshReport(0, 0, upto, time.perf_counter() - began)
            households = await self._reads.run(lambda c: history_cache.households_with_new(c, upto, top))
            loop = asyncio.get_running_loop()
            written = 0
            for start in range(0, len(households), self._step):
                part = households[start : start + self._step]
                rows, merge = await self._reads.run(
                    functools.partial(history_cache.read_step, households=part, upto=upto, top=top)
                )
                step = await loop.run_in_executor(
                    self._pool, history_cache.pack_step, rows, merge, keep_since_ms
                )
                written += await self._writer.run_job(functools.partial(history_cache.write_step, step=step))
            await self._writer.run_job(lambda c: history_cache.set_watermark(c, top))
            report = RefreshReport(len(households), written, top, time.perf_counter() - began)
        log.info(
            "history_cache_refreshed",
            extra={
                "households": report.households,
                "chunks": report.chunks,
                "upto_id": report.upto_id,
                "seconds": round(report.seconds, 2),
            },
        )
        return report
