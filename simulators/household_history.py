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

Two options are off by default (off, the output is what it always was): ``catalog`` names the store's
``catalog.json``, and every line then names one of its products at its price, each household with a
usual product per category (`simulators.product_choice`); ``seasonal_demand`` adds seasons and
pre-holiday peaks to the categories' demand (`simulators.seasonal_demand`).

    python -m simulators.household_history --out var/households.npz --households 2000 --days 365
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from sensors.planogram import load_planogram
from sensors.schemas import PosItem, PosTransactionPayload
from simulators.errors import SimulatorError
from simulators.household_days import (
    DEMO_PLANOGRAM,
    EPOCH,
    PROMO_WEEK_PROBABILITY,
    DaySimulation,
    HouseholdSimConfig,
    HouseholdSimulation,
    HouseholdSimulationError,
)
from simulators.household_population import CategoryProfile, category_profiles, make_population
from simulators.product_choice import ProductChooser
from simulators.seasonal_demand import SeasonalDemand
from simulators.store_catalog import load_store_catalog

__all__ = [
    "DEMO_PLANOGRAM",
    "EPOCH",
    "HouseholdSimConfig",
    "HouseholdSimulation",
    "HouseholdSimulationError",
    "TillMessage",
    "pos_transactions",
    "simulate_households",
    "simulate_with_profiles",
    "write_history",
    "write_simulated_history",
]

# The purchase-history format of models/history.py (kept in step by tests/models/test_models_history.py).
HISTORY_FORMAT = "storeedge-purchase-history"
HISTORY_VERSION = 1
CSV_HEADER = ("household", "category", "date", "time", "basket", "qty", "price", "promo")


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
    names = [p.name for p in profiles]
    chooser = (
        None
        if config.catalog is None
        else ProductChooser(load_store_catalog(config.catalog), names, config.households, config.seed)
    )
    seasonal = SeasonalDemand(names, config.calendar) if config.seasonal_demand else None
    sim = DaySimulation(config, profiles, population, promo_depth, day_rng, chooser, seasonal).run()
    if chooser is None:
        return sim
    catalog_profiles = tuple(replace(p, skus=skus) for p, skus in zip(profiles, chooser.skus, strict=True))
    return replace(sim, profiles=catalog_profiles)


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
    path: Path,
    *,
    seed: int = 7,
    households: int = 2000,
    days: int = 365,
    start: date = date(2024, 1, 1),
    catalog: Path | None = None,
    seasonal_demand: bool = False,
) -> None:
    """Simulate the demo store's households and write their history: the `simulated` training source."""
    config = HouseholdSimConfig(
        seed=seed,
        households=households,
        days=days,
        start=start,
        catalog=catalog,
        seasonal_demand=seasonal_demand,
    )
    write_history(simulate_households(config), path)


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
    parser.add_argument(
        "--catalog", type=Path, help="the store's catalog.json: lines name its products at its prices"
    )
    parser.add_argument(
        "--seasonal-demand",
        action="store_true",
        help="seasons and pre-holiday peaks in the categories' demand",
    )
    args = parser.parse_args(argv)
    try:
        write_simulated_history(
            args.out,
            seed=args.seed,
            households=args.households,
            days=args.days,
            start=args.start,
            catalog=args.catalog,
            seasonal_demand=args.seasonal_demand,
        )
    except SimulatorError as exc:
        parser.exit(2, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
