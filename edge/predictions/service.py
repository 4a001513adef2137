"""Serving the prediction models in the daemon: cached household scores, shopping lists, shelf forecasts.

`PredictionService` is what the daemon wires in (like `SyncService`): supervised tasks plus a Python API
the HTTP handlers call. The models are loaded once (`models.load_models`); scoring runs in executor
threads (one for batch work, one for a kiosk waiting on a household scored on demand), reads on
read-only connections of their own, and every write goes through the single writer.

What runs when (docs/models.md, "Serving"):

- **on change**: households marked in ``rescore_queue`` (a purchase by a consenting household, written
  in the purchase's transaction) or passed to `request_rescore` are rescored every
  ``[models] rescore_interval_s``;
- **nightly** at ``[models] rescore_at`` (store-local, ``[store] timezone``): every consenting household, in steps of
  ``[models] batch_households``; also at start when the last full run is more than a day old;
- **on demand**: a consenting household with nothing cached is scored when its list is asked for;
- **shelves** every ``[models] shelf_forecast_interval_s`` (`edge.predictions.shelves`).
- **the ranker's neighbours** before a full rescore and at start, when due (`edge.predictions.ranker`).

What a kiosk reads is `edge.predictions.lists`; outcomes are `edge.predictions.outcomes`; a running
experiment decides which models score whom (`edge.predictions.arms`).

The consent gate: only households with personalisation consent are ever scored or cached (checked
again in the transaction that writes), everyone else gets the generic list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from edge.config import Config
from edge.errors import ConfigError
from edge.metrics import IngestMetrics
from edge.predictions.aggregates import store_aggregates
from edge.predictions.arms import ArmCost, ArmPlanner, score_arms
from edge.predictions.clock import StoreClock, nightly_wait_ms
from edge.predictions.lists import HouseholdLists
from edge.predictions.model_set import load_store_models, model_directory
from edge.predictions.outcomes import prune_outcomes
from edge.predictions.ranker import RankerNeighbours
from edge.predictions.runs import PredictionMetrics, RescoreReport, StageSeconds
from edge.predictions.scoring import ScoredHouseholds, ScoringContext, ShelfForecast
from edge.predictions.seasonal import SeasonalOutlook
from edge.predictions.shelves import ShelfForecaster
from edge.predictions.store_read import StoreRead
from edge.predictions.tables import (
    MS_PER_DAY,
    CategoryAggregates,
    HouseholdLines,
    consented_households,
    delete_household_predictions,
    drop_unconsented,
    last_full_run_ms,
    load_lines,
    load_lines_cached,
    record_arm_costs,
    record_run,
    write_predictions,
)
from edge.predictions.views import PredictionsView, ShelfForecastView, ShoppingListView
from edge.store.db import ReadThread
from edge.store.history_refresh import HistoryCache
from edge.store.steps import run_steps, steps_in_flight
from edge.store.writer import StoreWriter
from models import StoreModels
from models.history import PurchaseHistory

log = logging.getLogger(__name__)
T = TypeVar("T")
AGGREGATES_TTL_MS = 3_600_000
Read = tuple[ScoringContext, HouseholdLines, PurchaseHistory | None]  # a step's read (history: if built)


class PredictionService:
    def __init__(
        self,
        config: Config,
        db_path: Path,
        writer: StoreWriter,
        metrics: IngestMetrics,
        models: StoreModels,
        clock: StoreClock | None = None,
        models_dir: Path | None = None,
        history: HistoryCache | None = None,
    ) -> None:
        self._config = config
        # The packed purchase history the full rescore reads (shared with the customer scores).
        self._own_history = history is None
        self.history = history or HistoryCache(db_path, writer)
        # Where `models` came from; when set, a task watches for a newer `model` bundle and swaps to it.
        self.models_dir = models_dir
        self._settings = config.models
        self._writer = writer
        self.models = models
        self.clock = clock or StoreClock(config.store.timezone)
        self._metrics = PredictionMetrics(metrics)
        self._batch_reads = ReadThread(db_path, "predictions-reader")
        self._live_reads = ReadThread(db_path, "predictions-live")
        self._batch_pool = ThreadPoolExecutor(
            max_workers=self._settings.batch_workers, thread_name_prefix="models-batch"
        )
        self._live_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="models-live")
        self._requested: set[str] = set()
        self._wake = asyncio.Event()
        self._scoring = asyncio.Lock()  # one batch step at a time: a newer snapshot is never overwritten
        self._aggregates: tuple[int, tuple[str, ...], CategoryAggregates] | None = None
        self.stages = StageSeconds()  # running totals since start
        # The next-basket ranker's neighbours and store trend, refreshed before full rescores.
        self.ranker = RankerNeighbours(self._batch_reads, self._batch_pool, self.clock, self._settings)
        self.seasonal = SeasonalOutlook(db_path, self.clock, config.store.country)
        self.lists = HouseholdLists(
            self._live_reads,
            self._score_on_demand,
            self._metrics.lists,
            self.clock,
            self._settings.list_limit,
            lambda: self.models.next_purchase.card.version,
            self.seasonal,
        )
        self.shelves = ShelfForecaster(
            writer,
            self._batch_reads,
            self._live_reads,
            self._batch_pool,
            lambda: self.models,
            self.clock,
            self._metrics.shelf_runs,
            warning_min=config.thresholds.stockout_warning_min,
            interval_s=self._settings.shelf_forecast_interval_s,
            country=config.store.country,
        )
        # Who is served by which models (a running experiment, `edge.experiments`); None: the store's own.
        self.arms: ArmPlanner | None = None
        # Run after every full rescore, in order (the daemon adds the customer scores, edge.customers.scores).
        self.after_full_rescore: list[Callable[[], Awaitable[object]]] = []

    # -- wiring ----------------------------------------------------------------------------------------
    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        tasks: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("rescore", self.run_rescore),
            ("nightly", self.run_nightly),
            ("shelves", self.shelves.run),
            ("seasonal", self.seasonal.run),
        ]
        if self.models_dir is not None:
            tasks.append(("models", self.run_model_watch))
        return tasks

    async def close(self) -> None:
        if self._own_history:
            await self.history.close()
        await self._batch_reads.close()
        await self._live_reads.close()
        await self.seasonal.close()
        self._batch_pool.shutdown(wait=True)
        self._live_pool.shutdown(wait=True)

    def request_rescore(self, household: str) -> None:
        """Rescore this household soon (e.g. consent was just granted). Ignored without consent."""
        self._requested.add(household)
        self._wake.set()

    async def forget(self, household: str, *, outcomes: bool = False) -> int:
        """Delete the household's cached predictions (and with ``outcomes`` its outcomes) now."""
        self._requested.discard(household)
        return await self._writer.run_job(
            lambda c: delete_household_predictions(c, household, outcomes=outcomes)
        )

    # -- reads (edge.predictions.lists) ---------------------------------------------------------------
    async def shopping_list(self, household: str, now_ms: int | None = None) -> ShoppingListView:
        return await self.lists.shopping_list(household, now_ms)

    async def generic_list(self, household: str, now_ms: int | None = None) -> ShoppingListView:
        return await self.lists.generic_list(household, now_ms)

    async def predictions(self, household: str, now_ms: int | None = None) -> PredictionsView | None:
        return await self.lists.predictions(household, now_ms)

    async def shelf_forecast(self, shelf: str) -> ShelfForecastView | None:
        """The latest cached forecast of a shelf; None for an unknown shelf or one not forecast yet."""
        return await self.shelves.latest(shelf)

    async def forecast_shelves_once(self) -> list[ShelfForecast]:
        return await self.shelves.forecast_once()

    # -- scoring ---------------------------------------------------------------------------------------
    async def _context(self, now_ms: int, refresh: bool = False) -> ScoringContext:
        since = now_ms - self._settings.history_days * MS_PER_DAY
        cached = self._aggregates
        if refresh or cached is None or not 0 <= now_ms - cached[0] < AGGREGATES_TTL_MS:
            categories, aggregates = await self._batch_reads.run(lambda c: store_aggregates(c, since))
            cached = self._aggregates = (now_ms, categories, aggregates)
        offset, ranker = self.clock.utc_offset_min(now_ms), self.ranker.state_for(self.models)
        return ScoringContext(now_ms, offset, self._settings.list_limit, cached[1], cached[2], ranker)

    async def _read(
        self, households: list[str], reads: ReadThread, packed: bool = False, store: StoreRead | None = None
    ) -> Read:
        """The households' lines (and history, if built); ``packed``: through the history cache (the full
        rescore refreshed it); ``store``: from the ranker refresh's read where still exact."""
        now = self.clock.now_ms()
        ctx = await self._context(now)
        since = now - self._settings.history_days * MS_PER_DAY
        began = time.perf_counter()
        load = load_lines_cached if packed else load_lines

        def job(c: sqlite3.Connection) -> tuple[HouseholdLines, PurchaseHistory | None]:
            kept = store.step(c, households, ctx.categories, since, ctx.utc_offset_min) if store else None
            return kept or (load(c, households, ctx.categories, since), None)

        lines, history = await reads.run(job)
        self.stages.read_s += time.perf_counter() - began
        return ctx, lines, history

    async def _score_and_write(
        self, households: list[str], read: Read, trigger: str, pool: ThreadPoolExecutor
    ) -> tuple[int, int]:
        """Score what was read (in ``pool``) and write it; returns (households, rows) written."""
        scored = await self._score_read(read, pool)
        return await self._write(households, read, scored, trigger)

    async def _score_read(
        self, read: Read, pool: ThreadPoolExecutor
    ) -> tuple[ScoredHouseholds, list[ArmCost]]:
        ctx, lines, history = read
        began = time.perf_counter()
        loop = asyncio.get_running_loop()
        scored = await loop.run_in_executor(pool, score_arms, self.arms, self.models, lines, ctx, history)
        self.stages.score_s += time.perf_counter() - began
        return scored

    async def _write(
        self,
        households: list[str],
        read: Read,
        scored: tuple[ScoredHouseholds, list[ArmCost]],
        trigger: str,
    ) -> tuple[int, int]:
        lines = read[1]
        rows, costs = scored[0].rows, scored[1]
        began = time.perf_counter()

        def job(c: sqlite3.Connection) -> tuple[int, int]:
            # Households with no lines at all are in `households` but not in `lines.households`.
            written = write_predictions(c, sorted(set(households)), rows, lines.queued)
            record_arm_costs(c, costs, read[0].now_ms)
            return written

        written = await self._writer.run_job(job)
        self.stages.write_s += time.perf_counter() - began
        self._metrics.scored.inc(trigger, amount=written[0])
        return written

    async def _score(
        self, households: list[str], trigger: str, reads: ReadThread, pool: ThreadPoolExecutor
    ) -> tuple[int, int]:
        """Read, score (in ``pool``) and write ``households``; returns (households, rows) written."""
        if not households:
            return 0, 0
        return await self._score_and_write(households, await self._read(households, reads), trigger, pool)

    async def _score_on_demand(self, household: str) -> bool:
        _households, rows = await self._score([household], "demand", self._live_reads, self._live_pool)
        return rows > 0

    async def rescore_pending(self, limit: int | None = None) -> RescoreReport:
        """One pass of the on-change loop: the queued and requested households."""
        began = time.perf_counter()
        batch = limit or self._settings.batch_households
        queued = await self._batch_reads.run(
            lambda c: [
                str(h)
                for (h,) in c.execute(
                    "SELECT household FROM rescore_queue ORDER BY queued_ms LIMIT ?", (batch,)
                )
            ]
        )
        requested, self._requested = self._requested, set()
        households = sorted(set(queued) | requested)
        async with self._scoring:
            written = await self._score(households, "change", self._batch_reads, self._batch_pool)
        if households:
            log.info(
                "households_rescored",
                extra={"trigger": "change", "households": written[0], "rows": written[1]},
            )
        return RescoreReport(written[0], written[1], time.perf_counter() - began)

    async def _full_step(self, households: Sequence[str], store: StoreRead | None) -> tuple[int, int]:
        chunk = list(households)
        read = await self._read(chunk, self._batch_reads, True, store)
        return await self._write(chunk, read, await self._score_read(read, self._batch_pool), "full")

    async def full_rescore(self) -> RescoreReport:
        """Every household with personalisation consent, in steps of ``[models] batch_households``."""
        began = time.perf_counter()
        stages_before = StageSeconds(self.stages.read_s, self.stages.score_s, self.stages.write_s)
        started_ms = self.clock.now_ms()
        keep_from = started_ms - self._settings.history_days * MS_PER_DAY
        await self._writer.run_job(lambda c: (drop_unconsented(c), prune_outcomes(c, keep_from)))
        await self.history.refresh(keep_from)  # first: the store-wide counts read it too
        await self.ranker.refresh(self.models, started_ms)
        store = self.ranker.take_read()  # its read, if it just refreshed: the steps need not read again
        await self._context(started_ms, refresh=True)
        households = await self._batch_reads.run(consented_households)
        # One full run at a time with the on-change passes (an older snapshot never overwrites a newer
        # one); within it, steps overlap (`edge.store.steps`): reads and writes beside the scoring, and
        # ``[models] batch_workers`` steps scored at once.
        async with self._scoring:
            written = await run_steps(
                households,
                self._settings.batch_households,
                lambda chunk: self._full_step(chunk, store),
                in_flight=steps_in_flight(self._settings.batch_workers),
            )
        total_h, total_rows = sum(h for h, _ in written), sum(rows for _, rows in written)
        seconds = time.perf_counter() - began
        version = self.models.next_purchase.card.version
        finished = self.clock.now_ms()
        await self._writer.run_job(
            lambda c: record_run(c, "full", started_ms, finished, total_h, total_rows, version)
        )
        self._metrics.full_seconds.set(seconds)
        log.info(
            "full_rescore_done",
            extra={"households": total_h, "rows": total_rows, "seconds": round(seconds, 2)},
        )
        stages = StageSeconds(
            self.stages.read_s - stages_before.read_s,
            self.stages.score_s - stages_before.score_s,
            self.stages.write_s - stages_before.write_s,
        )
        for follow_up in self.after_full_rescore:
            try:
                await follow_up()
            except Exception:  # one failing follow-up must not stop the nightly schedule
                log.exception("full_rescore_follow_up_failed")
        return RescoreReport(total_h, total_rows, seconds, stages)

    # -- tasks -----------------------------------------------------------------------------------------
    async def run_rescore(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.rescore_interval_s)
            self._wake.clear()
            await self.rescore_pending()

    async def run_nightly(self) -> None:
        await self.ranker.refresh(self.models, self.clock.now_ms())
        while True:
            last = await self._batch_reads.run(last_full_run_ms)
            wait_ms = nightly_wait_ms(self.clock, self.clock.now_ms(), last, self._settings.rescore_at)
            if wait_ms > 0:
                self.ranker.take_read()  # not kept in memory until the night
            await asyncio.sleep(wait_ms / 1000)
            await self.full_rescore()

    async def refresh_models(self) -> bool:
        """Swap to the models `model_directory` names now, if that is not where the served ones came from.
        Loads off the loop; a set that fails to load is logged and the served models stay. True if swapped."""
        directory = model_directory(self._config)
        if self.models_dir is None or directory == self.models_dir:
            return False
        loop = asyncio.get_running_loop()
        try:
            models = await loop.run_in_executor(self._batch_pool, load_store_models, self._config, directory)
        except ConfigError as exc:
            log.error("models_not_activated", extra={"dir": str(directory), "error": str(exc)})  # noqa: TRY400
            self.models_dir = directory  # do not retry the same broken set every poll
            return False
        async with self._scoring:  # no batch step straddles the swap
            self.models, self.models_dir = models, directory
            self.lists.forget_generic()
        log.info(
            "models_activated",
            extra={
                "dir": str(directory),
                "next_purchase": models.next_purchase.card.version,
                "next_basket": models.next_basket.card.version,
                "shelf_depletion": models.shelf_depletion.card.version,
            },
        )
        return True

    async def run_model_watch(self) -> None:
        """A new `model` bundle goes live without a restart: swap, then rescore everyone with it."""
        while True:
            await asyncio.sleep(min(self._config.sync.bundle_poll_s, 60.0))
            if await self.refresh_models():
                await self.full_rescore()
