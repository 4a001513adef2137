"""Retention: keeps the database bounded. Runs as a maintenance job inside the single writer."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

from edge.metrics import IngestMetrics
from edge.store.quarantine import trim
from edge.store.writer import StoreWriter

log = logging.getLogger(__name__)


class RetentionJob:
    def __init__(self, readings_before_ms: int, quarantine_max_rows: int, access_before_ms: int = 0) -> None:
        self.readings_before_ms = readings_before_ms
        self.quarantine_max_rows = quarantine_max_rows
        self.access_before_ms = access_before_ms

    def __call__(self, conn: sqlite3.Connection) -> dict[str, int]:
        # Purchases reference their ledger row and are kept (they are business records, and sync needs
        # them); sensor readings past the window go.
        readings = conn.execute(
            "DELETE FROM readings WHERE ts_ms < ? AND kind != 'pos_transaction'", (self.readings_before_ms,)
        ).rowcount
        quarantine = trim(conn, "quarantine", self.quarantine_max_rows)
        suspicious = trim(conn, "suspicious", self.quarantine_max_rows)
        access = conn.execute("DELETE FROM access_log WHERE ts_ms < ?", (self.access_before_ms,)).rowcount
        return {
            "readings": readings,
            "quarantine": quarantine,
            "suspicious": suspicious,
            "access_log": access,
        }


async def run_housekeeping(
    writer: StoreWriter,
    metrics: IngestMetrics,
    interval_s: float,
    readings_days: float,
    quarantine_max_rows: int,
    access_log_days: float = 400.0,
) -> None:
    while True:
        now_ms = time.time() * 1000
        job = RetentionJob(
            int(now_ms - readings_days * 86_400_000),
            quarantine_max_rows,
            int(now_ms - access_log_days * 86_400_000),
        )
        deleted = await writer.run_job(job)
        for table, count in deleted.items():
            metrics.housekeeping_deleted.inc(table, amount=count)
        if any(deleted.values()):
            log.info("housekeeping", extra={f"deleted_{k}": v for k, v in deleted.items()})
        await asyncio.sleep(interval_s)
