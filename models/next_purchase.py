"""Next purchase: when each (household, category) is bought next, as a discrete-time hazard model.

Time is counted in whole days from "now" (the scoring day, day 0 = today): T is the number of days until
the household next buys the category. The horizon (91 days) is cut into bins `BIN_EDGES`; a binary
classifier gives the hazard h_k = P(T in bin k | T >= start of bin k, features) from the pair's
features plus four bin columns (`HAZARD_FEATURES`). Survival S_k = prod_{j<k} (1 - h_j) gives:

- ``p_within[d]`` = P(T < d) for d in 1, 2, 7, 14 (bin edges, so exact): bought today, by tomorrow, this
  week, within two weeks;
- ``p_horizon`` = P(T < 91): bought at all within the horizon (1 - p_horizon: the censored share);
- ``expected_days`` = the median of T given T < 91 (each bin's mass spread over its days by the
  household's weekday habit), the point forecast scored by MAE; a pair that may never be bought again
  still gets a date "if at all";
- ``confidence`` = P(|T - expected_days| <= 7), unconditional: how much to trust that date;
- ``days_quantiles`` = the 10th, 50th and 90th percentiles of T given T < 91 (`QUANTILES`; the 50th is
  ``expected_days``): the spread of that date.

Censoring is handled by construction: a training pair contributes one row per bin it was observed to
survive into, and none for bins its observation window does not fully cover (see
`models.training.next_purchase_rows`), so pairs never bought again inform the hazard without being
counted as purchases.

The baseline (`median_interval_days`) predicts max(0, median gap - days since last purchase); the
probabilistic baseline (`empirical_interval_probability`) gives P(T < d) from the pair's own past gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.features import FEATURE_NAMES, F
from models.history import PurchaseHistory

BIN_EDGES: tuple[int, ...] = (0, 1, 2, 4, 7, 14, 28, 56, 91)
HORIZON_DAYS = BIN_EDGES[-1]
PROBABILITY_DAYS: tuple[int, ...] = (1, 2, 7, 14)
CONFIDENCE_HALF_WIDTH_DAYS = 7
QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)  # of T given T < horizon (0.5: expected_days)
N_BINS = len(BIN_EDGES) - 1
HAZARD_FEATURES: tuple[str, ...] = (
    *FEATURE_NAMES,
    "bin_start",
    "bin_width",
    "recency_at_bin",
    "ratio_at_bin",
    "trip_days_in_bin",
)
MIN_PURCHASES = 2  # pairs with fewer purchase days get no next-purchase forecast
# Within a bin, a day gets mass in proportion to the household's share of trips on its weekday, mixed
# with this much of an even spread (a household does not only shop on its usual days).
EVEN_SHARE = 0.1
SCORE_CHUNK = 16_384

_START = np.asarray(BIN_EDGES[:-1], dtype=np.float64)
_WIDTH = np.diff(np.asarray(BIN_EDGES, dtype=np.float64))
_DAY_BIN = np.repeat(np.arange(N_BINS), np.diff(BIN_EDGES))  # bin of each day 0..horizon-1
_TRIP_COLUMNS = [F[f"trip_dow_share_{j}"] for j in range(7)]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def day_weights(features: npt.NDArray[np.float32]) -> F64:
    """Pairs x horizon days: how likely the household is to shop on each day from now (its trip-weekday
    profile, mixed with an even spread; even when it has no trips yet)."""
    profile = features[:, _TRIP_COLUMNS].astype(np.float64)
    profile = np.where(np.isnan(profile), 1 / 7, profile)
    profile = (1 - EVEN_SHARE) * profile + EVEN_SHARE / 7
    return np.asarray(profile[:, np.arange(HORIZON_DAYS) % 7], dtype=np.float64)


def hazard_rows(features: npt.NDArray[np.float32], bins: int = N_BINS) -> F32:
    """One row per (pair, bin) for the first ``bins`` bins: pair i, bin k is row i * bins + k."""
    n = features.shape[0]
    rows = np.empty((n * bins, len(HAZARD_FEATURES)), dtype=np.float32)
    base = len(FEATURE_NAMES)
    rows[:, :base] = np.repeat(features, bins, axis=0)
    start = np.tile(_START[:bins], n)
    rows[:, base] = start
    rows[:, base + 1] = np.tile(_WIDTH[:bins], n)
    recency = rows[:, F["recency_days"]].astype(np.float64) + start
    rows[:, base + 2] = recency
    with np.errstate(invalid="ignore", divide="ignore"):
        rows[:, base + 3] = recency / rows[:, F["interval_median"]]
    # Expected trips in the bin by the household's weekday habit (the sum of its weekday shares).
    profile = features[:, _TRIP_COLUMNS].astype(np.float64)[:, np.arange(HORIZON_DAYS) % 7]
    per_bin = (
        np.add.reduceat(profile, np.asarray(BIN_EDGES[:-1]), axis=1)[:, :bins] if n else np.zeros((0, bins))
    )
    rows[:, base + 4] = per_bin.reshape(-1)
    return rows


@dataclass(frozen=True, slots=True, eq=False)
class NextPurchaseScores:
    """Per pair: P(T < d) for `PROBABILITY_DAYS` (columns), P(T < horizon), the median day given a
    purchase within the horizon (the expected date, days from now), the probability that date is right
    within 7 days, and the centre of the most likely 15-day window (an alternative point forecast that
    maximises the share within +-7 days at the cost of MAE), and the `QUANTILES` of T given a purchase
    within the horizon (pairs x 3: p10, p50 = expected_days, p90; the horizon where nothing is likely)."""

    p_within: F64  # pairs x len(PROBABILITY_DAYS)
    p_horizon: F64
    expected_days: F64
    confidence: F64
    best_week_days: F64
    days_quantiles: F64  # pairs x len(QUANTILES)

    def p_within_days(self, days: int) -> F64:
        return self.p_within[:, PROBABILITY_DAYS.index(days)]

    def days_quantile(self, q: float) -> F64:
        """Days until the next purchase at quantile ``q`` of `QUANTILES`, given one within the horizon."""
        return self.days_quantiles[:, QUANTILES.index(q)]


def scores_from_hazard(
    hazard: npt.ArrayLike, features: npt.NDArray[np.float32] | None = None
) -> NextPurchaseScores:
    """Turn a pairs x bins hazard matrix into probabilities, an expected day and a confidence.

    Each bin's probability is spread over its days by the household's weekday habit (``features``'
    `trip_dow_share_j`; evenly without features)."""
    h = np.clip(np.asarray(hazard, dtype=np.float64), 0.0, 1.0)
    n = h.shape[0]
    survival = np.concatenate((np.ones((n, 1)), np.cumprod(1.0 - h, axis=1)), axis=1)
    cdf = 1.0 - survival  # cdf[:, k] = P(T < BIN_EDGES[k])
    p_within = np.stack([cdf[:, BIN_EDGES.index(d)] for d in PROBABILITY_DAYS], axis=1)
    p_horizon = cdf[:, -1]
    mass = np.diff(cdf, axis=1)  # P(T in bin k)
    expected = np.empty(n)
    confidence = np.empty(n)
    best_week = np.empty(n)
    quantiles = np.empty((n, len(QUANTILES)))
    for lo in range(0, n, SCORE_CHUNK):
        hi = min(n, lo + SCORE_CHUNK)
        weights = day_weights(features[lo:hi]) if features is not None else np.ones((hi - lo, HORIZON_DAYS))
        per_bin = np.add.reduceat(weights, np.asarray(BIN_EDGES[:-1]), axis=1)
        day_mass = mass[lo:hi, _DAY_BIN] * weights / per_bin[:, _DAY_BIN]
        # by_day[:, t] = P(T < t), t = 0..horizon
        by_day = np.concatenate((np.zeros((hi - lo, 1)), np.cumsum(day_mass, axis=1)), axis=1)
        expected[lo:hi], confidence[lo:hi], best_week[lo:hi] = _points(by_day, p_horizon[lo:hi])
        quantiles[lo:hi] = _quantiles(by_day, p_horizon[lo:hi])
    return NextPurchaseScores(p_within, p_horizon, expected, confidence, best_week, quantiles)


def _quantiles(by_day: F64, p_horizon: F64) -> F64:
    """Per pair, for each q of `QUANTILES`: the first day t with P(T <= t) >= q * P(T < horizon), i.e. the
    q-quantile of T given a purchase within the horizon (the horizon when no purchase is likely at all)."""
    out = np.empty((by_day.shape[0], len(QUANTILES)))
    for j, q in enumerate(QUANTILES):
        reached = by_day[:, 1:] >= q * p_horizon[:, None] - 1e-12
        out[:, j] = np.where(p_horizon > 0, np.argmax(reached, axis=1), HORIZON_DAYS)
    return out


def _points(by_day: F64, p_horizon: F64) -> tuple[F64, F64, F64]:
    rows = np.arange(by_day.shape[0])
    half = CONFIDENCE_HALF_WIDTH_DAYS
    # Median given T < horizon: the first day t with P(T <= t) >= p_horizon / 2.
    reached = by_day[:, 1:] >= 0.5 * p_horizon[:, None] - 1e-12
    median = np.where(p_horizon > 0, np.argmax(reached, axis=1), HORIZON_DAYS).astype(np.float64)
    days = np.arange(HORIZON_DAYS)
    upper = np.minimum(days + half + 1, HORIZON_DAYS)
    lower = np.maximum(days - half, 0)
    window = by_day[:, upper] - by_day[:, lower]  # P(|T - t| <= 7) for each candidate day t
    best = np.argmax(window, axis=1).astype(np.float64)
    at_median = window[rows, np.minimum(median, HORIZON_DAYS - 1).astype(np.int64)]
    return median, np.where(p_horizon > 0, at_median, 0.0), best


def median_interval_days(features: npt.NDArray[np.float32]) -> F64:
    """The baseline: max(0, median gap - days since the last purchase); NaN with fewer than 2 purchases."""
    median = features[:, F["interval_median"]].astype(np.float64)
    recency = features[:, F["recency_days"]].astype(np.float64)
    return np.maximum(0.0, median - recency)


# The empirical-interval baseline's smoothing: (k + a) / (n + 2a), add-a-half (Jeffreys), fixed a priori.
EMPIRICAL_SMOOTHING = 0.5


def purchase_gaps(history: PurchaseHistory, until_day: int) -> tuple[I64, I64]:
    """Every pair's gaps between consecutive purchase days strictly before ``until_day``: (pair key =
    household x n_categories + category, gap in days), sorted by pair key, then gap."""
    n_cat = len(history.categories)
    keep = history.day < until_day
    pair = history.household[keep].astype(np.int64) * n_cat + history.category[keep]
    purchase = np.unique(pair * (1 << 32) + history.day[keep].astype(np.int64))  # distinct (pair, day)
    pair, day = purchase >> 32, purchase & ((1 << 32) - 1)
    same = pair[1:] == pair[:-1]
    gap_pair, gap = pair[1:][same], np.diff(day)[same]
    order = np.lexsort((gap, gap_pair))
    return gap_pair[order].astype(np.int64), gap[order].astype(np.int64)


def _conditional_counts(keys: I64, gaps: I64, key: I64, since: I64, days: int) -> tuple[I64, I64]:
    """Per row: n = gaps of ``key`` >= ``since``, k = those also < ``since + days``. ``keys``/``gaps``
    sorted by (key, gap)."""
    packed = keys * (1 << 32) + gaps
    base = key * (1 << 32)
    at_least = np.searchsorted(packed, base + since, side="left")
    below = np.searchsorted(packed, base + since + days, side="left")
    end = np.searchsorted(packed, base + (1 << 32), side="left")
    return (below - at_least).astype(np.int64), (end - at_least).astype(np.int64)


def empirical_interval_probability(
    history: PurchaseHistory,
    household: npt.ArrayLike,
    category: npt.ArrayLike,
    now: int,
    days: int,
    *,
    smoothing: float = EMPIRICAL_SMOOTHING,
) -> F64:
    """The probabilistic baseline: P(T < ``days``) from the pair's own past gaps (before ``now``).

    With the last purchase on d_n and s = now - d_n, the pair has not bought on days d_n + 1 .. now - 1,
    so its running gap is at least s, and T < days means the gap ends in [s, s + days): P = (k + a) /
    (n + 2a), n = the pair's gaps >= s, k = those < s + days, a = ``smoothing`` (never exactly 0 or 1).
    (In whole days elapsed without a purchase, s' = s - 1: the share of gaps g > s' with g <= s' + days.)
    Fallback when no gap of the pair reaches s (overdue beyond its longest gap): the same conditional
    share over the gaps of every household in the category; if none reaches s either, a / 2a = 0.5.
    """
    h = np.asarray(household, dtype=np.int64)
    c = np.asarray(category, dtype=np.int64)
    n_cat = len(history.categories)
    pair = h * n_cat + c
    gap_pair, gap = purchase_gaps(history, now)
    keep = history.day < now
    last = np.full(max(1, len(history.households) * n_cat), -1, dtype=np.int64)
    np.maximum.at(
        last,
        history.household[keep].astype(np.int64) * n_cat + history.category[keep],
        history.day[keep].astype(np.int64),
    )
    since = np.where(last[pair] >= 0, now - last[pair], 0)
    k, n = _conditional_counts(gap_pair, gap, pair, since, days)
    gap_category = gap_pair % max(1, n_cat)
    order = np.lexsort((gap, gap_category))
    k_cat, n_cat_rows = _conditional_counts(gap_category[order], gap[order], c, since, days)
    fallback = n == 0
    k = np.where(fallback, k_cat, k)
    n = np.where(fallback, n_cat_rows, n)
    return ((k + smoothing) / (n + 2 * smoothing)).astype(np.float64)
