"""Simulated shoppers for the learning loop (docs/experiments.md "The loop end to end"): households with a
home store and months of baskets, the tills that ring their baskets up, and their next trips against the
list each store shows them. Shared by `storeedge demo --stores N --central` (edge/demo/loop.py) and
tests/sync/test_learning_loop.py, so both run the same shoppers.

A household's next trip follows the list it was shown, more closely in the challenger arm than in the
control (`FOLLOW`): that is what makes the rollout's verdict certain, by construction.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edge.customers.privacy import Pseudonymiser
from models.experiments.bucketing import assign
from models.experiments.rollout import STEPS, challenger_weights
from sensors.planogram import Planogram

DAY_MS = 86_400_000
FOLLOW = {"control": 0.3, "challenger": 0.9}  # P(a listed category is bought on the next trip)

Lists = dict[str, tuple[str | None, list[str]]]  # household -> (arm, categories in list order)


@dataclass(frozen=True, slots=True)
class ShopperPlan:
    """Who shops where, and for how long before ``end`` (the moment central retrains).

    The first ``trained`` households (by card) have their whole history at the chain and give analytics
    consent; the others are seen only in their last ``recent_days`` (personalisation consent only).
    ``prefix`` goes in front of every card and basket id (the demo's live simulators use the same cards).
    ``catalog``: the stores' ``catalog.json``; the households then buy its products at its prices (each
    its usual product per category, sometimes another), else the planogram's at the simulator's prices."""

    stores: tuple[str, ...]
    end: datetime
    seed: int = 5
    households: int = 420
    trained: int = 110
    history_days: int = 140
    recent_days: int = 42
    prefix: str = ""
    planogram: Path | None = None
    catalog: Path | None = None


@dataclass
class Shoppers:
    """The simulated households: their loyalty cards, home store, pseudonyms and history baskets."""

    home: dict[str, str] = field(default_factory=dict)  # card -> store
    card_of: dict[str, str] = field(default_factory=dict)  # pseudonym -> card
    trained: set[str] = field(default_factory=set)  # pseudonyms with analytics consent
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # store -> POS bodies

    @property
    def households(self) -> list[str]:
        return sorted(self.card_of)

    def consents(self) -> list[tuple[str, str, dict[str, bool]]]:
        """(home store, household, consent body) per household: personalisation for everyone, analytics
        for the trained ones."""
        return [
            (self.home[self.card_of[h]], h, {"personalisation": True, "analytics": h in self.trained})
            for h in self.households
        ]


def simulate_shoppers(plan: ShopperPlan, pseudonym_key: bytes) -> Shoppers:
    """One household simulation (`simulators.household_history`), cards dealt to the stores in turn."""
    from simulators.household_history import (  # noqa: PLC0415 - the simulators only when shopping
        HouseholdSimConfig,
        pos_transactions,
        simulate_households,
    )

    start = plan.end.date() - timedelta(days=plan.history_days)
    config = HouseholdSimConfig(
        seed=plan.seed, households=plan.households, days=plan.history_days, start=start, catalog=plan.catalog
    )
    sim = simulate_households(config if plan.planogram is None else replace(config, planogram=plan.planogram))
    pseudonyms = Pseudonymiser(pseudonym_key)
    out = Shoppers(history={s: [] for s in plan.stores})
    recent_from = int(plan.end.timestamp() * 1000) - plan.recent_days * DAY_MS
    cards = sorted({t.payload.loyalty_id for t in pos_transactions(sim) if t.payload.loyalty_id})
    trained_cards = set(cards[: plan.trained])
    for index, card in enumerate(cards):
        out.home[plan.prefix + card] = plan.stores[index % len(plan.stores)]
        household = pseudonyms.household_id(plan.prefix + card)
        out.card_of[household] = plan.prefix + card
        if card in trained_cards:
            out.trained.add(household)
    for till in pos_transactions(sim):
        p = till.payload
        if p.loyalty_id is None or (p.loyalty_id not in trained_cards and int(p.ts) < recent_from):
            continue
        items = [{"sku": i.sku, "qty": i.qty, "unit_price": i.unit_price} for i in p.items]
        out.history[out.home[plan.prefix + p.loyalty_id]].append(
            {"ts": p.ts, "basket_id": plan.prefix + p.basket_id, "items": items, "total": p.total,
             "loyalty_id": plan.prefix + p.loyalty_id}
        )  # fmt: skip
    return out


class Tills:
    """Every basket as the stores' tills send it: (topic ``store/{id}/pos/{lane}/transaction``, JSON
    payload), ``seq`` counting per lane (the ledger is idempotent on device, seq and ts)."""

    def __init__(self, lanes: list[str], seed: int) -> None:
        self._lanes = lanes
        self._seq: dict[tuple[str, str], int] = defaultdict(int)
        self._lane = random.Random(seed)

    def messages(self, store: str, bodies: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
        out = []
        for body in bodies:
            lane = self._lane.choice(self._lanes)
            self._seq[store, lane] += 1
            payload = {**body, "seq": self._seq[store, lane]}
            out.append((f"store/{store}/pos/{lane}/transaction", json.dumps(payload).encode()))
        return out


def sku_of_category(planogram: Planogram) -> dict[str, str]:
    """One SKU per category (the first by SKU), what a shopper buys for a listed category."""
    return {category: sku for sku, category in sorted(planogram.categories_by_sku.items(), reverse=True)}


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Read-only rows from a store's SQLite file (the daemon keeps writing it)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def cached_lists(db: Path) -> Lists:
    """Each household's cached list at a store: (arm, categories in list order)."""
    lists: Lists = {}
    for household, category, arm in rows(
        db,
        "SELECT household, category, arm FROM predictions WHERE list_rank IS NOT NULL"
        " ORDER BY household, list_rank",
    ):
        lists.setdefault(household, (arm, []))[1].append(category)
    return lists


def serves_step(db: Path, experiment: str, step: int) -> bool:
    """The store runs ``experiment`` at ``step`` and every cached prediction carries the arm the hash
    gives at that step's share (it has rescored since the step changed)."""
    if rows(db, "SELECT step, state FROM experiments WHERE id = ?", experiment) != [(step, "running")]:
        return False
    weights = challenger_weights(STEPS[step])
    tagged = rows(db, "SELECT DISTINCT household, experiment, arm FROM predictions")
    return bool(tagged) and all(
        (e, a) == (experiment, ("control", "challenger")[assign(experiment, h, weights) or 0])
        for h, e, a in tagged
    )


def next_trips(
    lists: Lists, shoppers: Shoppers, sku_of: dict[str, str], at_ms: int, label: str, rng: random.Random
) -> list[dict[str, Any]]:
    """One trip per household with a list, ``FOLLOW[arm]`` of its listed categories and two off it."""
    off_list = sorted(sku_of)
    trips = []
    for n, (household, (arm, listed)) in enumerate(sorted(lists.items())):
        follow = FOLLOW[arm or "control"]
        bought = [c for c in listed if rng.random() < follow]
        bought += rng.sample([c for c in off_list if c not in listed], 2)
        items = [{"sku": sku_of[c], "qty": 1.0, "unit_price": 2.0} for c in bought]
        trips.append(
            {"ts": at_ms + n * 7_000, "basket_id": f"{label}-{n}", "items": items,
             "total": round(2.0 * len(items), 2), "loyalty_id": shoppers.card_of[household]}
        )  # fmt: skip
    return trips
