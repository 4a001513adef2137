"""Long-horizon household purchase simulator: months of loyalty-card baskets with hidden ground truth.

Unlike `simulators.store` (minutes of a store in real time), this simulates days: every household keeps
a stock of each category it uses, consumes it (faster in its season, around the holidays, with a baby),
and shops on its weekly rhythm, with noise (skipped or late trips, top-up trips when a staple runs out).
On a trip it buys what would run out before its next trip, in its usual pack count; a promotion pulls
purchases forward and makes price-sensitive households stockpile. Part of its needs it buys elsewhere
(store loyalty), so the store sees gaps. Households go on summer holidays, join late, move away
(churn) and have babies. Trips follow the store's calendar (`simulators.shopping_calendar`): busier
Fridays and Saturdays, a quiet late-opening Sunday, closed on 25 December, 1 January and the country's
public holidays, with extra trips on the eve of one.

`simulate_households(config)` returns every basket line plus the truth; `write_history(sim, path)`
writes the purchase-history format documented in `models/history.py` (its own writer: simulators may
not import models); `pos_transactions(sim, lanes)` yields the same baskets as the tills' wire messages
(`sensors.schemas.PosTransactionPayload`). Everything is deterministic from ``config.seed``.

    python -m simulators.household_history --out var/households.npz --households 2000 --days 365
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sensors.planogram import load_planogram
from sensors.schemas import PosItem, PosTransactionPayload
from simulators.errors import SimulatorError
from simulators.household_population import (
    BABY_BOOST,
    BABY_CATEGORY,
    CategoryProfile,
    Population,
    category_profiles,
    make_population,
)
from simulators.shopping_calendar import ShoppingCalendar

DEMO_PLANOGRAM = Path(__file__).resolve().parent / "demo_store" / "planogram.toml"
EPOCH = date(1970, 1, 1)
# The purchase-history format of models/history.py (kept in step by tests/models/test_models_history.py).
HISTORY_FORMAT = "storeedge-purchase-history"
HISTORY_VERSION = 1
CSV_HEADER = ("household", "category", "date", "time", "basket", "qty", "price", "promo")

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

    def __post_init__(self) -> None:
        if self.households < 1:
            raise HouseholdSimulationError(f"households: must be >= 1, got {self.households}")
        if self.days < 1:
            raise HouseholdSimulationError(f"days: must be >= 1, got {self.days}")
        for name in ("churn_per_year", "babies_per_year", "late_joiners"):
            if not 0 <= getattr(self, name) <= 1:
                raise HouseholdSimulationError(f"{name}: must be within 0..1, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True, eq=False)
class HouseholdSimulation:
    """The simulated basket lines (columns, one row per line, in time order) and the hidden truth."""

    config: HouseholdSimConfig
    profiles: tuple[CategoryProfile, ...]
    population: Population
    promo_depth: npt.NDArray[np.float64]  # categories x weeks: price cut (0 = no promotion that week)
    household: npt.NDArray[np.int32]
    category: npt.NDArray[np.int32]
    sku: npt.NDArray[np.int32]  # index into the category's SKUs
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


def simulate_households(config: HouseholdSimConfig) -> HouseholdSimulation:
    profiles = category_profiles(load_planogram(config.planogram))
    return simulate_with_profiles(config, profiles)


def simulate_with_profiles(
    config: HouseholdSimConfig, profiles: Sequence[CategoryProfile]
) -> HouseholdSimulation:
    """The simulation itself, for any category profiles (the planogram's by default)."""
    streams = np.random.SeedSequence(config.seed).spawn(3)
    pop_rng, day_rng, promo_rng = (np.random.default_rng(s) for s in streams)
    profiles = tuple(profiles)
    population = make_population(
        profiles,
        config.households,
        config.days,
        pop_rng,
        churn_per_year=config.churn_per_year,
        babies_per_year=config.babies_per_year,
        late_joiners=config.late_joiners,
    )
    n_weeks = config.days // 7 + 2
    promo_on = promo_rng.random((len(profiles), n_weeks)) < PROMO_WEEK_PROBABILITY
    promo_depth = np.where(promo_on, np.round(promo_rng.uniform(0.15, 0.35, promo_on.shape), 2), 0.0)
    return _Simulation(config, profiles, population, promo_depth, day_rng).run()


class _Simulation:
    def __init__(
        self,
        config: HouseholdSimConfig,
        profiles: tuple[CategoryProfile, ...],
        population: Population,
        promo_depth: npt.NDArray[np.float64],
        rng: np.random.Generator,
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
            for name in (
                "household",
                "category",
                "sku",
                "day",
                "minute",
                "second",
                "basket",
                "qty",
                "price",
                "promo",
            )
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


# ---------------------------------------------------------------------------------------------------
# Output: the history file and the tills' messages.


def write_history(sim: HouseholdSimulation, path: Path) -> None:
    """Write the purchase-history format of models/history.py (`.npz` or `.csv`)."""
    households = [h.household_id for h in sim.population.households]
    categories = [p.name for p in sim.profiles]
    day = sim.day.astype(np.int32) + np.int32(sim.start_epoch_day)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with path.open("wb") as handle:
                np.savez_compressed(
                    handle,
                    household=sim.household.astype(np.int32),
                    category=sim.category.astype(np.int32),
                    day=day,
                    minute=sim.minute.astype(np.int16),
                    basket=sim.basket.astype(np.int64),
                    qty=sim.qty.astype(np.float32),
                    price=sim.price.astype(np.float32),
                    promo=sim.promo.astype(np.bool_),
                    households=np.asarray(households, dtype=np.str_),
                    categories=np.asarray(categories, dtype=np.str_),
                    format=np.asarray(HISTORY_FORMAT),
                    version=np.asarray(HISTORY_VERSION),
                )
        elif suffix == ".csv":
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(CSV_HEADER)
                for i in range(sim.n_lines):
                    minute = int(sim.minute[i])
                    writer.writerow(
                        (
                            households[sim.household[i]],
                            categories[sim.category[i]],
                            (EPOCH + timedelta(days=int(day[i]))).isoformat(),
                            f"{minute // 60:02d}:{minute % 60:02d}",
                            int(sim.basket[i]),
                            np.format_float_positional(sim.qty[i], trim="-"),
                            np.format_float_positional(sim.price[i], trim="-"),
                            int(sim.promo[i]),
                        )
                    )
        else:
            raise HouseholdSimulationError(f"{path}: history files end in .npz or .csv")
    except OSError as exc:
        raise SimulatorError(f"{path}: cannot write history: {exc.strerror}") from exc


def write_simulated_history(
    path: Path, *, seed: int = 7, households: int = 2000, days: int = 365, start: date = date(2024, 1, 1)
) -> None:
    """Simulate the demo store's households and write their history: the `simulated` training source."""
    write_history(
        simulate_households(HouseholdSimConfig(seed=seed, households=households, days=days, start=start)),
        path,
    )


@dataclass(frozen=True, slots=True)
class TillMessage:
    """One basket as its till sends it: the lane and the wire payload."""

    lane: str
    payload: PosTransactionPayload


def pos_transactions(
    sim: HouseholdSimulation, lanes: Sequence[str] = ("1", "2", "3", "4")
) -> Iterator[TillMessage]:
    """Every simulated basket as a `PosTransactionPayload`, in time order, ``seq`` counting per lane."""
    if not lanes:
        raise HouseholdSimulationError("lanes: need at least one till lane")
    if not sim.n_lines:
        return
    rng = np.random.default_rng(np.random.SeedSequence([sim.config.seed, 0x7011]))
    order = np.lexsort((sim.basket, sim.second, sim.minute, sim.day))
    bounds = np.flatnonzero(np.diff(sim.basket[order])) + 1
    seq = dict.fromkeys(lanes, 0)
    lane_of = rng.integers(0, len(lanes), int(sim.basket.max()) + 1)
    for lines in np.split(order, bounds):
        first = lines[0]
        ts_ms = (
            (sim.start_epoch_day + int(sim.day[first])) * 86_400
            + int(sim.minute[first]) * 60
            + int(sim.second[first])
        ) * 1000
        items = [
            PosItem(
                sku=sim.profiles[int(sim.category[i])].skus[int(sim.sku[i])],
                qty=float(sim.qty[i]),
                unit_price=round(float(sim.price[i]), 2),
            )
            for i in lines
        ]
        lane = lanes[int(lane_of[sim.basket[first]])]
        household = sim.population.households[int(sim.household[first])]
        yield TillMessage(
            lane,
            PosTransactionPayload(
                ts=ts_ms,
                seq=seq[lane],
                basket_id=f"hb-{int(sim.basket[first]):09d}",
                items=items,
                total=round(sum(item.qty * item.unit_price for item in items), 2),
                loyalty_id=household.loyalty_id,
            ),
        )
        seq[lane] += 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.household_history",
        description="Simulate households shopping for months and write their purchase history "
        "(example: --out var/households.npz --households 2000 --days 365).",
    )
    parser.add_argument("--out", type=Path, required=True, help="history file to write (.npz or .csv)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--start", type=date.fromisoformat, default=date(2024, 1, 1), help="first day (YYYY-MM-DD)"
    )
    args = parser.parse_args(argv)
    try:
        write_simulated_history(
            args.out, seed=args.seed, households=args.households, days=args.days, start=args.start
        )
    except SimulatorError as exc:
        parser.exit(2, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
