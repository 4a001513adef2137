"""The store's customers: a population of households with habits, and what each buys on a visit.

A household has a few favourite categories, each bought every so many days, a typical basket size and
a visit rhythm. Whether a category is on today's list depends on how long ago the household last bought
it, so purchase histories (and loyalty-card data) have the regularity the consumption model learns.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from simulators.clock import MS_PER_DAY

POPULATION_SIZE = 500
# Share of households that show a loyalty card at the till (the brief: ~70% of baskets).
LOYALTY_SHARE = 0.7


@dataclass(frozen=True, slots=True)
class Household:
    """One household's fixed habits. What changes as it shops lives in `HouseholdHistory`."""

    index: int
    loyalty_id: str | None
    visit_interval_days: float
    # Favourite category -> days between purchases of it.
    purchase_interval_days: Mapping[str, float]
    # Typical quantity picked per favourite category (1..3).
    usual_quantity: Mapping[str, int]
    max_basket_lines: int
    put_back_probability: float
    impulse_probability: float

    @property
    def visit_rate_per_day(self) -> float:
        return 1.0 / self.visit_interval_days


@dataclass(slots=True)
class HouseholdHistory:
    """Mutable per-household state: when it last visited and last bought each category."""

    last_visit_ms: int
    last_purchase_ms: dict[str, int] = field(default_factory=dict)
    in_store: bool = False


def category_popularity(categories: Sequence[str], rng: random.Random) -> dict[str, float]:
    """Zipf-like popularity over the categories, in a seeded random order (some staples, some niche)."""
    shuffled = list(categories)
    rng.shuffle(shuffled)
    return {category: 1.0 / (rank + 1) ** 0.6 for rank, category in enumerate(shuffled)}


def make_population(
    categories: Sequence[str], start_ms: int, rng: random.Random, size: int = POPULATION_SIZE
) -> tuple[tuple[Household, ...], list[HouseholdHistory]]:
    """A seeded population and its history as of ``start_ms`` (as if the store had always been open)."""
    if not categories:
        raise ValueError("a population needs at least one product category")
    popularity = category_popularity(categories, rng)
    names = list(popularity)
    weights = [popularity[name] for name in names]
    households: list[Household] = []
    histories: list[HouseholdHistory] = []
    for index in range(size):
        favourites_wanted = min(len(names), rng.randint(6, 16))
        favourites: set[str] = set()
        while len(favourites) < favourites_wanted:
            favourites.add(rng.choices(names, weights)[0])
        ordered = sorted(favourites, key=names.index)
        intervals = {category: round(rng.uniform(2.0, 10.0), 2) for category in ordered}
        quantities = {category: rng.choices((1, 2, 3), (0.65, 0.27, 0.08))[0] for category in ordered}
        # Log-normal around ~2.5 days: most households shop twice a week, a few daily, a few weekly.
        visit_interval = min(10.0, max(0.8, rng.lognormvariate(math.log(2.5), 0.45)))
        member = rng.random() < LOYALTY_SHARE
        households.append(
            Household(
                index=index,
                loyalty_id=f"LOY-{index + 1:06d}" if member else None,
                visit_interval_days=round(visit_interval, 2),
                purchase_interval_days=intervals,
                usual_quantity=quantities,
                max_basket_lines=rng.randint(3, 15),
                put_back_probability=round(rng.uniform(0.02, 0.10), 3),
                impulse_probability=round(rng.uniform(0.1, 0.4), 3),
            )
        )
        # Spread "last bought" over the past interval so the first simulated day is not a stampede.
        histories.append(
            HouseholdHistory(
                last_visit_ms=start_ms - int(rng.uniform(0, visit_interval) * MS_PER_DAY),
                last_purchase_ms={
                    category: start_ms - int(rng.uniform(0, days) * MS_PER_DAY)
                    for category, days in intervals.items()
                },
            )
        )
    return tuple(households), histories


def visit_weight(household: Household, history: HouseholdHistory, now_ms: int) -> float:
    """How likely this household is to be the next arrival: its visit rate, higher when it is overdue.

    Households already in the store cannot arrive again; one that shopped an hour ago rarely does.
    """
    if history.in_store:
        return 0.0
    overdue = (now_ms - history.last_visit_ms) / MS_PER_DAY / household.visit_interval_days
    return household.visit_rate_per_day * min(3.0, max(0.02, overdue))


def shopping_list(
    household: Household,
    history: HouseholdHistory,
    now_ms: int,
    all_categories: Sequence[str],
    rng: random.Random,
) -> list[tuple[str, int]]:
    """Categories (with quantity) the household means to buy on this visit: what has run out, plus impulse."""
    wanted: list[tuple[str, int]] = []
    for category, interval_days in household.purchase_interval_days.items():
        days_since = (now_ms - history.last_purchase_ms.get(category, 0)) / MS_PER_DAY
        if days_since >= interval_days * rng.uniform(0.8, 1.2):
            wanted.append((category, household.usual_quantity[category]))
    rng.shuffle(wanted)
    wanted = wanted[: household.max_basket_lines]
    if rng.random() < household.impulse_probability or not wanted:
        others = [c for c in all_categories if c not in {name for name, _ in wanted}]
        if others:
            wanted.append((rng.choice(others), 1))
    return wanted
