"""A LightGBM LambdaRank ranker of a household's own products for its next basket (training extra).

Training rows are made as the rolling protocol serves: on every ``train_every``-th day before the
cutoff (from 8 weeks after the first day), one random basket of each household that shopped that day is
a query; its candidates and features (`models.product_features`) come from the history strictly before
that day, the label is whether the basket holds the product; queries without a bought candidate are
dropped (LambdaRank learns nothing from them). The hyperparameters are the category ranker's
(`models.basket_ranker.RankerParams`). Ranking: candidates by score, ties by popularity, lists shorter
than k filled with the most popular products (`product_level.top_products`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt

from models.basket_baselines import TifuParams
from models.basket_protocol import TOP_K
from models.basket_ranker import FIRST_TRAINING_DAY, RankerParams
from models.errors import TrainingError
from models.history import PurchaseHistory
from models.product_features import FEATURES, candidates
from models.product_level import (
    ProductSequences,
    held_out_products,
    pair_first_days,
    product_sequences,
    top_products,
)

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
TRAIN_EVERY_DAYS = 5
PRODUCT_RANKER_PARAMS = RankerParams(n_estimators=300)


@dataclass(frozen=True, slots=True)
class TrainingRows:
    features: F32
    label: npt.NDArray[np.int8]
    group: I64  # rows per query, in row order


@dataclass(frozen=True, slots=True)
class RowPlan:
    """How queries are drawn: features as of each of a set of days (every ``every`` days), and up to
    ``baskets_per_household`` random baskets of each household from the ``horizon`` days from there
    (cut at the cutoff). Horizon 1 is the rolling protocol's view; the test window's length with a
    few baskets per household the frozen one's (one ranking for every basket of the coming weeks)."""

    every: int
    horizon: int
    baskets_per_household: int


ROLLING_ROWS = RowPlan(every=TRAIN_EVERY_DAYS, horizon=1, baskets_per_household=1)


def frozen_rows(test_days: int) -> RowPlan:
    return RowPlan(every=14, horizon=test_days, baskets_per_household=4)


def training_rows(
    history: PurchaseHistory,
    product_category: I64,
    days: list[int],
    plan: RowPlan,
    tifu: TifuParams,
    rng: np.random.Generator,
) -> TrainingRows:
    """Queries per `RowPlan` on each of ``days``, from ``history`` (already cut at the cutoff)."""
    firsts = pair_first_days(history)
    n_p = len(history.categories)
    end = history.last_day + 1
    parts: list[tuple[F32, npt.NDArray[np.int8], I64]] = []
    for day in days:
        test = held_out_products(history, day, min(day + plan.horizon, end), firsts)
        if not test.size:
            continue
        households, basket_row = np.unique(test.household, return_inverse=True)
        shuffled = rng.permutation(test.size)
        order = shuffled[np.argsort(basket_row[shuffled], kind="stable")]
        first = np.searchsorted(basket_row[order], np.arange(households.size))
        drawn = order[np.arange(test.size) - first[basket_row[order]] < plan.baskets_per_household]
        query_of_basket = np.full(test.size, -1, dtype=np.int64)
        query_of_basket[drawn] = np.arange(drawn.size)
        item_query = query_of_basket[test.item_basket]
        picked = item_query >= 0
        bought = np.unique(item_query[picked] * n_p + test.item_category[picked])
        rows = candidates(product_sequences(history, day), households, product_category, tifu)
        start = np.searchsorted(rows.query, np.arange(households.size))
        count = np.bincount(rows.query, minlength=households.size)
        per_query = count[basket_row[drawn]]
        row_query = np.repeat(np.arange(drawn.size), per_query)
        offset = np.arange(row_query.size) - np.repeat(np.cumsum(per_query) - per_query, per_query)
        row = start[basket_row[drawn]][row_query] + offset
        label = np.isin(row_query * n_p + rows.product[row], bought)
        useful = np.bincount(row_query, label, minlength=drawn.size) > 0
        keep = useful[row_query]
        group = np.bincount(row_query[keep], minlength=drawn.size)
        parts.append((rows.features[row[keep]], label[keep].astype(np.int8), group[group > 0]))
    if not parts:
        raise TrainingError("product ranker: no training baskets before the cutoff")
    return TrainingRows(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


@dataclass(frozen=True, slots=True, eq=False)
class TrainedProductRanker:
    model: Any  # lightgbm.LGBMRanker
    tifu: TifuParams
    product_category: I64
    training: dict[str, Any]

    def top(self, sequences: ProductSequences, households: I64, k: int = TOP_K) -> I64:
        rows = candidates(sequences, households, self.product_category, self.tifu)
        score = np.asarray(self.model.predict(rows.features), dtype=np.float64)
        return top_products(rows.query, rows.product, score, households.size, sequences.popularity(), k)

    def importance(self) -> dict[str, int]:
        gains = self.model.booster_.feature_importance(importance_type="gain")
        return {name: round(float(g)) for name, g in zip(FEATURES, gains, strict=True)}


def train_product_ranker(
    history: PurchaseHistory,
    product_category: I64,
    cutoff: int,
    tifu: TifuParams,
    *,
    plan: RowPlan = ROLLING_ROWS,
    params: RankerParams = PRODUCT_RANKER_PARAMS,
    seed: int = 0,
) -> TrainedProductRanker:
    """Train on days before ``cutoff`` only (the history is cut there before anything is read)."""
    before = history.select(history.day < cutoff)
    days = list(range(before.first_day + FIRST_TRAINING_DAY, cutoff, plan.every))
    rows = training_rows(before, product_category, days, plan, tifu, np.random.default_rng(seed))
    model: lightgbm.LGBMRanker = params.ranker()
    model.fit(rows.features, rows.label, group=rows.group)
    training = {
        "days": len(days),
        "every_days": plan.every,
        "horizon_days": plan.horizon,
        "baskets_per_household": plan.baskets_per_household,
        "queries": int(rows.group.size),
        "rows": int(rows.label.size),
        "positives": int(rows.label.sum()),
        "n_estimators": params.n_estimators,
    }
    return TrainedProductRanker(model, tifu, product_category, training)
