"""Seasonal suggestions on the shopping list (#17 item 2; docs/customers.md, "Seasonal suggestions").

What is in season is read from *this store's own baskets* and the public holidays of ``[store] country``
(the `holidays` package, offline). Per category and store-local day the store counts the baskets that
hold it; a category is *in season* when, in a window, it is in more baskets per basket than in the
``BASELINE_DAYS`` before the window (its *lift*), by at least `MIN_LIFT` and by a one-sided z-score of at
least `MIN_Z` under a binomial model of the baseline rate. Per basket, so a busy week (a holiday eve)
does not make everything look seasonal. Three windows, the strongest signal per category kept:

- **holiday**: a public holiday is within `HORIZON_DAYS`; the `PRE_HOLIDAY_DAYS` before the same holiday
  in earlier years (history permitting) against the weeks before those;
- **season**: the `HORIZON_DAYS` from this day 52 weeks ago (same weekdays) against the weeks before;
- **trend**: the last `TREND_DAYS` full days against the weeks before.

Every window and baseline is a whole number of weeks, so the weekday mix cancels. These are anonymous
store statistics: anyone's list gets them (without what is already on it), and the upcoming holidays are
listed beside them. The daily counts are rebuilt once a store-local day on a read thread; a list request
only reads memory. `tests/edge/test_seasonal.py` measures the false-alarm rate on simulated stores
without seasons and the power on ones with.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from edge.predictions.clock import StoreClock
from edge.predictions.scoring import local_day
from edge.store.db import ReadThread
from models.holiday_calendar import EPOCH, holiday_names

HORIZON_DAYS = 14
PRE_HOLIDAY_DAYS = 7
TREND_DAYS = 14
BASELINE_DAYS = 56
HISTORY_DAYS = 2 * 371  # two years and a bit: the same holiday and season in the last two years
MIN_LIFT = 1.3
MIN_Z = 3.0
MIN_BASKETS = 10  # baskets with the category in the window
CHECK_S = 600.0  # how often the refresher looks whether the store-local day has changed
MS_PER_DAY = 86_400_000

Kind = Literal["holiday", "season", "trend"]


class SeasonalItem(msgspec.Struct, frozen=True):
    category: str
    kind: Kind
    lift: float  # baskets with it per basket, against the weeks before the window
    reason: str
    holiday: str | None = None  # the holiday a "holiday" item comes before (its English name)


class HolidayNotice(msgspec.Struct, frozen=True):
    date: date
    name: str  # in English
    local_name: str  # in the country's own language
    days_away: int


@dataclass(frozen=True, slots=True, eq=False)
class DailyBaskets:
    """The store's baskets per store-local day, in all and per category, from ``first_day`` on."""

    first_day: int
    categories: tuple[str, ...]
    baskets: npt.NDArray[np.int64]  # days
    with_category: npt.NDArray[np.int64]  # days x categories

    @property
    def days(self) -> int:
        return int(self.baskets.shape[0])

    def window(self, start: int, stop: int) -> tuple[int, npt.NDArray[np.int64]] | None:
        """Baskets and per-category counts over store-local days [start, stop); None if not all held."""
        lo, hi = start - self.first_day, stop - self.first_day
        if lo < 0 or hi > self.days or hi <= lo:
            return None
        return int(self.baskets[lo:hi].sum()), self.with_category[lo:hi].sum(axis=0)


def daily_baskets(conn: sqlite3.Connection, first_day: int, last_day: int, offset_ms: int) -> DailyBaskets:
    """`DailyBaskets` for store-local days [first_day, last_day) (``offset_ms``: store time minus UTC)."""
    since, until = first_day * MS_PER_DAY - offset_ms, last_day * MS_PER_DAY - offset_ms
    days = max(0, last_day - first_day)
    totals = conn.execute(
        "SELECT (ts_ms + ?) / 86400000 AS d, count(*) FROM purchases WHERE ts_ms >= ? AND ts_ms < ? GROUP BY d",
        (offset_ms, since, until),
    ).fetchall()
    rows = conn.execute(
        "SELECT (p.ts_ms + ?) / 86400000 AS d, i.category, count(DISTINCT p.id) FROM purchases p"
        " JOIN purchase_items i ON i.purchase_id = p.id"
        " WHERE p.ts_ms >= ? AND p.ts_ms < ? AND i.category IS NOT NULL GROUP BY d, i.category",
        (offset_ms, since, until),
    ).fetchall()
    categories = tuple(sorted({str(c) for _, c, _ in rows}))
    code = {c: i for i, c in enumerate(categories)}
    baskets = np.zeros(days, np.int64)
    with_category = np.zeros((days, len(categories)), np.int64)
    for d, n in totals:
        baskets[int(d) - first_day] = int(n)
    for d, c, n in rows:
        with_category[int(d) - first_day, code[str(c)]] = int(n)
    return DailyBaskets(first_day, categories, baskets, with_category)


def lifts(
    w_total: int, w_count: npt.NDArray[np.int64], b_total: int, b_count: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per category: the lift (baskets with it per basket in the window over the same in the baseline)
    and its one-sided z-score under a binomial at the baseline rate. NaN where the baseline has none: a
    category new to the store has no season yet."""
    rate = b_count / b_total
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(rate > 0, (w_count / w_total) / rate, np.nan)
        expected = w_total * rate
        spread = np.sqrt(expected * (1 - np.minimum(rate, 0.999)))
        z = np.where(rate > 0, (w_count - expected) / spread, np.nan)
    return lift, z


@dataclass(frozen=True, slots=True)
class _Signal:
    category: str
    kind: Kind
    lift: float
    z: float
    holiday: str | None = None


def in_season(
    sales: DailyBaskets, today: int, upcoming: list[HolidayNotice], past: Callable[[str], list[int]]
) -> list[SeasonalItem]:
    """The categories in season on store-local day ``today`` (module docstring), the strongest lift
    first. ``past(name)`` gives the epoch days of the holiday called ``name`` in earlier years."""
    found: list[_Signal] = []
    found += _signals(sales, "trend", [(today - TREND_DAYS, today)])
    year_ago = today - 364
    found += _signals(sales, "season", [(year_ago, year_ago + HORIZON_DAYS)])
    days_away = {notice.days_away for notice in upcoming}
    for notice in upcoming:
        if notice.days_away - 1 in days_away:  # the second day of a run of holidays: the first one's week
            continue
        windows = [(day - PRE_HOLIDAY_DAYS, day) for day in past(notice.name)]
        found += _signals(sales, "holiday", windows, notice.name)
    best: dict[str, _Signal] = {}
    for s in found:
        if s.category not in best or s.lift > best[s.category].lift:
            best[s.category] = s
    ranked = sorted(best.values(), key=lambda s: (-s.lift, s.category))
    return [SeasonalItem(s.category, s.kind, round(s.lift, 2), _reason(s), s.holiday) for s in ranked]


def _signals(
    sales: DailyBaskets, kind: Kind, windows: list[tuple[int, int]], holiday: str | None = None
) -> list[_Signal]:
    """Categories that pass the thresholds in ``windows`` pooled (each against the weeks before it),
    the z-scores widened by the baselines' overdispersion (`dispersion`)."""
    n = len(sales.categories)
    w_total, w_count, b_total, b_count = 0, np.zeros(n, np.int64), 0, np.zeros(n, np.int64)
    blocks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    for start, stop in windows:
        w, b = sales.window(start, stop), sales.window(start - BASELINE_DAYS, start)
        if w is None or b is None:
            continue
        w_total, w_count = w_total + w[0], w_count + w[1]
        b_total, b_count = b_total + b[0], b_count + b[1]
        blocks.append(_blocks(sales, start - BASELINE_DAYS, start, 7))
    if w_total == 0 or b_total == 0:
        return []
    lift, z = lifts(w_total, w_count, b_total, b_count)
    if blocks:
        z = z / np.sqrt(np.max([dispersion(*block) for block in blocks], axis=0))
    keep = (lift >= MIN_LIFT) & (z >= MIN_Z) & (w_count >= MIN_BASKETS)
    return [
        _Signal(sales.categories[i], kind, float(lift[i]), float(z[i]), holiday)
        for i in np.flatnonzero(keep).tolist()
    ]


def _blocks(
    sales: DailyBaskets, start: int, stop: int, length: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The baseline [start, stop) cut into blocks as long as the window: baskets and per-category counts."""
    lo, k = start - sales.first_day, (stop - start) // length
    totals = sales.baskets[lo : lo + k * length].reshape(k, length).sum(axis=1)
    counts = sales.with_category[lo : lo + k * length].reshape(k, length, -1).sum(axis=1)
    return totals, counts


def dispersion(totals: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Per category, how much more its per-basket rate varies between the baseline's weeks than a
    binomial says: Pearson's chi-square over its degrees of freedom, shrunk towards the median over
    categories (as many degrees of freedom again), at least 1. Shoppers come back and stock up, so
    their baskets are not independent draws: without this the z-scores are too large and a quiet
    store sees seasons in noise (`tests/edge/test_seasonal.py` measures the false-alarm rate)."""
    k, n = totals.shape[0], counts.shape[1]
    if k < 2 or np.any(totals == 0):
        return np.ones(n)
    rate = counts.sum(axis=0) / totals.sum()
    usable = (rate > 0) & (rate < 1)
    phi = np.ones(n)
    if not usable.any():
        return phi
    expected = totals[:, None] * rate[None, usable]
    own = ((counts[:, usable] - expected) ** 2 / (expected * (1 - rate[None, usable]))).sum(axis=0) / (k - 1)
    pooled = float(np.median(own))
    phi[usable] = (own + pooled) / 2
    return np.maximum(phi, 1.0)


def _reason(s: _Signal) -> str:
    times = f"{s.lift:.1f} times as many"
    if s.kind == "holiday":
        return f"in the week before {s.holiday} last time, {s.category} was in {times} of this store's baskets as usual"
    if s.kind == "season":
        return f"at this time last year, {s.category} was in {times} of this store's baskets as usual"
    return f"{s.category} is in {times} of this store's baskets as usual these two weeks"


def upcoming_holidays(country: str, today: int, horizon: int = HORIZON_DAYS) -> list[HolidayNotice]:
    """The country's public holidays on days (today, today + horizon], soonest first."""
    first, last = EPOCH + timedelta(days=today + 1), EPOCH + timedelta(days=today + horizon)
    out = []
    for year in range(first.year, last.year + 1):
        local = dict(holiday_names(country, year))
        for day, name in holiday_names(country, year, "en_US"):
            if first <= day <= last:
                out.append(HolidayNotice(day, name, local.get(day, name), (day - EPOCH).days - today))
    return out


def past_holidays(country: str, today: int, years: int = 2) -> Callable[[str], list[int]]:
    """``name`` -> epoch days of the holiday of that English name in the ``years`` before ``today``'s."""
    this_year = (EPOCH + timedelta(days=today)).year

    def days_of(name: str) -> list[int]:
        return [
            (day - EPOCH).days
            for year in range(this_year - years, this_year + 1)
            for day, n in holiday_names(country, year, "en_US")
            if n == name and (day - EPOCH).days < today
        ]

    return days_of


class SeasonalOutlook:
    """What is in season in this store today, rebuilt once a store-local day (module docstring)."""

    def __init__(self, db_path: Path, clock: StoreClock, country: str) -> None:
        # Its own connection: a year of baskets at 20,000 households is seconds of query (docs/customers.md),
        # which must not queue the kiosks' list reads behind it.
        self._reads = ReadThread(db_path, "seasonal-reader")
        self._clock = clock
        self._country = country
        self._today: int | None = None
        self.items: list[SeasonalItem] = []
        self.holidays: list[HolidayNotice] = []

    async def refresh(self, now_ms: int | None = None) -> None:
        now = self._clock.now_ms() if now_ms is None else now_ms
        offset_ms = self._clock.utc_offset_min(now) * 60_000
        today = local_day(now, offset_ms // 60_000)
        sales = await self._reads.run(lambda c: daily_baskets(c, today - HISTORY_DAYS, today, offset_ms))
        country = self._country
        upcoming, items = await asyncio.get_running_loop().run_in_executor(
            None, lambda: _outlook(sales, today, country)
        )
        self.items, self.holidays, self._today = items, upcoming, today

    async def close(self) -> None:
        await self._reads.close()

    async def run(self) -> None:
        while True:
            now = self._clock.now_ms()
            if self._today != local_day(now, self._clock.utc_offset_min(now)):
                await self.refresh(now)
            await asyncio.sleep(CHECK_S)

    def for_list(self, on_list: set[str], limit: int) -> list[SeasonalItem]:
        """Today's seasonal items not already on a list, at most ``limit``."""
        return [item for item in self.items if item.category not in on_list][:limit]


def _outlook(sales: DailyBaskets, today: int, country: str) -> tuple[list[HolidayNotice], list[SeasonalItem]]:
    upcoming = upcoming_holidays(country, today)
    return upcoming, in_season(sales, today, upcoming, past_holidays(country, today))
