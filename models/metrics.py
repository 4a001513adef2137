"""Metrics for the held-out evaluation: errors in days, calibration, and top-k ranking quality."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def ece(probability: npt.ArrayLike, outcome: npt.ArrayLike, bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width probability bins of (share of rows) x
    |mean predicted - observed rate|."""
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, p, minlength=bins) - np.bincount(which, y, minlength=bins))
    return float(gap.sum() / count.sum())


def day_errors(predicted: npt.ArrayLike, actual: npt.ArrayLike) -> dict[str, float]:
    """MAE in days and the shares within +-7 and +-2 days (rows with an actual value only)."""
    err = np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64))
    if err.size == 0:
        return {"mae_days": float("nan"), "within_7d": float("nan"), "within_2d": float("nan")}
    return {
        "mae_days": float(err.mean()),
        "within_7d": float(np.mean(err <= 7)),
        "within_2d": float(np.mean(err <= 2)),
        "within_1d": float(np.mean(err <= 1)),
    }


def ranking(
    query: npt.ArrayLike,
    score: npt.ArrayLike,
    relevant: npt.ArrayLike,
    n_relevant: npt.ArrayLike,
    k: int = 10,
    tiebreak: npt.ArrayLike | None = None,
) -> tuple[F64, F64, F64]:
    """Per query (ids 0..Q-1): hits in the top k, recall@k and NDCG@k with binary relevance.

    Rows are (query, candidate) with a score and whether the candidate is relevant; ``n_relevant[q]`` is
    the number of relevant items of query q, including those that were not candidates (they count in
    recall's denominator and the ideal DCG). Ties in score break on ``tiebreak`` (ascending), then row.
    Queries without relevant items get NaN.
    """
    q = np.asarray(query, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    r = np.asarray(relevant, dtype=bool)
    total = np.asarray(n_relevant, dtype=np.float64)
    tb = np.zeros(q.size) if tiebreak is None else np.asarray(tiebreak, dtype=np.float64)
    order = np.lexsort((np.arange(q.size), tb, -s, q))
    q, r = q[order], r[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(q)) + 1)) if q.size else np.zeros(0, np.int64)
    rank = np.arange(q.size) - np.repeat(starts, np.diff(np.append(starts, q.size)))
    top = rank < k
    n_queries = total.size
    hits = np.bincount(q[top], r[top].astype(np.float64), minlength=n_queries)
    dcg = np.bincount(q[top], r[top] / np.log2(rank[top] + 2.0), minlength=n_queries)
    discounts = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))))
    ideal = discounts[np.minimum(total, k).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(total > 0, hits / total, np.nan)
        ndcg = np.where(total > 0, dcg / ideal, np.nan)
    return hits.astype(np.float64), recall.astype(np.float64), ndcg.astype(np.float64)


def mean_by_group(values: npt.ArrayLike, group: npt.ArrayLike) -> float:
    """Mean over groups of the per-group mean (NaN values ignored): e.g. per household, then overall."""
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(group, dtype=np.int64)
    ok = ~np.isnan(v)
    if not ok.any():
        return float("nan")
    _, g = np.unique(g[ok], return_inverse=True)
    sums = np.bincount(g, v[ok])
    counts = np.bincount(g)
    return float(np.mean(sums / counts))


PROBABILITY_CLIP = 1e-6


def brier(probability: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Brier score: mean of (p - y)^2 over rows, y in {0, 1}; NaN without rows."""
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def log_loss(probability: npt.ArrayLike, outcome: npt.ArrayLike, clip: float = PROBABILITY_CLIP) -> float:
    """Mean negative log likelihood of the outcomes, probabilities clipped to [clip, 1 - clip] (so a
    confident 0/1 miss costs -ln(1e-6) = 13.8, not infinity); NaN without rows."""
    p = np.clip(np.asarray(probability, dtype=np.float64), clip, 1 - clip)
    y = np.asarray(outcome, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
