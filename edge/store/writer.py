"""The single SQLite writer: one task, one connection, batched transactions, acks after commit.

Everything that writes goes through `StoreWriter.submit`. The writer takes what is queued (up to
``batch_max`` items, waiting at most ``batch_wait_s`` for more), applies it in one transaction on its
own thread (so fsync never blocks the event loop), and only then runs each item's ``on_commit`` (the
MQTT acknowledgement). If a batch fails, it is retried item by item so one poisoned item cannot hold
the rest hostage: that item is quarantined with the error, and the others commit.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import msgspec

from edge.metrics import IngestMetrics
from edge.state.alerts import AlertEvent
from edge.store.apply import BatchApplier, BatchOutcome, Fate, Received
from edge.store.db import open_store
from sensors.backoff import Backoff
from sensors.schemas import Reading, Rejection, RejectReason, Source

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Pending:
    received: Received
    on_commit: Callable[[Fate], None] | None
    result: asyncio.Future[object] | None
    urgent: bool = False  # someone is waiting on it (an HTTP request): commit without waiting for more
    queued_at: float = 0.0  # time.monotonic() when it was queued


class StoreWriter:
    def __init__(
        self,
        db_path: Path,
        applier: BatchApplier,
        metrics: IngestMetrics,
        *,
        batch_max: int = 500,
        batch_wait_s: float = 0.01,
        queue_max: int = 20_000,
    ) -> None:
        self._db_path = db_path
        self._applier = applier
        self._metrics = metrics
        self._batch_max = batch_max
        self._batch_wait_s = batch_wait_s
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=queue_max)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self._backoff = Backoff(minimum=0.1, maximum=5.0)
        # Called with the alerts a batch opened or resolved, after that batch committed.
        self.on_alerts: Callable[[list[AlertEvent]], None] | None = None

    # -- producers ----------------------------------------------------------------------------------
    def depth(self) -> int:
        return self._queue.qsize()

    async def submit(
        self, item: Reading | Rejection, on_commit: Callable[[Fate], None] | None = None
    ) -> None:
        """Queue an item; waits when the queue is full (backpressure reaches the broker via unsent acks).

        ``on_commit(fate)`` runs on the event loop once the item is durable, told what became of it."""
        await self._queue.put(_Pending(Received(item, _now_ms()), on_commit, None, False, time.monotonic()))

    async def run_job(self, job: Callable[[sqlite3.Connection], T], *, urgent: bool = False) -> T:
        """Run ``job(conn)`` inside a write transaction and return its result once committed.

        ``urgent``: a person is waiting (an HTTP request). The batch it joins commits as soon as the
        queue is momentarily empty instead of waiting up to ``batch_wait_ms`` for more items to share
        the fsync with; it still shares the transaction with whatever is already queued."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(Received(job, _now_ms()), None, future, urgent, time.monotonic()))
        return cast("T", await future)  # the future carries exactly what job returned

    # -- the writer task ----------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, open_store, self._db_path)

    async def run(self) -> None:
        """Write until `stop()`; then commit everything still queued and return.

        The writer is never cancelled mid-batch: items it has taken off the queue are always committed
        (a cancelled gather would drop serial readings that no broker will redeliver).
        """
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            # The window counts from when the first item was queued, not from when the writer got to
            # it: an item that already waited for the previous commit has company enough, and waiting
            # again would only add latency (at 1,000 msg/s the batches size themselves to the arrivals
            # during one commit). A flood still fills batches to batch_max.
            deadline = 0.0 if first.urgent else first.queued_at + self._batch_wait_s
            while len(batch) < self._batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                if nxt.urgent:
                    deadline = 0.0  # take what is already queued, then commit
            await self._commit(batch)
        await self._drain()

    async def stop(self) -> None:
        """Ask `run()` to commit what is queued and return. Call after the sources have stopped."""
        await self._queue.put(None)

    async def _drain(self) -> None:
        while not self._queue.empty():
            batch = [
                p
                for p in (self._queue.get_nowait() for _ in range(min(self._batch_max, self._queue.qsize())))
                if p
            ]
            if batch:
                await self._commit(batch)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def _commit(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._executor, self._apply, batch)
                break
            except sqlite3.Error as exc:
                # Disk full, locked database, I/O error: keep the batch (nothing was acked) and retry.
                self._metrics.write_errors.inc()
                delay = self._backoff.next_delay()
                log.error(  # noqa: TRY400 - the error text is enough; a traceback per retry floods the log
                    "batch_commit_failed",
                    extra={"error": str(exc), "items": len(batch), "retry_s": round(delay, 2)},
                )
                await asyncio.sleep(delay)
        self._backoff.reset()
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(batch))
        alerts = [a for o in outcomes if not isinstance(o, BaseException) for a in o.alerts]
        if alerts and self.on_alerts is not None:
            self.on_alerts(alerts)
        # Job results come back in batch order (all in the first outcome when the batch committed
        # whole, one per outcome when items were applied one by one): hand each job its own.
        committed = [o for o in outcomes if not isinstance(o, BaseException)]
        job_results = iter([r for o in committed for r in o.job_results])
        fates = iter([f for o in committed for f in o.fates])  # one per item that did not raise
        for pending, outcome in zip(batch, outcomes, strict=True):
            self._record(outcome)
            fate = None if isinstance(outcome, BaseException) else next(fates)
            if pending.on_commit is not None and fate is not None:
                pending.on_commit(fate)
            if pending.result is None:
                continue
            if isinstance(outcome, BaseException):
                if not pending.result.done():
                    pending.result.set_exception(outcome)
                continue
            result = next(job_results)
            if not pending.result.done():
                pending.result.set_result(result)

    def _apply(self, batch: list[_Pending]) -> list[BatchOutcome | BaseException]:
        """On the writer thread: the whole batch in one transaction, else one transaction per item."""
        conn = self._conn
        if conn is None:
            raise sqlite3.OperationalError("store is not open")
        now = _now_ms()
        try:
            whole = self._applier.apply(conn, [p.received for p in batch], now)
        except sqlite3.OperationalError:
            raise  # the store itself is unwell (locked, full, I/O): retry the batch later
        except Exception:  # noqa: BLE001 - isolate the item that fails
            # The traceback names the bug; its text may quote a reading (a till's card): redacted like
            # a quarantine row.
            log.error(  # noqa: TRY400 - the traceback is in ``exc``, redacted
                "batch_failed_isolating",
                extra={"items": len(batch), "exc": self._applier.redact_text(traceback.format_exc())},
            )
        else:
            return [whole, *([BatchOutcome()] * (len(batch) - 1))]
        results: list[BatchOutcome | BaseException] = []
        for pending in batch:
            try:
                results.append(self._applier.apply(conn, [pending.received], now))
            except sqlite3.OperationalError:
                raise
            except Exception as exc:  # noqa: BLE001 - quarantine the item with the error, keep going
                if pending.result is not None:
                    results.append(exc)
                    continue
                poisoned = _as_rejection(pending.received, exc)
                results.append(
                    self._applier.apply(conn, [Received(poisoned, pending.received.received_ms)], now)
                )
        return results

    def _record(self, outcome: BatchOutcome | BaseException) -> None:
        if isinstance(outcome, BaseException):
            return
        for kind, count in outcome.stored.items():
            self._metrics.stored.inc(kind, amount=count)
        for reason, count in outcome.rejected.items():
            self._metrics.rejected.inc(reason, amount=count)
        if outcome.duplicates:
            self._metrics.duplicates.inc(amount=outcome.duplicates)
        for reason, count in outcome.suspicious.items():
            self._metrics.suspicious.inc(reason, amount=count)


def _as_rejection(received: Received, exc: Exception) -> Rejection:
    # The encoded reading still carries a till's raw loyalty_id: the applier redacts every rejection it
    # writes (edge.store.quarantine.CardRedactor), this one included.
    item = received.item
    payload = msgspec.json.encode(item) if not callable(item) else b""
    device = getattr(item, "device", None)
    return Rejection(
        Source.MQTT, "internal", RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", payload, device
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
