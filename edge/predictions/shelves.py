"""Shelf stock-out forecasts (docs/models.md, "Serving"): every ``[models] shelf_forecast_interval_s`` the
shelf-depletion model runs on every shelf with a settled count; the forecasts are cached in
``shelf_forecasts`` and the ``stockout_predicted`` alert opens when a shelf is forecast empty within
``[thresholds] stockout_warning_min`` and clears once the forecast is past twice that (restocked) or the
shelf is empty (the ``empty_shelf`` alert takes over). The features include the public holidays of
``[store] country`` (`models.holiday_calendar`), computed as in training; a model trained without them
gets the columns its card lists.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edge.metrics import Counter
from edge.predictions.clock import StoreClock
from edge.predictions.scoring import ShelfForecast, forecast_shelves
from edge.predictions.tables import shelf_picks, write_shelf_forecasts
from edge.predictions.views import ShelfForecastView
from edge.state.alerts import AlertBatch, AlertSignal, apply_signals
from edge.store.db import ReadThread
from edge.store.writer import StoreWriter
from models import StoreModels


class ShelfForecaster:
    """The shelf task and its cached forecasts; ``models`` gives the models served now (they swap)."""

    def __init__(
        self,
        writer: StoreWriter,
        reads: ReadThread,
        live: ReadThread,
        pool: ThreadPoolExecutor,
        models: Callable[[], StoreModels],
        clock: StoreClock,
        runs: Counter,
        *,
        warning_min: float,
        interval_s: float,
        country: str = "",
    ) -> None:
        self._writer = writer
        self._reads = reads
        self._live = live
        self._pool = pool
        self._models = models
        self._clock = clock
        self._runs = runs
        self._warning_min = warning_min
        self._interval_s = interval_s
        self._country = country

    async def forecast_once(self) -> list[ShelfForecast]:
        """Forecast every shelf, cache the forecasts and raise or clear `stockout_predicted`."""
        now = self._clock.now_ms()
        picks = await self._reads.run(lambda c: shelf_picks(c, now))
        loop = asyncio.get_running_loop()
        offset = self._clock.utc_offset_min(now)
        forecasts = await loop.run_in_executor(
            self._pool, forecast_shelves, self._models(), picks, now, offset, self._country
        )
        version = self._models().shelf_depletion.card.version
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
        self._runs.inc()
        return forecasts

    async def latest(self, shelf: str) -> ShelfForecastView | None:
        """The latest cached forecast of a shelf; None for an unknown shelf or one not forecast yet."""

        def q(c: sqlite3.Connection) -> ShelfForecastView | None:
            row = c.execute(
                "SELECT shelf, items, minutes_to_empty, empty_at_ms, baseline_minutes, model_version, scored_ms"
                " FROM shelf_forecasts WHERE shelf = ?",
                (shelf,),
            ).fetchone()
            return None if row is None else ShelfForecastView(*row)

        return await self._live.run(q)

    async def run(self) -> None:
        while True:
            await self.forecast_once()
            await asyncio.sleep(self._interval_s)


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
