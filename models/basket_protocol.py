"""The next-basket test protocol, shared by the baselines and whatever ranker is judged against them.

Baskets are runs of lines of one basket id in a canonical history (`models.history`); an item is a
distinct category of a basket. `basket_sequences` gives every household's baskets before a day, counted
back from its latest; `held_out_baskets` the baskets of a window (households with history before it),
each item marked *repeat* (the household bought the category before the window) or *explore* (new to it).

`ranking_metrics` scores a top-k list per basket: Recall@k and NDCG@k (binary relevance, ideal DCG over
min(k, basket size)) and the recall of the repeat and the explore items apart, per basket, averaged per
household, then over households (as `models.evaluation` does for the model). Two protocols: *frozen*
(every basket of the window ranked from the history before it) and *rolling* (each day's baskets ranked
from the history before that day, as the daemon serves).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.history import PurchaseHistory
from models.metrics import mean_by_group

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
TOP_K = 10


@dataclass(frozen=True, slots=True, eq=False)
class BasketSequences:
    """Every household's baskets before ``until_day`` as (household, category, age) rows, one per
    distinct category of a basket; age 0 is the household's latest basket, 1 the one before, ..."""

    until_day: int
    n_households: int
    n_categories: int
    household: I64
    category: I64
    age: I64
    n_baskets: I64  # per household

    def popularity(self) -> I64:
        """Per category: how many households bought it."""
        return np.asarray((self.counts() > 0).sum(axis=0), dtype=np.int64)

    def counts(self) -> F64:
        """Households x categories: how many of the household's baskets held the category."""
        flat = np.bincount(
            self.household * self.n_categories + self.category,
            minlength=self.n_households * self.n_categories,
        )
        return flat.reshape(self.n_households, self.n_categories).astype(np.float64)


def _basket_items(history: PurchaseHistory, lines: npt.NDArray[np.intp]) -> tuple[I64, I64, I64]:
    """For ``lines`` of a canonical history (sorted by household, day, minute, basket, category):
    per basket (a run of lines with one id) its first line; per distinct (basket, category) item its
    basket index and category. Linear time: this runs once per day in the rolling protocol."""
    household, day = history.household[lines], history.day[lines]
    step = (np.diff(household) > 0) | ((np.diff(household) == 0) & (np.diff(day) >= 0))
    if not step.all():
        raise ValueError("history: lines are not in canonical order (household, day, minute, basket)")
    basket, category = history.basket[lines], history.category[lines]
    new_basket = np.ones(lines.size, dtype=bool)
    new_basket[1:] = basket[1:] != basket[:-1]
    new_item = new_basket.copy()
    new_item[1:] |= category[1:] != category[:-1]
    line_basket = np.cumsum(new_basket) - 1
    items = np.flatnonzero(new_item)
    return (
        np.flatnonzero(new_basket).astype(np.int64),
        line_basket[items].astype(np.int64),
        category[items].astype(np.int64),
    )


def basket_sequences(history: PurchaseHistory, until_day: int) -> BasketSequences:
    """The baskets of ``history`` (canonical order) on days before ``until_day``, by household."""
    lines = np.flatnonzero(history.day < until_day)
    n_h, n_c = len(history.households), len(history.categories)
    first, basket, category = _basket_items(history, lines)
    basket_household = history.household[lines[first]].astype(np.int64)
    n_baskets = np.bincount(basket_household, minlength=n_h).astype(np.int64)
    starts = np.cumsum(n_baskets) - n_baskets
    seq = np.arange(first.size) - starts[basket_household]  # 0 = the household's first basket
    household = basket_household[basket]
    return BasketSequences(
        until_day, n_h, n_c, household, category, n_baskets[household] - 1 - seq[basket], n_baskets
    )


@dataclass(frozen=True, slots=True, eq=False)
class HeldOutBaskets:
    """The baskets of [start_day, end_day) of households with history before ``start_day``, with
    their distinct categories as item rows, each marked repeat (bought by the household before
    ``start_day``) or explore (new to it)."""

    start_day: int
    end_day: int
    household: I64  # per basket
    day: I64  # per basket
    item_basket: I64  # per item: index of its basket
    item_category: I64
    item_repeat: Bools

    @property
    def size(self) -> int:
        return int(self.household.size)


def held_out_baskets(history: PurchaseHistory, start_day: int, end_day: int) -> HeldOutBaskets:
    before = history.day < start_day
    known = np.zeros((len(history.households), len(history.categories)), dtype=bool)
    known[history.household[before], history.category[before]] = True
    in_window = (history.day >= start_day) & (history.day < end_day)
    has_history = np.asarray(known.any(axis=1), dtype=bool)
    lines = np.flatnonzero(in_window & has_history[history.household])
    first, item_basket, item_category = _basket_items(history, lines)
    household = history.household[lines[first]].astype(np.int64)
    return HeldOutBaskets(
        start_day,
        end_day,
        household,
        history.day[lines[first]].astype(np.int64),
        item_basket,
        item_category,
        known[household[item_basket], item_category],
    )


@dataclass(frozen=True, slots=True)
class BasketRankingMetrics:
    """Means per household, then over households (NaN where no basket had such items)."""

    recall: float
    ndcg: float
    recall_repeat: float
    recall_explore: float
    baskets: int
    households: int

    def report(self, k: int = TOP_K) -> dict[str, float | int]:
        """The keys of the model's report (`models.evaluation`); explore recall is `recall_new@k`."""
        return {
            f"recall@{k}": self.recall,
            f"ndcg@{k}": self.ndcg,
            f"recall_repeat@{k}": self.recall_repeat,
            f"recall_new@{k}": self.recall_explore,
            "baskets": self.baskets,
            "households": self.households,
        }


def ranking_metrics(top: I64, baskets: HeldOutBaskets) -> BasketRankingMetrics:
    """Score ``top`` (baskets x k category codes, the list each basket was ranked with; -1 pads)."""
    k, b = top.shape[1], baskets.size
    match = top[baskets.item_basket] == baskets.item_category[:, None]
    hit = match.any(axis=1)
    gain = np.where(hit, 1.0 / np.log2(match.argmax(axis=1) + 2.0), 0.0)

    def per_basket(rows: Bools) -> tuple[F64, F64]:
        n = np.bincount(baskets.item_basket[rows], minlength=b).astype(np.float64)
        hits = np.bincount(baskets.item_basket[rows], hit[rows], minlength=b)
        with np.errstate(invalid="ignore", divide="ignore"):
            return n, np.where(n > 0, hits / n, np.nan)

    everything = np.ones(hit.size, dtype=bool)
    n, recall = per_basket(everything)
    _, recall_repeat = per_basket(baskets.item_repeat)
    _, recall_explore = per_basket(~baskets.item_repeat)
    discounts = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))))
    ideal = discounts[np.minimum(n, k).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndcg = np.where(n > 0, np.bincount(baskets.item_basket, gain, minlength=b) / ideal, np.nan)
    group = baskets.household
    return BasketRankingMetrics(
        recall=mean_by_group(recall, group),
        ndcg=mean_by_group(ndcg, group),
        recall_repeat=mean_by_group(recall_repeat, group),
        recall_explore=mean_by_group(recall_explore, group),
        baskets=b,
        households=int(np.unique(group).size),
    )


Ranker = Callable[[BasketSequences, I64], I64]


def join_held_out(parts: list[HeldOutBaskets], start_day: int, end_day: int) -> HeldOutBaskets:
    """Days' held-out baskets as one window (basket numbers offset so they stay distinct)."""
    offsets = np.cumsum([0] + [part.size for part in parts[:-1]])
    return HeldOutBaskets(
        start_day,
        end_day,
        np.concatenate([part.household for part in parts]),
        np.concatenate([part.day for part in parts]),
        np.concatenate([part.item_basket + o for part, o in zip(parts, offsets, strict=True)]),
        np.concatenate([part.item_category for part in parts]),
        np.concatenate([part.item_repeat for part in parts]),
    )


def rolling_metrics(
    history: PurchaseHistory, start_day: int, end_day: int, rank: Ranker
) -> BasketRankingMetrics:
    """The rolling protocol: each day's baskets ranked by ``rank(sequences, households)`` from the
    history before that day (repeat items: bought before that day)."""
    tops: list[I64] = []
    parts: list[HeldOutBaskets] = []
    for day in range(start_day, end_day):
        test = held_out_baskets(history, day, day + 1)
        if test.size:
            households, basket_row = np.unique(test.household, return_inverse=True)
            tops.append(rank(basket_sequences(history, day), households)[basket_row])
            parts.append(test)
    if not parts:
        return ranking_metrics(np.zeros((0, TOP_K), np.int64), held_out_baskets(history, end_day, end_day))
    joined = join_held_out(parts, start_day, end_day)
    return ranking_metrics(np.concatenate(tops), joined)


def frozen_metrics(
    history: PurchaseHistory, start_day: int, end_day: int, rank: Ranker
) -> BasketRankingMetrics:
    """The frozen protocol: every basket of [start_day, end_day) ranked from the history before
    ``start_day`` (however late in the window it is)."""
    test = held_out_baskets(history, start_day, end_day)
    households, basket_row = np.unique(test.household, return_inverse=True)
    return ranking_metrics(rank(basket_sequences(history, start_day), households)[basket_row], test)
