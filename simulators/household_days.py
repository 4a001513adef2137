"""The household simulation's settings, its result and the day-by-day engine behind
`simulators.household_history.simulate_households` (that module's docstring says what is simulated)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simulators.errors import SimulatorError
from simulators.household_population import BABY_BOOST, BABY_CATEGORY, CategoryProfile, Population
from simulators.product_choice import ProductChooser
from simulators.seasonal_demand import SeasonalDemand
from simulators.shopping_calendar import ShoppingCalendar

DEMO_PLANOGRAM = Path(__file__).resolve().parent / "demo_store" / "planogram.toml"
EPOCH = date(1970, 1, 1)

FESTIVE_BOOST = 1.6  # use of festive categories in the festive weeks
PROMO_WEEK_PROBABILITY = 0.10
SHOW_PROBABILITY = 0.8  # a planned trip happens on its day
LATE_PROBABILITY = 0.6  # ... else the next day
TOPUP_PROBABILITY = 0.3  # an unplanned trip when a staple has run out
STAPLE_WEEKLY_PACKS = 1.5
IMPULSE_PROBABILITY = 0.03  # a used category bought without need
TRY_NEW_PROBABILITY = 0.002  # a category the household does not use, bought once
VACATION_PROBABILITY = 0.6


class HouseholdSimulationError(SimulatorError, ValueError):
    """A household simulation setting is out of range; the message names the field."""


@dataclass(frozen=True, slots=True)
class HouseholdSimConfig:
    seed: int = 7
    households: int = 2000
    days: int = 365
    start: date = date(2024, 1, 1)
    planogram: Path = DEMO_PLANOGRAM
    churn_per_year: float = 0.10
    babies_per_year: float = 0.04
    late_joiners: float = 0.08
    calendar: ShoppingCalendar = field(
        default_factory=ShoppingCalendar
    )  # weekly shape, opening hours, public holidays
    catalog: Path | None = None  # the store's catalog.json: lines name its products at its prices
    seasonal_demand: bool = False  # seasons and pre-holiday peaks in the categories' demand

    def __post_init__(self) -> None:
        if self.households < 1:
            raise HouseholdSimulationError(f"households: must be >= 1, got {self.households}")
        if self.days < 1:
            raise HouseholdSimulationError(f"days: must be >= 1, got {self.days}")
        for name in ("churn_per_year", "babies_per_year", "late_joiners"):
            if not 0 <= getattr(self, name) <= 1:
                raise HouseholdSimulationError(f"{name}: must be within 0..1, got {getattr(self, name)}")


# The per-line columns of a `HouseholdSimulation`.
LINE_COLUMNS = ("household", "category", "sku", "day", "minute", "second", "basket", "qty", "price", "promo")


@dataclass(frozen=True, slots=True, eq=False)
class HouseholdSimulation:
    """The simulated basket lines (columns, one row per line, in time order) and the hidden truth."""

    config: HouseholdSimConfig
    profiles: tuple[CategoryProfile, ...]  # with a catalog: each category's SKUs are the catalog's
    population: Population
    promo_depth: npt.NDArray[np.float64]  # categories x weeks: price cut (0 = no promotion that week)
    household: npt.NDArray[np.int32]
    category: npt.NDArray[np.int32]
    sku: npt.NDArray[np.int32]  # index into the category's SKUs (``profiles[category].skus``)
    day: npt.NDArray[np.int32]  # simulation day (0 = config.start)
    minute: npt.NDArray[np.int16]
    second: npt.NDArray[np.int8]
    basket: npt.NDArray[np.int64]
    qty: npt.NDArray[np.float32]
    price: npt.NDArray[np.float32]
    promo: npt.NDArray[np.bool_]
    final_rate: npt.NDArray[np.float64] = field(repr=False)  # packs/day at the end (after babies)

    @property
    def n_lines(self) -> int:
        return int(self.household.shape[0])

    @property
    def start_epoch_day(self) -> int:
        return (self.config.start - EPOCH).days


class DaySimulation:
    def __init__(
        self,
        config: HouseholdSimConfig,
        profiles: tuple[CategoryProfile, ...],
        population: Population,
        promo_depth: npt.NDArray[np.float64],
        rng: np.random.Generator,
        chooser: ProductChooser | None = None,
        seasonal: SeasonalDemand | None = None,
    ) -> None:
        self.config, self.profiles, self.population, self.promo_depth, self.rng = (
            config,
            profiles,
            population,
            promo_depth,
            rng,
        )
        truth = population.households
        n = len(truth)
        self.uses = population.uses.copy()
        self.rate = population.rate.copy()
        self.trip_weekdays = np.zeros((n, 7), dtype=bool)
        for h in truth:
            self.trip_weekdays[h.index, list(h.trip_weekdays)] = True
        self.trips_per_week = np.array([h.trips_per_week for h in truth], dtype=float)
        self.minute = np.array([h.preferred_minute for h in truth])
        self.store_loyalty = np.array([h.store_loyalty for h in truth])
        self.brand_loyalty = np.array([h.brand_loyalty for h in truth])
        self.sensitivity = np.array([h.price_sensitivity for h in truth])
        self.joined = np.array([h.joined_day for h in truth])
        self.churn = np.array([h.churn_day if h.churn_day is not None else config.days + 1 for h in truth])
        self.baby = np.array([h.baby_day if h.baby_day is not None else -1 for h in truth])
        self.vacation = self._vacations(n)
        self.names = [p.name for p in profiles]
        traits = [p.traits for p in profiles]
        self.price = np.array([t.price for t in traits])
        self.amplitude = np.array([t.seasonal_amplitude for t in traits])
        self.peak = np.array([t.seasonal_peak_doy for t in traits])
        self.festive = np.array([t.festive for t in traits])
        self.staple = np.array([t.weekly_packs >= STAPLE_WEEKLY_PACKS for t in traits])
        self.n_skus = np.array([len(p.skus) for p in profiles])
        # Start as if the store had always been open: stock somewhere within the household's cycle.
        cycle = 7 / self.trips_per_week[:, None] + population.buffer_days
        self.stock = self.rate * rng.uniform(0, 1, self.rate.shape) * cycle
        self.late = np.zeros(n, dtype=bool)
        self.chooser, self.seasonal = chooser, seasonal
        self.pace: npt.NDArray[np.float64] | None = None  # today's seasonal factor on use, when seasonal
        self.parts: list[dict[str, npt.NDArray[Any]]] = []
        self.next_basket = 0

    def _vacations(self, n: int) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
        """Per calendar year of the run: each household's summer holiday (start, end) in sim days."""
        spans = []
        for year in range(self.config.start.year, (self.config.start + timedelta(self.config.days)).year + 1):
            july = (date(year, 7, 1) - self.config.start).days
            away = self.rng.random(n) < VACATION_PROBABILITY
            begin = july + self.rng.integers(0, 55, n)
            length = self.rng.integers(7, 15, n)
            spans.append((np.where(away, begin, -1), np.where(away, begin + length, -1)))
        return spans

    def run(self) -> HouseholdSimulation:
        for d in range(self.config.days):
            self._day(d)
        columns = {
            name: np.concatenate([p[name] for p in self.parts]) if self.parts else np.zeros(0)
            for name in LINE_COLUMNS
        }
        return HouseholdSimulation(
            config=self.config,
            profiles=self.profiles,
            population=self.population,
            promo_depth=self.promo_depth,
            household=columns["household"].astype(np.int32),
            category=columns["category"].astype(np.int32),
            sku=columns["sku"].astype(np.int32),
            day=columns["day"].astype(np.int32),
            minute=columns["minute"].astype(np.int16),
            second=columns["second"].astype(np.int8),
            basket=columns["basket"].astype(np.int64),
            qty=columns["qty"].astype(np.float32),
            price=columns["price"].astype(np.float32),
            promo=columns["promo"].astype(bool),
            final_rate=self.rate,
        )

    def _day(self, d: int) -> None:
        rng = self.rng
        today = self.config.start + timedelta(days=d)
        doy = today.timetuple().tm_yday
        away = np.zeros(len(self.joined), dtype=bool)
        for begin, end in self.vacation:
            away |= (begin <= d) & (d < end)
        present = (self.joined <= d) & (d < self.churn)
        self._life_changes(d)

        season = 1 + self.amplitude * np.cos(2 * math.pi * (doy - self.peak) / 365.25)
        festive_weeks = (today.month == 12 and today.day >= 15) or (today.month == 1 and today.day <= 2)
        demand = season * np.where(self.festive & festive_weeks, FESTIVE_BOOST, 1.0)
        if self.seasonal is not None:
            self.pace = self.seasonal.factors(today)
            demand = demand * self.pace
        use = self.rate * demand[None, :] * rng.lognormal(0, 0.25, self.rate.shape)
        consuming = present & ~away
        self.stock[consuming] = np.maximum(0.0, self.stock[consuming] - use[consuming])
        calendar = self.config.calendar
        planned = self.trip_weekdays[:, today.weekday()]
        if calendar.is_closed(today):
            self.late = planned.copy()  # a trip planned for a closed day may happen the next day
            return
        traffic = calendar.traffic(today)
        shows = planned & (rng.random(planned.shape) < SHOW_PROBABILITY * min(1.0, traffic))
        late = self.late & (rng.random(planned.shape) < LATE_PROBABILITY)
        self.late = planned & ~shows
        ran_out = np.any(self.uses & self.staple[None, :] & (self.stock < 0.5 * self.rate), axis=1)
        topup = ~shows & ~late & ran_out & (rng.random(planned.shape) < min(1.0, TOPUP_PROBABILITY * traffic))
        # A busy day (Friday, Saturday) brings extra full trips, as if planned: each household comes with
        # its daily trip rate times the extra traffic; on the eve of a holiday, households stock up.
        extra = max(0.0, traffic - 1) * self.trips_per_week / 7
        extra += calendar.eve_extra_trip_probability if calendar.is_eve(today) else 0.0
        stock_up = ~planned & (rng.random(planned.shape) < extra)
        trip = consuming & (shows | late | topup | stock_up)
        rows = np.flatnonzero(trip)
        if rows.size:
            self._shop(d, rows, regular=(shows | late | stock_up)[rows])

    def _life_changes(self, d: int) -> None:
        born = np.flatnonzero(self.baby == d)
        if not born.size:
            return
        if BABY_CATEGORY in self.names:
            col = self.names.index(BABY_CATEGORY)
            self.uses[born, col] = True
            weekly = self.profiles[col].traits.weekly_packs
            self.rate[born, col] = weekly / 7 * self.rng.lognormal(0, 0.25, born.size)
        for name, factor in BABY_BOOST.items():
            if name in self.names:
                self.rate[born, self.names.index(name)] *= factor

    def _shop(self, d: int, rows: npt.NDArray[np.intp], regular: npt.NDArray[np.bool_]) -> None:
        rng = self.rng
        pop = self.population
        depth = self.promo_depth[:, d // 7]
        on_promo = depth > 0
        gap = 7 / self.trips_per_week[rows]
        buffer = pop.buffer_days[rows]
        pull = on_promo[None, :] * self.sensitivity[rows, None] * 7
        # A regular trip covers until the next one; a top-up trip only what is about to run out.
        cover = np.where(regular[:, None], gap[:, None] + buffer + pull, buffer)
        rate, stock, uses = self.rate[rows], self.stock[rows], self.uses[rows]
        if self.pace is not None:  # buying for the season's pace of use (Christmas baking ahead)
            rate = rate * self.pace[None, :]
        need = uses & (stock < rate * cover)
        deficit = rate * (cover + gap[:, None]) - stock
        qty = np.minimum(np.maximum(pop.pack[rows], np.ceil(deficit)), 24)
        stockpile = need & on_promo[None, :] & (rng.random(need.shape) < self.sensitivity[rows, None])
        qty = qty + stockpile * pop.pack[rows]
        impulse = (
            ~need & regular[:, None] & np.where(uses, rng.random(need.shape) < IMPULSE_PROBABILITY, False)
        )
        trying = ~uses & regular[:, None] & (rng.random(need.shape) < TRY_NEW_PROBABILITY)
        if BABY_CATEGORY in self.names:
            trying[:, self.names.index(BABY_CATEGORY)] = False
        buy = need | impulse | trying
        qty = np.where(need, qty, 1.0)
        self.stock[rows] = stock + np.where(buy, qty, 0.0)
        # Bought here (seen by the till) or elsewhere (only the stock knows).
        here = buy & (rng.random(buy.shape) < self.store_loyalty[rows, None])
        trip_has_lines = here.any(axis=1)
        basket_of_row = np.full(rows.size, -1, dtype=np.int64)
        n_baskets = int(trip_has_lines.sum())
        basket_of_row[trip_has_lines] = np.arange(self.next_basket, self.next_basket + n_baskets)
        self.next_basket += n_baskets
        opens, closes = self.config.calendar.opening(self.config.start + timedelta(days=d))
        wanted = self.minute[rows] + rng.normal(0, 45, rows.size)
        # Before opening (Sunday's late start): in the first hours after it instead.
        wanted = np.where(wanted < opens, opens + np.abs(rng.normal(0, 90, rows.size)), wanted)
        minute_of_row = np.clip(wanted, opens, closes - 1).astype(np.int64)
        second_of_row = rng.integers(0, 60, rows.size)
        r, c = np.nonzero(here)
        if not r.size:
            return
        household = rows[r]
        usual = pop.usual_sku[household, c]
        other = (rng.random(r.size) * self.n_skus[c]).astype(np.int64)
        sku = np.where(rng.random(r.size) < self.brand_loyalty[household], usual, other)
        # A SKU differs in price from its category's base by up to +-15%, fixed per SKU index.
        sku_factor = 1 + 0.15 * np.sin(1.7 * sku + 0.3 * c)
        price = np.round(self.price[c] * sku_factor * (1 - depth[c]), 2)
        if self.chooser is not None:  # the same draws above, so the rest of the run is unchanged
            sku = self.chooser.choose(household, c)
            price = self.chooser.prices(c, sku, depth[c])
        self.parts.append(
            {
                "household": household,
                "category": c,
                "sku": sku,
                "day": np.full(r.size, d),
                "minute": minute_of_row[r],
                "second": second_of_row[r],
                "basket": basket_of_row[r],
                "qty": qty[r, c],
                "price": price,
                "promo": on_promo[c],
            }
        )
