"""Next basket: which categories are on the household's next trip.

Candidates (`candidates`) are the household's `PERSONAL_CANDIDATES` most frequent categories (by
baskets; personal frequency) plus the `NEW_CANDIDATES` most popular categories it has not bought (so
new items can be suggested). A classifier ranks
them by P(category in the basket of a trip on day ``now``) from the pair features and `staleness_days`
(days between the end of the history the features were built from and the trip; 0 on the edge, where
features are rebuilt daily, up to the test window's length in the frozen evaluation).

The baseline GP-TopFreq scores a candidate by how many of the household's baskets contained it, ties
(and never-bought candidates) broken by general popularity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.features import FEATURE_NAMES, PairStats, pair_features

BASKET_FEATURES: tuple[str, ...] = (*FEATURE_NAMES, "staleness_days")
NEW_CANDIDATES = 10
PERSONAL_CANDIDATES = 40
TOP_K = 10

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Candidates:
    """Rows of (query, household, category): one query per trip (or per household on the edge)."""

    query: I64
    household: I64
    category: I64

    @property
    def rows(self) -> int:
        return int(self.query.shape[0])


def popular_categories(stats: PairStats, k: int = NEW_CANDIDATES) -> I64:
    """The ``k`` categories bought by most households (ties: lower code first)."""
    order = np.lexsort((np.arange(len(stats.categories)), -stats.cat_households))
    return order[: min(k, order.size)].astype(np.int64)


def candidates(
    stats: PairStats,
    query_household: npt.ArrayLike,
    new: int = NEW_CANDIDATES,
    personal: int = PERSONAL_CANDIDATES,
) -> Candidates:
    """For each query (a household code), its ``personal`` most frequent categories plus up to ``new``
    popular ones it has not bought. Rows are grouped by query, in query order."""
    households = np.asarray(query_household, dtype=np.int64)
    # Pairs are sorted by household: each household's pairs are one slice; rank them by basket count.
    starts = np.searchsorted(stats.pair_household, households, side="left")
    counts = np.searchsorted(stats.pair_household, households, side="right") - starts
    total = int(counts.sum())
    query = np.repeat(np.arange(households.size), counts)
    pair = np.repeat(starts, counts) + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    if total:
        order = np.lexsort((stats.pair_category[pair], -stats.baskets[pair], query))
        query, pair = query[order], pair[order]
        first = np.repeat(np.cumsum(counts) - counts, counts)
        keep = np.arange(total) - first < personal
        query, pair = query[keep], pair[keep]
    own_category = stats.pair_category[pair] if total else np.zeros(0, np.int64)
    popular = popular_categories(stats, new)
    new_q = np.repeat(np.arange(households.size), popular.size)
    new_c = np.tile(popular, households.size)
    unseen = stats.pair_index(households[new_q], new_c) < 0
    q = np.concatenate((query, new_q[unseen]))
    c = np.concatenate((own_category, new_c[unseen]))
    order = np.argsort(q, kind="stable")
    return Candidates(q[order].astype(np.int64), households[q[order]], c[order].astype(np.int64))


def basket_features(stats: PairStats, cands: Candidates, now: npt.ArrayLike) -> F32:
    """`BASKET_FEATURES` for candidate rows; ``now`` is one day per query (or one for all)."""
    now_q = np.asarray(now, dtype=np.float64)
    now_rows = now_q[cands.query] if now_q.ndim else np.full(cands.rows, float(now_q))
    x = np.empty((cands.rows, len(BASKET_FEATURES)), dtype=np.float32)
    x[:, : len(FEATURE_NAMES)] = pair_features(stats, cands.household, cands.category, now_rows)
    x[:, len(FEATURE_NAMES)] = now_rows - stats.until_day
    return x


def top_frequency_scores(stats: PairStats, cands: Candidates) -> tuple[F64, F64]:
    """GP-TopFreq: (score, tiebreak) for `models.metrics.ranking`: the pair's basket count, then general
    popularity (more popular first)."""
    p = stats.pair_index(cands.household, cands.category)
    count = np.where(p >= 0, stats.baskets[np.maximum(p, 0)] if stats.baskets.size else 0, 0).astype(
        np.float64
    )
    popularity = stats.cat_households[cands.category].astype(np.float64)
    return count, -popularity


def top_frequency_probability(stats: PairStats, cands: Candidates) -> F64:
    """The baseline's implied probability: the share of the household's baskets with the category."""
    count, _ = top_frequency_scores(stats, cands)
    baskets = stats.hh_baskets[cands.household].astype(np.float64)
    return np.where(baskets > 0, count / np.maximum(baskets, 1), 0.0)
