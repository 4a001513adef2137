"""Training with scikit-learn (the `train` extra; the daemon never imports this module).

Everything here is fitted on lines strictly before the cutoff. Training examples come from snapshots
every 28 days before the cutoff (`models.targets.snapshot_days`): features from the history before the
snapshot, labels from what happened between the snapshot and the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import (  # type: ignore[import-untyped,unused-ignore]
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

from models.errors import TrainingError
from models.export import served_precision  # the fitted trees as onnxruntime evaluates them
from models.features import PairStats, pair_features, summarise
from models.history import PurchaseHistory
from models.next_basket import Candidates, basket_features, candidates
from models.next_purchase import BIN_EDGES, HORIZON_DAYS, MIN_PURCHASES, N_BINS, hazard_rows
from models.progress import NO_PROGRESS, Progress
from models.shelf import (
    HORIZON_MINUTES,
    PickStream,
    sample_shelf_times,
    shelf_features,
    true_minutes_to_empty,
)
from models.targets import first_purchase_days, snapshot_days

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
ROW_CHUNK = 500_000


@dataclass(frozen=True, slots=True)
class BoostingParams:
    """Hyperparameters of the gradient-boosted trees (small and fast: the box scores 600k pairs)."""

    max_iter: int = 120
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 200
    l2_regularization: float = 1.0

    def classifier(self, seed: int) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=seed,
        )


@dataclass(frozen=True, slots=True)
class TrainingSet:
    x: F32
    y: npt.NDArray[np.int8]
    snapshots: tuple[int, ...]

    @property
    def rows(self) -> int:
        return int(self.y.shape[0])


def positive_probability(model: HistGradientBoostingClassifier, x: F32) -> F64:
    """P(label 1) in chunks (bounded memory)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], ROW_CHUNK):
        out[start : start + ROW_CHUNK] = model.predict_proba(x[start : start + ROW_CHUNK])[:, 1]
    return out


# ---------------------------------------------------------------------------------------------------
# Next purchase.


def next_purchase_rows(
    history: PurchaseHistory,
    cutoff: int,
    *,
    step_days: int = 28,
    max_pairs_per_snapshot: int | None = None,
    seed: int = 0,
    progress: Progress = NO_PROGRESS,
) -> TrainingSet:
    """Hazard rows from every snapshot before ``cutoff``.

    A pair observed from snapshot c until the cutoff (window L = min(91, cutoff - c) days) with its first
    purchase T days later contributes one row per bin k that the window covers completely
    (BIN_EDGES[k+1] <= L) and that it survived into (T >= BIN_EDGES[k] or no purchase): label 1 if T
    falls in bin k. A pair not bought before the cutoff (censored) contributes only zeros, for the bins
    the window covers; nothing is assumed about the days after it.
    """
    rng = np.random.default_rng(seed)
    xs: list[F32] = []
    ys: list[npt.NDArray[np.int8]] = []
    used: list[int] = []
    snapshots = snapshot_days(history.first_day, cutoff, step_days=step_days)
    progress.stage("next purchase: training rows (snapshots)", total=len(snapshots))
    for snapshot in snapshots:
        progress.advance()
        window = min(HORIZON_DAYS, cutoff - snapshot)
        observed_bins = sum(1 for k in range(N_BINS) if BIN_EDGES[k + 1] <= window)
        if observed_bins == 0:
            continue
        stats = summarise(history, snapshot)
        eligible = np.flatnonzero(stats.n >= MIN_PURCHASES)
        if max_pairs_per_snapshot is not None and eligible.size > max_pairs_per_snapshot:
            eligible = np.sort(rng.choice(eligible, max_pairs_per_snapshot, replace=False))
        h, c = stats.pair_household[eligible], stats.pair_category[eligible]
        x = pair_features(stats, h, c, float(snapshot))
        t = first_purchase_days(history, h, c, snapshot, snapshot + window)
        rows = hazard_rows(x, observed_bins)
        start = np.tile(np.asarray(BIN_EDGES[:observed_bins]), x.shape[0])
        end = np.tile(np.asarray(BIN_EDGES[1 : observed_bins + 1]), x.shape[0])
        t_rows = np.repeat(t, observed_bins)
        at_risk = (t_rows < 0) | (t_rows >= start)
        xs.append(rows[at_risk])
        ys.append(((t_rows >= 0) & (t_rows < end))[at_risk].astype(np.int8))
        used.append(snapshot)
    if not xs:
        raise TrainingError(
            f"no training snapshot before the cutoff: need at least {56 + step_days} days of history before it"
        )
    return TrainingSet(np.concatenate(xs), np.concatenate(ys), tuple(used))


@dataclass(frozen=True, slots=True, eq=False)
class HazardModel:
    """A fitted next-purchase hazard classifier (scikit-learn)."""

    classifier: HistGradientBoostingClassifier

    def hazard(self, features: F32) -> F64:
        """Pairs x bins hazard for pair feature rows."""
        out = np.empty((features.shape[0], N_BINS))
        step = max(1, ROW_CHUNK // N_BINS)
        for start in range(0, features.shape[0], step):
            chunk = features[start : start + step]
            out[start : start + step] = positive_probability(self.classifier, hazard_rows(chunk)).reshape(
                -1, N_BINS
            )
        return out


def fit_next_purchase(training: TrainingSet, params: BoostingParams, seed: int) -> HazardModel:
    if training.rows == 0 or training.y.min() == training.y.max():
        raise TrainingError("next purchase: the training rows have a single class; need more history")
    return HazardModel(served_precision(params.classifier(seed).fit(training.x, training.y)))


# ---------------------------------------------------------------------------------------------------
# Next basket.


@dataclass(frozen=True, slots=True, eq=False)
class BasketQueries:
    """Every basket in a window (of households with history): its candidate rows and their labels
    (category in the basket), and per query its day, household, number of distinct categories and how
    many of those the household had bought before (repeat items)."""

    candidates: Candidates
    label: npt.NDArray[np.bool_]
    day: I64
    household: I64
    n_relevant: I64
    n_repeat: I64


def basket_queries(history: PurchaseHistory, stats: PairStats, start_day: int, end_day: int) -> BasketQueries:
    window = np.flatnonzero((history.day >= start_day) & (history.day < end_day))
    ids, first, line_basket = np.unique(history.basket[window], return_index=True, return_inverse=True)
    q_household = history.household[window][first].astype(np.int64)
    q_day = history.day[window][first].astype(np.int64)
    keep_q = np.flatnonzero(stats.hh_trips[q_household] > 0)
    remap = np.full(ids.size, -1, dtype=np.int64)
    remap[keep_q] = np.arange(keep_q.size)
    q_household, q_day = q_household[keep_q], q_day[keep_q]
    cands = candidates(stats, q_household)
    line_q = remap[line_basket]
    ok = line_q >= 0
    n_cat = len(stats.categories)
    truth = np.unique(line_q[ok] * n_cat + history.category[window][ok])
    truth_q, truth_c = truth // n_cat, truth % n_cat
    repeat = stats.pair_index(q_household[truth_q], truth_c) >= 0
    return BasketQueries(
        candidates=cands,
        label=np.isin(cands.query * n_cat + cands.category, truth),
        day=q_day,
        household=q_household,
        n_relevant=np.bincount(truth_q, minlength=keep_q.size).astype(np.int64),
        n_repeat=np.bincount(truth_q[repeat], minlength=keep_q.size).astype(np.int64),
    )


def next_basket_rows(
    history: PurchaseHistory,
    cutoff: int,
    *,
    step_days: int = 28,
    baskets_per_household: int = 2,
    seed: int = 0,
    progress: Progress = NO_PROGRESS,
) -> TrainingSet:
    """Candidate rows for a sample of baskets after each snapshot (before the cutoff), labelled by the
    basket's categories; features from the history before the snapshot, ``now`` = the basket's day."""
    rng = np.random.default_rng(seed)
    xs: list[F32] = []
    ys: list[npt.NDArray[np.int8]] = []
    used: list[int] = []
    snapshots = snapshot_days(history.first_day, cutoff, step_days=step_days)
    progress.stage("next basket: training rows (snapshots)", total=len(snapshots))
    for snapshot in snapshots:
        progress.advance()
        end = min(cutoff, snapshot + HORIZON_DAYS)
        stats = summarise(history, snapshot)
        window = np.flatnonzero((history.day >= snapshot) & (history.day < end))
        baskets, first = np.unique(history.basket[window], return_index=True)
        owner = history.household[window][first]
        # A few random baskets per household (all households weigh the same, as in the evaluation).
        chosen = sample_per_group(owner.astype(np.int64), baskets_per_household, rng)
        subset = history.select(np.isin(history.basket, baskets[chosen]) | (history.day < snapshot))
        queries = basket_queries(subset, stats, snapshot, end)
        if queries.candidates.rows == 0:
            continue
        xs.append(basket_features(stats, queries.candidates, queries.day.astype(np.float64)))
        ys.append(queries.label.astype(np.int8))
        used.append(snapshot)
    if not xs:
        raise TrainingError("next basket: no baskets after any training snapshot before the cutoff")
    return TrainingSet(np.concatenate(xs), np.concatenate(ys), tuple(used))


def sample_per_group(group: I64, k: int, rng: np.random.Generator) -> npt.NDArray[np.intp]:
    """Indices of up to ``k`` random members of each group."""
    key = rng.random(group.size)
    order = np.lexsort((key, group))
    g = group[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(g)) + 1)) if g.size else np.zeros(0, np.int64)
    rank = np.arange(g.size) - np.repeat(starts, np.diff(np.append(starts, g.size)))
    return np.sort(order[rank < k])


@dataclass(frozen=True, slots=True, eq=False)
class BasketModel:
    """A fitted next-basket classifier (scikit-learn)."""

    classifier: HistGradientBoostingClassifier

    def probability(self, features: F32) -> F64:
        return positive_probability(self.classifier, features)


def fit_next_basket(training: TrainingSet, params: BoostingParams, seed: int) -> BasketModel:
    if training.rows == 0 or training.y.min() == training.y.max():
        raise TrainingError("next basket: the training rows have a single class; need more history")
    return BasketModel(served_precision(params.classifier(seed).fit(training.x, training.y)))


# ---------------------------------------------------------------------------------------------------
# Shelf depletion.


def shelf_rows(
    stream: PickStream, start_minute: int, end_minute: int, *, samples: int, max_stock: int, seed: int
) -> tuple[F32, F64]:
    """Features and the true minutes to empty at random (shelf, time, stock) in [start, end).

    ``end_minute`` must leave a full horizon of observed picks after the last sample: the truth of a
    sample is read from the stream up to ``end_minute + HORIZON_MINUTES`` only.
    """
    shelf, minute, stock = sample_shelf_times(
        stream, start_minute, end_minute, samples=samples, max_stock=max_stock, seed=seed
    )
    observed = stream.before(end_minute + HORIZON_MINUTES)
    return shelf_features(observed, shelf, minute, stock), true_minutes_to_empty(
        observed, shelf, minute, stock
    )


@dataclass(frozen=True, slots=True, eq=False)
class ShelfModel:
    regressor: HistGradientBoostingRegressor

    def log_minutes(self, features: F32) -> F64:
        return np.asarray(self.regressor.predict(features), dtype=np.float64)


def fit_shelf(features: F32, minutes: F64, params: BoostingParams, seed: int) -> ShelfModel:
    target = np.log1p(np.minimum(minutes, HORIZON_MINUTES))
    regressor = HistGradientBoostingRegressor(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=seed,
    )
    return ShelfModel(served_precision(regressor.fit(features, target)))
