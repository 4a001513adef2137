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
- **shelves** every ``[models] shelf_forecast_interval_s``: the shelf-depletion model on every shelf
  with a settled count, cached in ``shelf_forecasts``; the ``stockout_predicted`` alert opens when a
  shelf is forecast empty within ``[thresholds] stockout_warning_min`` and clears once the forecast
  is past twice that (restocked) or the shelf is empty (the ``empty_shelf`` alert takes over).

The consent gate: only households with personalisation consent are ever scored or cached (checked
again in the transaction that writes), everyone else gets the generic list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from edge.config import Config
from edge.customers.tables import has_consent
from edge.errors import ConfigError
from edge.metrics import Counter, Gauge, IngestMetrics
from edge.predictions.arms import ArmCost, ArmPlanner, score_arms
from edge.predictions.scoring import (
    ScoredHouseholds,
    ScoringContext,
    ShelfForecast,
    forecast_shelves,
    local_day,
)
from edge.predictions.tables import (
    MS_PER_DAY,
    CategoryAggregates,
    HouseholdLines,
    category_aggregates,
    consented_households,
    delete_household_predictions,
    drop_unconsented,
    last_full_run_ms,
    load_lines,
    popular_categories,
    prune_outcomes,
    record_arm_costs,
    record_run,
    shelf_picks,
    store_categories,
    write_predictions,
    write_shelf_forecasts,
)
from edge.predictions.views import (
    ListItem,
    PredictionItem,
    PredictionsView,
    ShelfForecastView,
    ShoppingListView,
)
from edge.state.alerts import AlertBatch, AlertSignal, apply_signals
from edge.store.db import ReadThread
from edge.store.writer import StoreWriter
from models import ModelsError, StoreModels, load_models
from models.inference import TRAINED_DIR

log = logging.getLogger(__name__)
T = TypeVar("T")
GENERIC_REASON = "popular in this store this week"
GENERIC_TTL_MS = 300_000
AGGREGATES_TTL_MS = 3_600_000
WEEK_MS = 7 * MS_PER_DAY


def model_directory(config: Config) -> Path:
    """Where the served models are: the live `model` bundle from central when there is one (it passed
    `edge.uplink.bundle_checks.check_store_models` before activation), else ``[models] dir`` (default: the
    models shipped in the package). Resolved, so a bundle swap shows as a new path."""
    live = config.path(config.sync.bundle_dir) / "model" / "current"
    if (live / "next_purchase" / "model.onnx").is_file():
        return live.resolve()
    return (config.path(config.models.dir) if config.models.dir else TRAINED_DIR).resolve()


def load_store_models(config: Config, directory: Path | None = None) -> StoreModels:
    """The models in ``directory`` (default: `model_directory`)."""
    try:
        return load_models(directory or model_directory(config), threads=config.models.threads)
    except ModelsError as exc:
        raise ConfigError(f"[models] dir: {exc}") from exc


class StoreClock:
    """Store-local time: ``[store] timezone`` (an IANA name), or the box's local time for ""."""

    def __init__(self, timezone: str = "", now: Callable[[], float] = time.time) -> None:
        self._tz: tzinfo | None = ZoneInfo(timezone) if timezone else None
        self.now = now

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def _local(self, ms: int) -> datetime:
        moment = datetime.fromtimestamp(ms / 1000, self._tz)
        return moment if self._tz is not None else moment.astimezone()

    def utc_offset_min(self, ms: int) -> int:
        offset = self._local(ms).utcoffset()
        return 0 if offset is None else int(offset.total_seconds() // 60)

    def next_at(self, now_ms: int, at: str) -> int:
        """The first moment strictly after ``now_ms`` when the store-local wall clock shows ``at`` (HH:MM)."""
        hour, minute = (int(part) for part in at.split(":"))
        local = datetime.fromtimestamp(now_ms / 1000, self._tz)  # naive local time when tz is None
        candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        while int(candidate.timestamp() * 1000) <= now_ms:
            candidate = (candidate + timedelta(days=1)).replace(hour=hour, minute=minute)
        return int(candidate.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class RescoreReport:
    households: int  # scored and written (with consent at write time)
    rows: int
    seconds: float
    stages: StageSeconds | None = None  # where a full run's time went


@dataclass(slots=True)
class StageSeconds:
    """Wall time spent reading history, scoring and writing (reads overlap scoring in a full run)."""

    read_s: float = 0.0
    score_s: float = 0.0
    write_s: float = 0.0


class PredictionMetrics:
    def __init__(self, metrics: IngestMetrics) -> None:
        r = metrics.registry
        self.scored = r.register(
            Counter(
                "storeedge_predictions_households_scored_total",
                "Households scored, by trigger (full, change, demand).",
                ("trigger",),
            )
        )
        self.full_seconds = r.register(
            Gauge("storeedge_predictions_full_rescore_seconds", "Duration of the last full rescore.")
        )
        self.lists = r.register(
            Counter(
                "storeedge_shopping_lists_total",
                "Shopping lists served, by kind (personalised, generic).",
                ("kind",),
            )
        )
        self.shelf_runs = r.register(
            Counter("storeedge_shelf_forecast_runs_total", "Shelf forecast passes over every shelf.")
        )


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
    ) -> None:
        self._config = config
        # Where `models` came from; when set, a task watches for a newer `model` bundle and swaps to it.
        self.models_dir = models_dir
        self._settings = config.models
        self._writer = writer
        self.models = models
        self.clock = clock or StoreClock(config.store.timezone)
        self._metrics = PredictionMetrics(metrics)
        self._batch_reads = ReadThread(db_path, "predictions-reader")
        self._live_reads = ReadThread(db_path, "predictions-live")
        self._batch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="models-batch")
        self._live_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="models-live")
        self._requested: set[str] = set()
        self._wake = asyncio.Event()
        self._scoring = asyncio.Lock()  # one batch step at a time: a newer snapshot is never overwritten
        self._aggregates: tuple[int, tuple[str, ...], CategoryAggregates] | None = None
        self._generic: tuple[int, list[tuple[str, float]]] | None = None
        self._warning_min = config.thresholds.stockout_warning_min
        self.stages = StageSeconds()  # running totals since start
        # Who is served by which models (a running experiment, `edge.experiments`); None: the store's own.
        self.arms: ArmPlanner | None = None

    # -- wiring ----------------------------------------------------------------------------------------
    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        tasks: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("rescore", self.run_rescore),
            ("nightly", self.run_nightly),
            ("shelves", self.run_shelves),
        ]
        if self.models_dir is not None:
            tasks.append(("models", self.run_model_watch))
        return tasks

    async def close(self) -> None:
        await self._batch_reads.close()
        await self._live_reads.close()
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

    # -- reads -----------------------------------------------------------------------------------------
    async def shopping_list(self, household: str, now_ms: int | None = None) -> ShoppingListView:
        """The household's list: personalised from its cached scores (scored now if it has consent and
        nothing is cached yet), else the store's most bought categories this week."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        consent, rows = await self._live_reads.run(lambda c: _list_rows(c, household))
        if consent and not rows and await self._score_on_demand(household):
            consent, rows = await self._live_reads.run(lambda c: _list_rows(c, household))
        if not consent or not rows:
            self._metrics.lists.inc("generic")
            return await self._generic_list(household, now)
        self._metrics.lists.inc("personalised")
        today = local_day(now, self.clock.utc_offset_min(now))
        groups: dict[str, list[ListItem]] = {"urgent": [], "upcoming": [], "usual": []}
        model = str(rows[0][5])
        for category, urgency, reason, expected, probability, _model, origin in rows:
            days_left = None if expected is None else max(0.0, float(expected) + int(origin) - today)
            groups[str(urgency)].append(
                ListItem(str(category), str(reason), days_left, round(float(probability), 4))
            )
        return ShoppingListView(
            household, True, model, now, groups["urgent"], groups["upcoming"], groups["usual"]
        )

    async def generic_list(self, household: str, now_ms: int | None = None) -> ShoppingListView:
        """The store's list for anyone (most bought this week), whatever the household's consent: what
        an unverified kiosk session gets (docs/customers.md)."""
        self._metrics.lists.inc("generic")
        return await self._generic_list(household, self.clock.now_ms() if now_ms is None else now_ms)

    async def predictions(self, household: str, now_ms: int | None = None) -> PredictionsView | None:
        """Next-purchase forecasts of the household's categories bought at least twice, soonest first;
        None without personalisation consent."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        consent, cached, rows = await self._live_reads.run(lambda c: _prediction_rows(c, household))
        if not consent:
            return None
        if not cached and await self._score_on_demand(household):
            consent, cached, rows = await self._live_reads.run(lambda c: _prediction_rows(c, household))
        today = local_day(now, self.clock.utc_offset_min(now))
        items = []
        for category, p1, p2, p7, p14, expected, q10, q50, q90, confidence, _m, _s, origin in rows:
            shift = int(origin) - today
            items.append(
                PredictionItem(
                    str(category),
                    {"1": p1, "2": p2, "7": p7, "14": p14},
                    max(0.0, expected + shift),
                    max(0.0, q10 + shift),
                    max(0.0, q50 + shift),
                    max(0.0, q90 + shift),
                    confidence,
                )
            )
        items.sort(key=lambda i: (i.expected_days, i.category))
        model = str(rows[0][10]) if rows else self.models.next_purchase.card.version
        scored = max(int(r[11]) for r in rows) if rows else None
        return PredictionsView(household, model, scored, items)

    async def shelf_forecast(self, shelf: str) -> ShelfForecastView | None:
        """The latest cached forecast of a shelf; None for an unknown shelf or one not forecast yet."""

        def q(c: sqlite3.Connection) -> ShelfForecastView | None:
            row = c.execute(
                "SELECT shelf, items, minutes_to_empty, empty_at_ms, baseline_minutes, model_version, scored_ms"
                " FROM shelf_forecasts WHERE shelf = ?",
                (shelf,),
            ).fetchone()
            return None if row is None else ShelfForecastView(*row)

        return await self._live_reads.run(q)

    async def _generic_list(self, household: str, now: int) -> ShoppingListView:
        cached = self._generic
        if cached is None or not 0 <= now - cached[0] < GENERIC_TTL_MS:
            limit = self._settings.list_limit
            popular = await self._live_reads.run(lambda c: popular_categories(c, now - WEEK_MS, limit))
            cached = self._generic = (now, popular)
        usual = [ListItem(category, GENERIC_REASON, None, share) for category, share in cached[1]]
        return ShoppingListView(household, False, None, now, [], [], usual)

    # -- scoring ---------------------------------------------------------------------------------------
    async def _context(self, now_ms: int, refresh: bool = False) -> ScoringContext:
        since = now_ms - self._settings.history_days * MS_PER_DAY
        cached = self._aggregates
        if refresh or cached is None or not 0 <= now_ms - cached[0] < AGGREGATES_TTL_MS:

            def q(c: sqlite3.Connection) -> tuple[tuple[str, ...], CategoryAggregates]:
                return store_categories(c, since), category_aggregates(c, since)

            categories, aggregates = await self._batch_reads.run(q)
            cached = self._aggregates = (now_ms, categories, aggregates)
        return ScoringContext(
            now_ms, self.clock.utc_offset_min(now_ms), self._settings.list_limit, cached[1], cached[2]
        )

    async def _read(self, households: list[str], reads: ReadThread) -> tuple[ScoringContext, HouseholdLines]:
        now = self.clock.now_ms()
        ctx = await self._context(now)
        since = now - self._settings.history_days * MS_PER_DAY
        began = time.perf_counter()
        lines = await reads.run(lambda c: load_lines(c, households, ctx.categories, since))
        self.stages.read_s += time.perf_counter() - began
        return ctx, lines

    async def _score_and_write(
        self,
        households: list[str],
        read: tuple[ScoringContext, HouseholdLines],
        trigger: str,
        pool: ThreadPoolExecutor,
    ) -> tuple[int, int]:
        """Score what was read (in ``pool``) and write it; returns (households, rows) written."""
        scored = await self._score_read(read, pool)
        return await self._write(households, read, scored, trigger)

    async def _score_read(
        self, read: tuple[ScoringContext, HouseholdLines], pool: ThreadPoolExecutor
    ) -> tuple[ScoredHouseholds, list[ArmCost]]:
        ctx, lines = read
        began = time.perf_counter()
        loop = asyncio.get_running_loop()
        scored = await loop.run_in_executor(pool, score_arms, self.arms, self.models, lines, ctx)
        self.stages.score_s += time.perf_counter() - began
        return scored

    async def _write(
        self,
        households: list[str],
        read: tuple[ScoringContext, HouseholdLines],
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

    async def full_rescore(self) -> RescoreReport:
        """Every household with personalisation consent, in steps of ``[models] batch_households``."""
        began = time.perf_counter()
        stages_before = StageSeconds(self.stages.read_s, self.stages.score_s, self.stages.write_s)
        started_ms = self.clock.now_ms()
        await self._context(started_ms, refresh=True)
        households = await self._batch_reads.run(consented_households)
        keep_from = started_ms - self._settings.history_days * MS_PER_DAY
        await self._writer.run_job(lambda c: (drop_unconsented(c), prune_outcomes(c, keep_from)))
        step = self._settings.batch_households
        chunks = [households[start : start + step] for start in range(0, len(households), step)]
        total_h = total_rows = 0
        # One full run at a time with the on-change passes (an older snapshot never overwrites a newer
        # one). A three-stage pipeline: the next step's read and the previous step's write overlap this
        # step's scoring (steps are disjoint households, so their writes commute; one write in flight).
        async with self._scoring:
            pending = asyncio.ensure_future(self._read(chunks[0], self._batch_reads)) if chunks else None
            writing: asyncio.Future[tuple[int, int]] | None = None
            try:
                for index, chunk in enumerate(chunks):
                    assert pending is not None
                    read = await pending
                    if index + 1 < len(chunks):
                        pending = asyncio.ensure_future(self._read(chunks[index + 1], self._batch_reads))
                    scored = await self._score_read(read, self._batch_pool)
                    if writing is not None:
                        h, rows = await writing
                        total_h, total_rows = total_h + h, total_rows + rows
                    writing = asyncio.ensure_future(self._write(chunk, read, scored, "full"))
                if writing is not None:
                    h, rows = await writing
                    total_h, total_rows = total_h + h, total_rows + rows
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()
                if writing is not None and not writing.done():
                    # The job is already queued in the writer and commits anyway; only stop waiting.
                    writing.cancel()
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
        return RescoreReport(total_h, total_rows, seconds, stages)

    async def forecast_shelves_once(self) -> list[ShelfForecast]:
        """Forecast every shelf, cache the forecasts and raise or clear `stockout_predicted`."""
        now = self.clock.now_ms()
        picks = await self._batch_reads.run(lambda c: shelf_picks(c, now))
        loop = asyncio.get_running_loop()
        offset = self.clock.utc_offset_min(now)
        forecasts = await loop.run_in_executor(
            self._batch_pool, forecast_shelves, self.models, picks, now, offset
        )
        version = self.models.shelf_depletion.card.version
        warning = self._warning_min

        def job(c: sqlite3.Connection) -> AlertBatch:
            write_shelf_forecasts(
                c,
                [
                    (f.shelf, f.items, f.minutes_to_empty, f.empty_at_ms, f.baseline_minutes, version, now)
                    for f in forecasts
                ],
            )
            products = dict(
                c.execute("SELECT s.id, p.name FROM shelves s JOIN products p ON p.sku = s.sku").fetchall()
            )
            signals = [
                s
                for f in forecasts
                if (s := stockout_signal(f, str(products.get(f.shelf, f.shelf)), warning, version))
                is not None
            ]
            return AlertBatch(apply_signals(c, signals, now))

        await self._writer.run_job(job)
        self._metrics.shelf_runs.inc()
        return forecasts

    # -- tasks -----------------------------------------------------------------------------------------
    async def run_rescore(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.rescore_interval_s)
            self._wake.clear()
            await self.rescore_pending()

    async def run_nightly(self) -> None:
        while True:
            last = await self._batch_reads.run(last_full_run_ms)
            wait_ms = nightly_wait_ms(self.clock, self.clock.now_ms(), last, self._settings.rescore_at)
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
            self._generic = None
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

    async def run_shelves(self) -> None:
        while True:
            await self.forecast_shelves_once()
            await asyncio.sleep(self._settings.shelf_forecast_interval_s)


def nightly_wait_ms(clock: StoreClock, now_ms: int, last_full_ms: int | None, at: str) -> int:
    """How long until the next full rescore: none if the last one is more than a day old or never ran
    (the box was off at the nightly time), else until the wall clock next shows ``at``."""
    if last_full_ms is None or now_ms - last_full_ms > MS_PER_DAY:
        return 0
    return clock.next_at(now_ms, at) - now_ms


def stockout_signal(f: ShelfForecast, product: str, warning_min: float, version: str) -> AlertSignal | None:
    """`stockout_predicted` for one shelf forecast, with hysteresis: open at <= warning minutes, clear past
    twice that or when the shelf is empty (the empty-shelf alert speaks then)."""
    m = f.minutes_to_empty
    if f.items > 0 and m is not None and m <= warning_min:
        detail: dict[str, object] = {
            "shelf": f.shelf,
            "items": f.items,
            "product": product,
            "minutes_to_empty": m,
            "empty_at_ms": f.empty_at_ms,
            "model_version": version,
        }
        message = f"{f.shelf} ({product}) forecast empty in about {m:.0f} min ({f.items} left)"
        return AlertSignal("stockout_predicted", f.shelf, True, "warning", message, detail)
    if f.items == 0 or m is None or m > 2 * warning_min:
        return AlertSignal("stockout_predicted", f.shelf, False)
    return None


ListRow = tuple[str, str, str, float | None, float, str, int]


def _list_rows(c: sqlite3.Connection, household: str) -> tuple[bool, list[ListRow]]:
    if not has_consent(c, household):
        return False, []
    rows = c.execute(
        "SELECT category, urgency, reason, expected_days, basket_probability, basket_model_version, origin_day"
        " FROM predictions WHERE household = ? AND list_rank IS NOT NULL ORDER BY list_rank",
        (household,),
    ).fetchall()
    return True, rows


def _prediction_rows(c: sqlite3.Connection, household: str) -> tuple[bool, bool, list[tuple[float, ...]]]:
    if not has_consent(c, household):
        return False, False, []
    cached = c.execute("SELECT 1 FROM predictions WHERE household = ? LIMIT 1", (household,)).fetchone()
    rows = c.execute(
        "SELECT category, p1, p2, p7, p14, expected_days, days_p10, days_p50, days_p90, confidence,"
        " model_version, scored_ms, origin_day FROM predictions WHERE household = ? AND p1 IS NOT NULL",
        (household,),
    ).fetchall()
    return True, cached is not None, rows
