"""Candidate products and their features for the product-level ranker, from the history before a day.

Candidates of a household: its own past products, the union of its ``OWN_BY_COUNT`` most frequent and
its ``OWN_BY_RECENCY`` most recent (decayed 0.8 per basket back) ones; everything else it could buy is
left to the fill by popularity (`product_level.top_products`). Features, per (household, product):

* repeat habit: baskets with it, their share of the household's baskets, decayed counts per basket
  (0.8, 0.95), TIFU-KNN's own score with the tuned weights, baskets since the last purchase;
* the neighbours: the product's weight in the mean TIFU-KNN vector of the household's tuned number of
  most similar households (TIFU-KNN's neighbour part);
* basket size: the same counts with each basket weighted 1/sqrt(its size in products) (plain, as a
  share, decayed 0.97 per basket) and with 1/size: Recall@k averages over each basket's products, so
  a product of small trips (milk, bread) is worth more per basket than one of a big weekly shop;
* repeat timing (the hazard view): days since the last purchase, the household's own mean interval
  for it, their ratio, days since the first purchase;
* the product within its category (the two-stage view): the share of the household's baskets with the
  category, the product's share of the household's purchases in the category and its rank there,
  how many of the category's products the household buys;
* the household: baskets, days since its last basket, mean days between baskets;
* the store: households that bought the product, its baskets in the last 28 days against its mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.basket_baselines import TifuParams
from models.product_level import ProductSequences
from models.product_tifu import TifuMatrix, tifu_weights

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
OWN_BY_COUNT = 40
OWN_BY_RECENCY = 40
TREND_DAYS = 28
FEATURES = (
    "count",
    "share",
    "decayed_0.8",
    "decayed_0.95",
    "size_weighted",
    "size_weighted_share",
    "size_weighted_decayed_0.97",
    "inverse_size_share",
    "tifu_own",
    "tifu_neighbours",
    "baskets_since",
    "days_since",
    "interval",
    "days_since_over_interval",
    "days_since_first",
    "category_share",
    "share_in_category",
    "rank_in_category",
    "category_products",
    "household_baskets",
    "household_days_since",
    "household_interval",
    "popularity",
    "trend_28d",
)


@dataclass(frozen=True, slots=True)
class Candidates:
    """Rows (query, product) with their features; a query is one of the households asked for."""

    query: I64
    product: I64
    features: F32  # rows x len(FEATURES)


def _rank_within(group: I64, score: F64) -> I64:
    """Per row: its rank (0 = highest score, ties by row) among the rows of its group."""
    order = np.lexsort((np.arange(group.size), -score, group))
    rank = np.empty(group.size, dtype=np.int64)
    sorted_group = group[order]
    first = np.searchsorted(sorted_group, sorted_group)
    rank[order] = np.arange(group.size) - first
    return rank


def neighbour_scores(
    sequences: ProductSequences, households: I64, tifu: TifuParams, query: I64, product: I64
) -> F64:
    """Per (query, product) row: the product's weight in the mean TIFU-KNN vector of the query
    household's nearest neighbours (0 for products no household bought)."""
    matrix = TifuMatrix.build(sequences, tifu)
    column = np.full(sequences.baskets.n_categories, -1, dtype=np.int64)
    column[matrix.products] = np.arange(matrix.products.size)
    found = column[product] >= 0
    score = np.zeros(query.size)
    order = matrix.neighbour_order(households, tifu.neighbours)
    for block, mean in matrix.neighbour_means(order, tifu.neighbours):
        if mean is None:
            break
        rows = found & (query >= block.start) & (query < block.stop)
        values = mean.tocsr()[query[rows] - block.start, column[product[rows]]]
        score[rows] = np.asarray(values).ravel()
    return score


def _category_columns(
    h: I64, p: I64, age: I64, pair_h: I64, pair_p: I64, count: F64, product_category: I64
) -> list[F64]:
    """Per pair: the household's baskets with the product's category, the product's share of its
    purchases there, its rank there (0 = most bought) and how many of the category's products it buys."""
    n_cat = int(product_category.max()) + 1
    # Baskets of the household with the category: distinct (household, category, age).
    basket_cat = np.unique((h * n_cat + product_category[p]) * (1 << 20) + age) >> 20
    cat_keys, cat_baskets = np.unique(basket_cat, return_counts=True)
    pair_cat_key = pair_h * n_cat + product_category[pair_p]
    cat_index = np.unique(pair_cat_key, return_inverse=True)[1]
    return [
        cat_baskets[np.searchsorted(cat_keys, pair_cat_key)].astype(np.float64),
        count / np.bincount(cat_index, count)[cat_index],
        _rank_within(cat_index, count).astype(np.float64),
        np.bincount(cat_index)[cat_index].astype(np.float64),
    ]


def candidates(
    sequences: ProductSequences, households: I64, product_category: I64, tifu: TifuParams
) -> Candidates:
    """Candidate rows and features for ``households`` (query q is ``households[q]``), as of
    ``sequences.until_day`` (nothing on or after it is used)."""
    s = sequences.baskets
    day = sequences.until_day
    n_p = s.n_categories
    query_of = np.full(s.n_households, -1, dtype=np.int64)
    query_of[households] = np.arange(households.size)
    mine = query_of[s.household] >= 0
    h, p, age, row_day = s.household[mine], s.category[mine], s.age[mine], sequences.day[mine]
    keys, index = np.unique(h * n_p + p, return_inverse=True)
    pair_h, pair_p = keys // n_p, keys % n_p
    n = keys.size

    count = np.bincount(index, minlength=n).astype(np.float64)
    basket_of_row = np.unique(h * (1 << 20) + age, return_inverse=True, return_counts=True)
    size = basket_of_row[2][basket_of_row[1]].astype(np.float64)
    sized = np.bincount(index, 1 / np.sqrt(size), minlength=n)
    decayed = [np.asarray(np.bincount(index, r**age, minlength=n), dtype=np.float64) for r in (0.8, 0.95)]
    own_weight = tifu_weights(s, tifu)[mine]
    last_age = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(last_age, index, age)
    last_day = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_day, index, row_day)
    first_day = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_day, index, row_day)

    keep = (_rank_within(pair_h, count) < OWN_BY_COUNT) | (_rank_within(pair_h, decayed[0]) < OWN_BY_RECENCY)

    category_columns = _category_columns(h, p, age, pair_h, pair_p, count, product_category)
    n_baskets = s.n_baskets.astype(np.float64)
    household_first = np.full(s.n_households, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(household_first, s.household, sequences.day)
    household_span = (sequences.last_day - household_first).astype(np.float64)
    popularity = sequences.popularity().astype(np.float64)
    recent = sequences.day >= day - TREND_DAYS
    trend = np.bincount(s.category[recent], minlength=n_p) / TREND_DAYS
    span_days = (
        max(float(day - household_first[household_first < day].min()), 1.0) if s.household.size else 1.0
    )
    mean_rate = np.bincount(s.category, minlength=n_p) / span_days

    with np.errstate(invalid="ignore", divide="ignore"):
        interval = np.where(count > 1, (last_day - first_day) / (count - 1), np.nan)
        days_since = (day - last_day).astype(np.float64)
        columns = [
            count,
            count / n_baskets[pair_h],
            decayed[0],
            decayed[1],
            sized,
            sized / n_baskets[pair_h],
            np.bincount(index, 0.97**age / np.sqrt(size), minlength=n),
            np.bincount(index, 1 / size, minlength=n) / n_baskets[pair_h],
            np.bincount(index, own_weight, minlength=n),
            last_age.astype(np.float64),
            days_since,
            interval,
            days_since / interval,
            (day - first_day).astype(np.float64),
            category_columns[0] / n_baskets[pair_h],
            *category_columns[1:],
            n_baskets[pair_h],
            (day - sequences.last_day[pair_h]).astype(np.float64),
            household_span[pair_h] / np.maximum(n_baskets[pair_h] - 1, 1),
            popularity[pair_p],
            trend[pair_p] / np.maximum(mean_rate[pair_p], 1e-9),
        ]
    query, product = query_of[pair_h[keep]], pair_p[keep]
    neighbours = neighbour_scores(sequences, households, tifu, query, product)
    features = np.column_stack(columns).astype(np.float32)[keep]
    at = FEATURES.index("tifu_neighbours")
    features = np.insert(features, at, neighbours.astype(np.float32), axis=1)
    return Candidates(query, product, features)
