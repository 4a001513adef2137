"""Next-basket baselines from the literature, ranked over every category and scored in one place.

* **GP-TopFreq** (Hu et al., SIGIR 2020, "Modeling Personalized Item Frequency Information for
  Next-basket Recommendation"): the household's categories by how many of its baskets held them
  (P-TopFreq), ties and the rest of the list filled by general popularity (G-TopFreq: households that
  bought the category), then category code.
* **TIFU-KNN** (same paper). Baskets are multi-hot vectors; a household's vector is a time-decayed
  mean of its baskets, grouped one of two ways (``grouping``, tuned like the rest):
  ``"size"`` (the paper's text): counted back from the latest, groups of ``group_size`` m baskets (the
  oldest may hold fewer); a group's vector is the mean of its baskets weighted ``within_decay``
  r_b^j (j = baskets after it in the group), the household's the mean of its group vectors weighted
  ``group_decay`` r_g^g (g = groups after it). ``"count"`` (the authors' code, TIFUKNN on GitHub, also
  Cornac's): the baskets cut into m groups of near-equal size (the later ones one basket larger), a
  basket weighted r_b^(baskets after it, overall), group i of m weighted r_g^(m - 1 - i), divided by the
  number of groups (each basket its own group when there are fewer than m). Its ``neighbours`` k
  nearest households by cosine of those vectors (among households with history, never itself) give
  the prediction alpha * own + (1 - alpha) * mean of the neighbours'; categories by that score, ties
  by general popularity. `tune_tifu` picks the parameters on a validation
  split that ends before the test window: it is handed nothing else.

Both are scored by `models.basket_protocol` (frozen and rolling), next to the model, in the same run
(`models.evaluation`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from models.basket_protocol import (
    TOP_K,
    BasketRankingMetrics,
    BasketSequences,
    HeldOutBaskets,
    Ranker,
    basket_sequences,
    frozen_metrics,
    held_out_baskets,
    ranking_metrics,
    rolling_metrics,
)
from models.errors import TrainingError
from models.history import PurchaseHistory

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def top_categories(score: F64, popularity: npt.ArrayLike, k: int = TOP_K) -> I64:
    """Rows x k: each row's categories by score, ties by popularity (more first), then code."""
    popular = np.broadcast_to(-np.asarray(popularity, dtype=np.float64), score.shape)
    codes = np.broadcast_to(np.arange(score.shape[1]), score.shape)
    order = np.lexsort((codes, popular, -score), axis=-1)[:, :k]
    return np.asarray(order, dtype=np.int64)


def gp_top_freq(sequences: BasketSequences, households: I64, k: int = TOP_K) -> I64:
    """GP-TopFreq's top ``k`` categories for each of ``households`` (rows in that order)."""
    return top_categories(sequences.counts()[households], sequences.popularity(), k)


Grouping = Literal["size", "count"]


@dataclass(frozen=True, slots=True)
class TifuParams:
    grouping: Grouping  # "size": groups of m baskets (paper); "count": m groups (authors' code)
    group_size: int  # m
    within_decay: float  # r_b
    group_decay: float  # r_g
    neighbours: int  # k
    alpha: float  # weight of the household's own vector

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TifuGrid:
    """Every combination is tried; `tune_tifu` keeps the best validation Recall@k (first on ties)."""

    grouping: tuple[Grouping, ...] = ("size", "count")
    # Complete Journey's validation recall still rose at 30 groups of the authors' grouping (a first
    # grid stopped at 15): many groups, slowly decayed, is close to a per-basket exponential decay.
    group_size: tuple[int, ...] = (3, 7, 15, 30, 60, 100)
    within_decay: tuple[float, ...] = (0.9, 1.0)
    group_decay: tuple[float, ...] = (0.7, 0.8, 0.9, 0.95)
    neighbours: tuple[int, ...] = (100, 300, 900)
    alpha: tuple[float, ...] = (0.5, 0.7, 0.9)

    @property
    def size(self) -> int:
        return int(
            np.prod([len(self.grouping), len(self.group_size), len(self.within_decay), len(self.group_decay)])
            * len(self.neighbours)
            * len(self.alpha)
        )


DEFAULT_TIFU_GRID = TifuGrid()


def tifu_vectors(
    sequences: BasketSequences,
    group_size: int,
    within_decay: float,
    group_decay: float,
    grouping: Grouping = "size",
) -> F64:
    """Households x categories: TIFU-KNN's time-decayed repeat vector (zero without baskets)."""
    s, m = sequences, group_size
    n = s.n_baskets[s.household]
    if grouping == "size":
        n_groups = -(-n // m)
        group, position = s.age // m, s.age % m
        in_group = np.where(group < n_groups - 1, m, n - m * (n_groups - 1))
        weight = group_decay**group * within_decay**position / in_group / n_groups
    else:
        first = n - 1 - s.age  # baskets before it
        base = n // m
        small = m - (n - base * m)  # groups of ``base`` baskets, then groups of base + 1
        cut = small * base
        group = np.where(first < cut, first // np.maximum(base, 1), small + (first - cut) // (base + 1))
        in_group = np.where(group < small, base, base + 1)
        few = n < m
        group, in_group = np.where(few, first, group), np.where(few, 1, in_group)
        weight = within_decay**s.age * group_decay ** (m - 1 - group) / in_group / np.minimum(n, m)
    flat = np.bincount(
        s.household * s.n_categories + s.category, weight, minlength=s.n_households * s.n_categories
    )
    return np.asarray(flat.reshape(s.n_households, s.n_categories), dtype=np.float64)


def _neighbour_order(vectors: F64, households: I64, most: int) -> I64:
    """For each of ``households``: the other households with history, most cosine-similar first."""
    norm = np.linalg.norm(vectors, axis=1)
    pool = np.flatnonzero(norm > 0)
    unit = vectors[pool] / norm[pool, None]
    own = vectors[households] / np.maximum(norm[households], 1e-12)[:, None]
    similarity = own @ unit.T
    similarity[pool[None, :] == households[:, None]] = -np.inf
    most = min(most, max(pool.size - 1, 0))
    if most == 0:
        return np.zeros((households.size, 0), dtype=np.int64)
    nearest = np.argpartition(-similarity, most - 1, axis=1)[:, :most]
    ranked = np.take_along_axis(nearest, np.argsort(-np.take_along_axis(similarity, nearest, 1), 1), 1)
    return np.asarray(pool[ranked], dtype=np.int64)


def _neighbour_mean(vectors: F64, order: I64, k: int) -> F64:
    k = min(k, order.shape[1])
    if k == 0:
        return np.zeros((order.shape[0], vectors.shape[1]))
    weights = np.zeros((order.shape[0], vectors.shape[0]))
    np.put_along_axis(weights, order[:, :k], 1.0 / k, axis=1)
    return np.asarray(weights @ vectors, dtype=np.float64)


def tifu_knn_parts(sequences: BasketSequences, households: I64, params: TifuParams) -> tuple[F64, F64]:
    """For each of ``households`` (rows in that order) x every category: its own time-decayed repeat
    vector and the mean vector of its nearest neighbours; TIFU-KNN's score mixes them by alpha."""
    vectors = tifu_vectors(
        sequences, params.group_size, params.within_decay, params.group_decay, params.grouping
    )
    order = _neighbour_order(vectors, households, params.neighbours)
    return vectors[households], _neighbour_mean(vectors, order, params.neighbours)


def tifu_knn_top(sequences: BasketSequences, households: I64, params: TifuParams, k: int = TOP_K) -> I64:
    """TIFU-KNN's top ``k`` categories for each of ``households`` (rows in that order)."""
    own, neighbours = tifu_knn_parts(sequences, households, params)
    score = params.alpha * own + (1 - params.alpha) * neighbours
    return top_categories(score, sequences.popularity(), k)


@dataclass(frozen=True, slots=True)
class TifuTuning:
    """The chosen parameters and what they, and GP-TopFreq, scored on the validation baskets."""

    params: TifuParams
    validation: BasketRankingMetrics
    validation_gp_top_freq: BasketRankingMetrics
    history_until_day: int
    validation_start_day: int
    validation_end_day: int
    combinations: int

    def report(self, k: int = TOP_K) -> dict[str, Any]:
        return {
            "params": self.params.as_dict(),
            "validation_days": self.validation_end_day - self.validation_start_day,
            "validation_baskets": self.validation.baskets,
            f"validation_recall@{k}_tifu_knn": self.validation.recall,
            f"validation_recall@{k}_gp_top_freq": self.validation_gp_top_freq.recall,
            "combinations": self.combinations,
        }


def tune_tifu(
    train: BasketSequences, validation: HeldOutBaskets, grid: TifuGrid = DEFAULT_TIFU_GRID, k: int = TOP_K
) -> TifuTuning:
    """The grid's best TIFU-KNN parameters by Recall@k on ``validation``, ranked from ``train`` (the
    baskets before the validation window). Give it only data from before the test window."""
    if train.until_day > validation.start_day:
        raise ValueError("tune_tifu: the training baskets overlap the validation window")
    households, basket_row = np.unique(validation.household, return_inverse=True)
    popularity = train.popularity()
    recall = _recall_scorer(validation, basket_row)
    best: tuple[float, TifuParams] | None = None
    for grouping, m, r_b, r_g in itertools.product(
        grid.grouping, grid.group_size, grid.within_decay, grid.group_decay
    ):
        vectors = tifu_vectors(train, m, r_b, r_g, grouping)
        order = _neighbour_order(vectors, households, max(grid.neighbours))
        own = vectors[households]
        for neighbours in grid.neighbours:
            mean = _neighbour_mean(vectors, order, neighbours)
            for alpha in grid.alpha:
                value = recall(top_categories(alpha * own + (1 - alpha) * mean, popularity, k))
                if best is None or value > best[0]:
                    best = (value, TifuParams(grouping, m, r_b, r_g, neighbours, alpha))
    if best is None:
        raise ValueError("tune_tifu: the grid is empty")
    chosen = tifu_knn_top(train, households, best[1], k)
    return TifuTuning(
        best[1],
        ranking_metrics(chosen[basket_row], validation),
        ranking_metrics(gp_top_freq(train, households, k)[basket_row], validation),
        train.until_day,
        validation.start_day,
        validation.end_day,
        grid.size,
    )


def _recall_scorer(validation: HeldOutBaskets, basket_row: I64) -> Callable[[I64], float]:
    """Recall@k of per-household top lists, as `ranking_metrics` computes it (same arithmetic, so the
    same choice), without the other metrics: the tuning loop's inner step."""
    b = validation.size
    n = np.bincount(validation.item_basket, minlength=b).astype(np.float64)
    item_row = basket_row[validation.item_basket]
    per_household = np.bincount(basket_row)

    def recall(top: I64) -> float:
        hit = (top[item_row] == validation.item_category[:, None]).any(axis=1)
        per_basket = np.bincount(validation.item_basket, hit, minlength=b) / n
        return float(np.mean(np.bincount(basket_row, per_basket) / per_household))

    return recall


def gp_top_freq_ranker(k: int = TOP_K) -> Ranker:
    return lambda sequences, households: gp_top_freq(sequences, households, k)


def tifu_knn_ranker(params: TifuParams, k: int = TOP_K) -> Ranker:
    return lambda sequences, households: tifu_knn_top(sequences, households, params, k)


MIN_TUNING_HISTORY_DAYS = 56


# One entry: `models evaluate` asks for the same tuning in the frozen and the rolling evaluation of one
# run (PurchaseHistory hashes by identity, and the cache holds it, so an id is never reused meanwhile).
@functools.lru_cache(maxsize=1)
def tuned_tifu(
    history: PurchaseHistory,
    cutoff: int,
    end_day: int,
    grid: TifuGrid = DEFAULT_TIFU_GRID,
    validation_days: int | None = None,
    k: int = TOP_K,
) -> TifuTuning:
    """TIFU-KNN tuned for a test window [cutoff, end_day): on the ``validation_days`` before the cutoff
    (default: as long as the test window, leaving at least 8 weeks of history before it), frozen
    protocol, ranked from the history before them. `tune_tifu` is handed only lines before the cutoff."""
    room = cutoff - history.first_day - MIN_TUNING_HISTORY_DAYS
    days = min(end_day - cutoff, room) if validation_days is None else validation_days
    if days < 1 or days > room:
        raise TrainingError(f"TIFU-KNN: a validation window of {days} days does not fit before the cutoff")
    before = history.select(history.day < cutoff)
    start = cutoff - days
    return tune_tifu(basket_sequences(before, start), held_out_baskets(before, start, cutoff), grid, k)


def evaluate_basket_baselines(
    history: PurchaseHistory,
    cutoff: int,
    end_day: int,
    *,
    rolling: bool = False,
    grid: TifuGrid = DEFAULT_TIFU_GRID,
    validation_days: int | None = None,
    k: int = TOP_K,
) -> dict[str, Any]:
    """GP-TopFreq and tuned TIFU-KNN (`tuned_tifu`) on the baskets of [cutoff, end_day), in the frozen
    or the rolling protocol (the same tuned parameters for both)."""
    tuning = tuned_tifu(history, cutoff, end_day, grid, validation_days, k)
    measure = rolling_metrics if rolling else frozen_metrics
    return {
        "gp_top_freq": measure(history, cutoff, end_day, gp_top_freq_ranker(k)).report(k),
        "tifu_knn": measure(history, cutoff, end_day, tifu_knn_ranker(tuning.params, k)).report(k),
        "tifu_knn_tuning": tuning.report(k),
    }
