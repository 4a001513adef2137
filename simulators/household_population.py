"""Households with hidden ground truth, for the long-horizon purchase simulator.

Each household has a size, a weekly shopping rhythm (which weekdays, how many trips, what time of
day), a share of its needs it buys in this store (store loyalty), brand loyalty, price sensitivity, and
per category: whether it uses it, how fast it consumes it (packs per day) and how many packs it buys at
a time. Life changes are scheduled up front: some households join late, some move away (churn), some
have a baby (the household grows and starts buying baby food).

Categories come from the planogram; their base price, typical weekly use, penetration, seasonality and
festive boost come from `DEMO_CATEGORY_TRAITS` (the demo store's 40 categories) or, for a category the
table does not know, from a deterministic hash of its name.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensors.planogram import Planogram

BABY_CATEGORY = "baby-food"
# Categories whose use grows with a baby in the household (by the factor), besides baby food itself.
BABY_BOOST = {"milk": 1.3, "yogurt": 1.2, "fruit": 1.15, "detergent": 1.4, "toilet-paper": 1.2}


@dataclass(frozen=True, slots=True)
class CategoryTraits:
    price: float  # base unit price
    weekly_packs: float  # packs a 2.5-person household that uses the category goes through in a week
    penetration: float  # share of households that use it
    seasonal_amplitude: float = 0.0  # use is multiplied by 1 + a*cos(2*pi*(doy - peak)/365.25)
    seasonal_peak_doy: int = 0
    festive: bool = False  # bought more in the weeks around Christmas and New Year


# price, weekly packs, penetration, seasonal amplitude, peak day of year, festive
DEMO_CATEGORY_TRAITS: dict[str, CategoryTraits] = {
    "fruit": CategoryTraits(1.90, 2.0, 0.90, 0.10, 200),
    "vegetables": CategoryTraits(1.20, 1.2, 0.80),
    "salad": CategoryTraits(1.50, 0.8, 0.50, 0.35, 190),
    "herbs": CategoryTraits(1.80, 0.3, 0.25, 0.30, 180),
    "potatoes": CategoryTraits(2.50, 0.5, 0.70, 0.15, 20),
    "bread": CategoryTraits(2.90, 2.0, 0.85),
    "rolls": CategoryTraits(1.60, 0.8, 0.50),
    "cereal": CategoryTraits(2.20, 0.5, 0.55),
    "jam": CategoryTraits(2.40, 0.15, 0.45),
    "honey": CategoryTraits(4.50, 0.08, 0.30, 0.20, 15),
    "pasta": CategoryTraits(1.30, 0.6, 0.75),
    "rice": CategoryTraits(2.10, 0.25, 0.60),
    "sauces": CategoryTraits(1.90, 0.5, 0.60),
    "canned-tomatoes": CategoryTraits(0.90, 0.5, 0.55),
    "soup": CategoryTraits(1.50, 0.4, 0.40, 0.45, 15),
    "flour": CategoryTraits(1.00, 0.1, 0.40, festive=True),
    "sugar": CategoryTraits(1.10, 0.1, 0.45, festive=True),
    "oil": CategoryTraits(2.80, 0.12, 0.60),
    "coffee": CategoryTraits(5.50, 0.3, 0.60),
    "tea": CategoryTraits(2.90, 0.15, 0.50, 0.20, 15),
    "biscuits": CategoryTraits(1.40, 0.5, 0.55, festive=True),
    "crisps": CategoryTraits(1.60, 0.6, 0.50, 0.20, 200, festive=True),
    "chocolate": CategoryTraits(1.20, 0.8, 0.60, festive=True),
    "water": CategoryTraits(0.60, 1.5, 0.40, 0.40, 200),
    "soft-drinks": CategoryTraits(1.50, 1.0, 0.45, 0.30, 200, festive=True),
    "toilet-paper": CategoryTraits(4.20, 0.12, 0.80),
    "detergent": CategoryTraits(6.50, 0.07, 0.70),
    "baby-food": CategoryTraits(1.20, 2.5, 0.04),
    "pet-food": CategoryTraits(0.90, 1.5, 0.25),
    "dish-soap": CategoryTraits(1.70, 0.08, 0.65),
    "milk": CategoryTraits(1.10, 3.0, 0.85),
    "yogurt": CategoryTraits(1.40, 1.0, 0.55),
    "cheese": CategoryTraits(3.90, 0.5, 0.70, festive=True),
    "butter": CategoryTraits(2.20, 0.3, 0.70, festive=True),
    "eggs": CategoryTraits(2.60, 0.4, 0.70),
    "ice-cream": CategoryTraits(3.50, 0.25, 0.35, 0.70, 200),
    "frozen-vegetables": CategoryTraits(1.80, 0.25, 0.45),
    "frozen-pizza": CategoryTraits(2.90, 0.5, 0.35),
    "frozen-fish": CategoryTraits(3.10, 0.3, 0.35),
    "frozen-chips": CategoryTraits(2.20, 0.3, 0.40),
}


@dataclass(frozen=True, slots=True)
class CategoryProfile:
    """A category as the simulator sells it: its SKUs (from the planogram) and its traits."""

    name: str
    skus: tuple[str, ...]
    traits: CategoryTraits


def category_profiles(planogram: Planogram) -> tuple[CategoryProfile, ...]:
    """The planogram's categories in shelf order, each with its SKUs and traits."""
    skus: dict[str, list[str]] = {}
    for shelf in planogram.shelves.values():
        listed = skus.setdefault(shelf.category, [])
        if shelf.sku not in listed:
            listed.append(shelf.sku)
    return tuple(CategoryProfile(name, tuple(found), traits_for(name)) for name, found in skus.items())


def traits_for(category: str) -> CategoryTraits:
    """Traits from the demo table, else derived deterministically from the category's name."""
    known = DEMO_CATEGORY_TRAITS.get(category)
    if known is not None:
        return known
    h = zlib.crc32(category.encode())
    return CategoryTraits(
        price=round(0.8 + (h % 500) / 100, 2),
        weekly_packs=round(0.1 + ((h >> 9) % 100) / 100, 2),
        penetration=round(0.2 + ((h >> 17) % 60) / 100, 2),
    )


@dataclass(frozen=True, slots=True)
class HouseholdTruth:
    """One household's hidden ground truth (what the models try to recover from its purchases)."""

    index: int
    household_id: str  # the pseudonymous id in the history file
    loyalty_id: str  # what its loyalty card sends at the till
    size: int  # people, before any baby
    trips_per_week: int
    trip_weekdays: tuple[int, ...]  # Monday = 0
    preferred_minute: int  # usual time of day of its trips
    store_loyalty: float  # share of its needs it buys in this store (the rest elsewhere, unseen)
    brand_loyalty: float  # probability of its usual SKU when a category has several
    price_sensitivity: float  # 0..1: how strongly promotions pull purchases forward and stockpile
    joined_day: int  # simulation day it first could shop here (0 = from the start)
    churn_day: int | None  # day it moved away
    baby_day: int | None  # day its baby arrived


@dataclass(frozen=True, slots=True, eq=False)
class Population:
    """The households and their per-category truth. Arrays are households x categories."""

    households: tuple[HouseholdTruth, ...]
    uses: npt.NDArray[np.bool_]  # uses the category at the start
    rate: npt.NDArray[np.float64]  # packs consumed per day at the start
    pack: npt.NDArray[np.int64]  # packs bought at a time
    buffer_days: npt.NDArray[np.float64]  # days of stock it likes to keep beyond the next trip
    usual_sku: npt.NDArray[np.int64]  # index into the category's SKUs


def make_population(
    profiles: Sequence[CategoryProfile],
    size: int,
    days: int,
    rng: np.random.Generator,
    *,
    churn_per_year: float = 0.10,
    babies_per_year: float = 0.04,
    late_joiners: float = 0.08,
) -> Population:
    if not profiles:
        raise ValueError("a population needs at least one product category")
    n_cat = len(profiles)
    people = rng.choice([1, 2, 3, 4, 5], p=[0.28, 0.34, 0.16, 0.14, 0.08], size=size)
    trips = rng.choice([1, 2, 3], p=[0.35, 0.45, 0.20], size=size)
    first_weekday = rng.integers(0, 7, size=size)
    slot = rng.choice([10 * 60, 13 * 60, 18 * 60], p=[0.3, 0.25, 0.45], size=size)
    minute = np.clip(slot + rng.normal(0, 50, size=size), 8 * 60, 21 * 60).astype(int)
    store_loyalty = np.clip(rng.beta(8, 2, size=size), 0.4, 1.0)
    brand_loyalty = rng.beta(5, 2, size=size)
    price_sensitivity = rng.beta(1.5, 3, size=size)
    years = days / 365.25
    joined = np.where(rng.random(size) < late_joiners, rng.integers(0, max(1, days), size=size), 0)
    churns = rng.random(size) < 1 - math.exp(-churn_per_year * years)
    churn_day = joined + (rng.random(size) * (days - joined)).astype(int)
    babies = (rng.random(size) < 1 - math.exp(-babies_per_year * years)) & (people >= 2) & (people <= 4)
    baby_day = joined + (rng.random(size) * (days - joined)).astype(int)

    weekly = np.array([p.traits.weekly_packs for p in profiles])
    penetration = np.array([p.traits.penetration for p in profiles])
    # Bigger households use more categories: penetration ** (1 / (1 + 0.15 * (people - 1))).
    exponent = 1.0 / (1.0 + 0.15 * (people[:, None] - 1))
    uses = rng.random((size, n_cat)) < penetration[None, :] ** exponent
    names = [p.name for p in profiles]
    if BABY_CATEGORY in names:
        # Baby food only where there is a baby: the households that already have one use it.
        baby_col = names.index(BABY_CATEGORY)
        uses[:, baby_col] &= (people >= 3) & ~babies
    rate = weekly[None, :] / 7 * (people[:, None] / 2.5) ** 0.7 * rng.lognormal(0, 0.35, (size, n_cat))
    pack = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1], size=(size, n_cat))
    buffer_days = rng.uniform(0.5, 3.0, size=(size, n_cat))
    n_skus = np.array([len(p.skus) for p in profiles])
    usual_sku = (rng.random((size, n_cat)) * n_skus[None, :]).astype(np.int64)

    households = tuple(
        HouseholdTruth(
            index=i,
            household_id=f"hh-{i + 1:06d}",
            loyalty_id=f"LOY-{i + 1:06d}",
            size=int(people[i]),
            trips_per_week=int(trips[i]),
            trip_weekdays=tuple(
                sorted({int(first_weekday[i] + round(k * 7 / trips[i])) % 7 for k in range(trips[i])})
            ),
            preferred_minute=int(minute[i]),
            store_loyalty=round(float(store_loyalty[i]), 3),
            brand_loyalty=round(float(brand_loyalty[i]), 3),
            price_sensitivity=round(float(price_sensitivity[i]), 3),
            joined_day=int(joined[i]),
            churn_day=int(churn_day[i]) if churns[i] else None,
            baby_day=int(baby_day[i]) if babies[i] else None,
        )
        for i in range(size)
    )
    return Population(households, uses, rate, pack, buffer_days, usual_sku)
