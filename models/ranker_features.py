"""The next-basket ranker's served features: what training, evaluation and the edge compute alike.

`ranker_groups(history, stats, candidates, now, tifu, groups)` gives, for candidate rows
(`models.next_basket.candidates`) ranked from `PairStats` (the history before ``stats.until_day``),
one float32 matrix per feature group asked for:

* ``base``: `models.next_basket.BASKET_FEATURES`;
* ``tifu``: TIFU-KNN's own and neighbour vectors for the category, their mix (its score) and that
  score's rank among the query's candidates, and GP-TopFreq's rank (`TIFU_FEATURES`), from the baskets
  before ``stats.until_day`` with the TIFU-KNN parameters tuned before the cutoff;
* ``trend``: the store's share of baskets with the category in the last 7 and 28 days and over all the
  history before ``stats.until_day``, and the two ratios (`StoreTrend`, `TREND_FEATURES`).

numpy only (no scikit-learn): the daemon can import it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from models.basket_baselines import TifuParams, tifu_knn_parts
from models.basket_protocol import basket_sequences
from models.features import PairStats
from models.history import PurchaseHistory
from models.next_basket import BASKET_FEATURES, Candidates, basket_features, top_frequency_scores

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
TIFU_FEATURES: tuple[str, ...] = (
    "tifu_own",
    "tifu_neighbours",
    "tifu_score",
    "tifu_rank",
    "gp_top_freq_rank",
)
TREND_FEATURES: tuple[str, ...] = (
    "store_share_7d",
    "store_share_28d",
    "store_share_all",
    "store_share_7d_vs_all",
    "store_share_28d_vs_all",
)
SERVED_GROUPS = ("base", "tifu", "trend")
GROUP_FEATURES: dict[str, tuple[str, ...]] = {
    "base": BASKET_FEATURES,
    "tifu": TIFU_FEATURES,
    "trend": TREND_FEATURES,
}


def feature_names(groups: Sequence[str]) -> tuple[str, ...]:
    """The columns of ``groups`` side by side, in that order (a model card's `features`)."""
    return tuple(name for group in groups for name in GROUP_FEATURES[group])


class StoreTrend:
    """The store's basket share per category and day, cumulated once: `at` reads any rows in O(rows)."""

    def __init__(self, history: PurchaseHistory) -> None:
        self.first = history.first_day
        n_days, n_cat = history.last_day - history.first_day + 2, len(history.categories)
        baskets, first_line = np.unique(history.basket, return_index=True)
        basket_day = history.day[first_line].astype(np.int64) - self.first
        self.per_day = np.concatenate(([0.0], np.cumsum(np.bincount(basket_day, minlength=n_days))))
        pairs = np.unique(history.basket.astype(np.int64) * n_cat + history.category)
        pair_cat = pairs % n_cat
        pair_day = basket_day[np.searchsorted(baskets, pairs // n_cat)]
        counts = np.bincount(pair_cat * n_days + pair_day, minlength=n_cat * n_days)
        self.cumulative = np.concatenate(
            (np.zeros((n_cat, 1)), np.cumsum(counts.reshape(-1, n_days), axis=1)), axis=1
        )
        self.n_days = n_days

    @classmethod
    def from_canonical(cls, history: PurchaseHistory) -> StoreTrend:
        """The same counts in linear time (no sort), for a history in canonical order (`make_history`:
        a basket's lines together, by category): what the daemon computes at 20,000 households, where
        the sorts of `__init__` took 5.6 s over 5.2 M lines."""
        trend = cls.__new__(cls)
        trend.first = history.first_day
        n_days, n_cat = history.last_day - history.first_day + 2, len(history.categories)
        day = history.day.astype(np.int64) - trend.first
        new_basket = np.ones(history.n_lines, dtype=bool)
        new_basket[1:] = (history.basket[1:] != history.basket[:-1]) | (
            history.household[1:] != history.household[:-1]
        )
        new_item = new_basket.copy()
        new_item[1:] |= history.category[1:] != history.category[:-1]
        per_day = np.bincount(day[new_basket], minlength=n_days)
        trend.per_day = np.concatenate(([0.0], np.cumsum(per_day)))
        counts = np.bincount(
            history.category[new_item].astype(np.int64) * n_days + day[new_item], minlength=n_cat * n_days
        )
        trend.cumulative = np.concatenate(
            (np.zeros((n_cat, 1)), np.cumsum(counts.reshape(-1, n_days), axis=1)), axis=1
        )
        trend.n_days = n_days
        return trend

    def at(self, category: I64, day: npt.ArrayLike) -> F32:
        """Per row: the store's share of baskets with the category in the 7 and 28 days before ``day``
        and in all history before it, and share_7 / share_all, share_28 / share_all (`TREND_FEATURES`)."""
        d = np.clip(
            np.broadcast_to(np.asarray(day, dtype=np.int64), category.shape) - self.first, 0, self.n_days
        )

        def share(window: int | None) -> F64:
            lo = np.zeros_like(d) if window is None else np.maximum(d - window, 0)
            counted = self.cumulative[category, d] - self.cumulative[category, lo]
            return np.asarray(counted / np.maximum(self.per_day[d] - self.per_day[lo], 1), dtype=np.float64)

        s7, s28, s_all = share(7), share(28), share(None)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.column_stack((s7, s28, s_all, s7 / s_all, s28 / s_all)).astype(np.float32)


def within_query_rank(query: I64, score: F64) -> F32:
    """Per row: its rank (0 = first) by ``score`` among the rows of its query."""
    order = np.lexsort((-score, query))
    starts = np.searchsorted(query[order], query[order], side="left")
    rank = np.empty(query.size, dtype=np.float32)
    rank[order] = np.arange(query.size) - starts
    return rank


def tifu_features(
    history: PurchaseHistory, day: int, household: I64, category: I64, query: I64, params: TifuParams
) -> F32:
    """Per row: TIFU-KNN's own and neighbour vectors, their mix (its score) and that score's rank in the
    query, from the baskets before ``day`` with the parameters tuned before the cutoff."""
    households = np.unique(household)
    own, neighbours = tifu_knn_parts(basket_sequences(history, day), households, params)
    at = np.searchsorted(households, household)
    mine, theirs = own[at, category], neighbours[at, category]
    score = params.alpha * mine + (1 - params.alpha) * theirs
    return np.column_stack((mine, theirs, score, within_query_rank(query, score))).astype(np.float32)


def ranker_groups(
    history: PurchaseHistory,
    stats: PairStats,
    cands: Candidates,
    now: npt.ArrayLike,
    tifu: TifuParams,
    groups: Sequence[str],
    trend: StoreTrend | None = None,
) -> dict[str, F32]:
    """The ``groups`` (of `SERVED_GROUPS`) of candidate rows ranked from ``stats`` (the history before
    ``stats.until_day``) for trips on ``now`` (one day per query, or one for all): TIFU-KNN and the store
    trend read only the history before ``stats.until_day`` too."""
    unknown = sorted(set(groups) - set(SERVED_GROUPS))
    if unknown:
        raise ValueError(f"ranker_groups: unknown feature groups {unknown} (known: {SERVED_GROUPS})")
    out: dict[str, F32] = {}
    if "base" in groups:
        out["base"] = basket_features(stats, cands, now)
    if "tifu" in groups:
        base, base_tiebreak = top_frequency_scores(stats, cands)
        own = tifu_features(history, stats.until_day, cands.household, cands.category, cands.query, tifu)
        gp_rank = within_query_rank(cands.query, base - 1e-6 * base_tiebreak)
        out["tifu"] = np.column_stack((own, gp_rank)).astype(np.float32)
    if "trend" in groups:
        out["trend"] = (trend or StoreTrend(history)).at(cands.category, stats.until_day)
    return out
