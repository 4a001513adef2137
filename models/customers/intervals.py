"""Seeded bootstrap intervals over customers for the customer models' held-out reports: `Estimate` (a
figure and its percentile 95% interval), the resampled error figures (MAE, RMSE, correlation, ROC AUC) and
paired gaps, all on the same resamples for one seed."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

F64 = npt.NDArray[np.float64]
Resampled = Callable[[npt.NDArray[np.int64]], F64]  # a statistic of index rows (rounds x customers)


class Estimate(msgspec.Struct, frozen=True):
    """A figure and its bootstrap 95% interval (percentiles)."""

    value: float
    low: float
    high: float


def estimate(point: float, values: F64) -> Estimate:
    """``point`` with the 2.5th and 97.5th percentiles of the finite resampled ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Estimate(point, float("nan"), float("nan"))
    low, high = np.percentile(finite, [2.5, 97.5])
    return Estimate(point, float(low), float(high))


def bootstrap(n: int, seed: int, rounds: int, statistic: Resampled, point: float) -> Estimate:
    """``statistic`` over ``rounds`` resamples of ``n`` customers (the same resamples for one seed)."""
    idx = np.random.default_rng(seed).integers(0, n, size=(rounds, n))
    return estimate(float(point), statistic(idx))


def resampled_mean(values: F64) -> Resampled:
    """The mean of ``values`` per resample (an MAE from absolute errors, a paired gap from differences)."""
    return lambda idx: np.asarray(values[idx].mean(axis=1), dtype=np.float64)


def mean_estimate(values: F64, seed: int, rounds: int) -> Estimate:
    """The mean of ``values`` per customer with its bootstrap interval."""
    return bootstrap(values.size, seed, rounds, resampled_mean(values), float(values.mean()))


def corr_rows(pred: F64, y: F64) -> F64:
    """Pearson correlation along the last axis (one per resample row)."""
    pc = pred - pred.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((pc * yc).sum(-1) / np.sqrt((pc**2).sum(-1) * (yc**2).sum(-1)), dtype=np.float64)


def error_estimates(pred: F64, y: F64, seed: int, rounds: int) -> tuple[Estimate, Estimate, Estimate | None]:
    """MAE, RMSE and correlation (None for a constant prediction) of ``pred`` against ``y``."""
    n = y.size
    err = pred - y
    mae = bootstrap(n, seed, rounds, lambda i: np.abs(err[i]).mean(1), float(np.abs(err).mean()))
    rmse = bootstrap(
        n, seed, rounds, lambda i: np.sqrt((err[i] ** 2).mean(1)), float(np.sqrt((err**2).mean()))
    )
    if np.ptp(pred) == 0:
        return mae, rmse, None
    corr = bootstrap(n, seed, rounds, lambda i: corr_rows(pred[i], y[i]), float(corr_rows(pred, y)))
    return mae, rmse, corr


def auc_rows(score: F64, label: npt.NDArray[np.bool_]) -> F64:
    """ROC AUC per row (Mann-Whitney with mid-ranks for ties)."""
    ranks = rankdata(score, axis=-1)
    positives = label.sum(-1)
    negatives = label.shape[-1] - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (ranks * label).sum(-1) - positives * (positives + 1) / 2.0
        return np.asarray(u / (positives * negatives), dtype=np.float64)


class PairedGap(msgspec.Struct, frozen=True, kw_only=True):
    """One predictor's RMSE and correlation minus another's, on the same resamples of customers (paired:
    the customers both are judged on move together, so the interval is that of the difference itself)."""

    rmse: Estimate  # < 0: the first predictor is better
    corr: Estimate  # > 0: the first predictor is better


def paired_gap(pred: F64, other: F64, y: F64, seed: int, rounds: int) -> PairedGap:
    """``pred``'s RMSE and correlation against ``y`` minus ``other``'s, with paired bootstrap intervals."""

    def rmse_rows(p: F64, i: npt.NDArray[np.int64]) -> F64:
        return np.asarray(np.sqrt(((p[i] - y[i]) ** 2).mean(1)), dtype=np.float64)

    def rmse(p: F64) -> float:
        return float(np.sqrt(((p - y) ** 2).mean()))

    n = y.size
    return PairedGap(
        rmse=bootstrap(
            n, seed, rounds, lambda i: rmse_rows(pred, i) - rmse_rows(other, i), rmse(pred) - rmse(other)
        ),
        corr=bootstrap(
            n,
            seed,
            rounds,
            lambda i: corr_rows(pred[i], y[i]) - corr_rows(other[i], y[i]),
            float(corr_rows(pred, y) - corr_rows(other, y)),
        ),
    )
