"""Household x category features from purchase history only: one vectorised numpy implementation,
used by training and by the daemon.

Two steps. `summarise(history, until_day)` aggregates everything strictly before ``until_day`` into
`PairStats` (per pair, per household, per category). `pair_features(stats, household, category, now)`
turns those aggregates into a float32 matrix with the columns of `FEATURE_NAMES`, for any pairs
(including pairs the household never bought: the next-basket candidates) at any time ``now`` (days
since 1970-01-01; one value or one per row). Undefined values are NaN (the tree models route them).

Definitions. A *purchase* of a pair is a distinct day d_1 < ... < d_n on which the household bought the
category (quantities and spend summed over that day's lines, promo if any line was); the gaps are
g_j = d_{j+1} - d_j. A household's *trips* are its distinct shopping days t_1 < ... < t_m.

| feature                   | definition                                                             |
|---------------------------|------------------------------------------------------------------------|
| `n_purchases`             | n                                                                      |
| `purchases_28d`           | purchases in the 28 days before the end of the history (``until_day``) |
| `purchases_91d`           | purchases in the 91 days before the end of the history                  |
| `interval_median`         | median(g) (NaN if n < 2)                                               |
| `interval_mean`           | mean(g) = (d_n - d_1) / (n - 1) (NaN if n < 2)                         |
| `interval_cv`             | population std(g) / mean(g) (NaN if n < 3)                             |
| `interval_last`           | g_{n-1} (NaN if n < 2)                                                 |
| `trend`                   | mean of the last min(3, n-1) gaps / mean(g) (NaN if n < 3); > 1 slower  |
| `recency_days`            | now - d_n (NaN if n = 0)                                               |
| `recency_ratio`           | recency_days / interval_median: time since last over the usual gap     |
| `tenure_days`             | now - d_1 (NaN if n = 0)                                               |
| `purchase_rate_30d`       | 30 n / (now - t_1): purchases per 30 days since the household's first trip |
| `qty_median`              | median quantity per purchase (NaN if n = 0)                            |
| `last_qty_ratio`          | quantity at d_n / qty_median: last quantity vs usual                    |
| `trip_share`              | n / m: share of the household's trips with the category                |
| `basket_share`            | baskets with the category / the household's baskets                    |
| `frequency_rank`          | 1 for the household's most frequent category (by baskets, ties by code), 2 for the next... (NaN if n = 0) |
| `trips_since_last`        | trips t > d_n: trips since it last bought the category (NaN if n = 0)  |
| `share_of_wallet`         | the pair's spend / the household's spend                               |
| `promo_share`             | share of the n purchases with a promoted line (NaN if n = 0)           |
| `promo_sensitivity`       | promo_share - the category's promo share over all households           |
| `dow_share_now`           | share of the n purchases on the weekday of ``now`` (NaN if n = 0)      |
| `dow_concentration`       | largest share of the n purchases on one weekday (NaN if n = 0)         |
| `category_popularity`     | share of households (with any trip) that bought the category           |
| `household_trips`         | m                                                                      |
| `household_trip_interval` | median gap between the household's trips (NaN if m < 2)                |
| `household_recency`       | now - t_m (NaN if m = 0)                                               |
| `household_categories`    | distinct categories the household bought                               |
| `trip_dow_share_j`        | share of the household's trips on the weekday of now + j days (j 0..6) |

Spend is qty x unit price. Features never use category names or identities (only the category's
popularity and promo share), so a model transfers between stores, and nothing is inferred about the
household beyond its own purchase rhythm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.history import PurchaseHistory, weekday
from models.sorting import lexsort_pair, unique_ints

FEATURE_NAMES: tuple[str, ...] = (
    "n_purchases",
    "purchases_28d",
    "purchases_91d",
    "interval_median",
    "interval_mean",
    "interval_cv",
    "interval_last",
    "trend",
    "recency_days",
    "recency_ratio",
    "tenure_days",
    "purchase_rate_30d",
    "qty_median",
    "last_qty_ratio",
    "trip_share",
    "basket_share",
    "frequency_rank",
    "trips_since_last",
    "share_of_wallet",
    "promo_share",
    "promo_sensitivity",
    "dow_share_now",
    "dow_concentration",
    "category_popularity",
    "household_trips",
    "household_trip_interval",
    "household_recency",
    "household_categories",
    *(f"trip_dow_share_{j}" for j in range(7)),
)
F = {name: i for i, name in enumerate(FEATURE_NAMES)}

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class PairStats:
    """Aggregates of a history before ``until_day``: per pair (sorted by household, category), per
    household and per category (indexed by the history's codes)."""

    until_day: int
    households: tuple[str, ...]
    categories: tuple[str, ...]
    # Pairs with at least one purchase.
    pair_household: I64
    pair_category: I64
    n: I64
    first_day: I64
    last_day: I64
    prev_day: I64  # d_{n-1} (-1 if n < 2)
    back3_day: I64  # d_{n-k} with k = min(3, n-1) (-1 if n < 2)
    interval_median: F64
    gap_sq_sum: F64
    qty_median: F64
    last_qty: F64
    spend: F64
    promo_days: I64
    dow_counts: I64  # pairs x 7
    recent_28d: I64  # purchase days in [until_day - 28, until_day)
    recent_91d: I64
    baskets: I64  # distinct baskets with the category (the GP-TopFreq baseline's count)
    frequency_rank: I64  # 1 = the household's category in most baskets (ties: lower category code)
    trips_after_last: I64
    # Households.
    hh_trips: I64
    hh_first_day: I64
    hh_last_day: I64
    hh_trip_interval: F64
    hh_spend: F64
    hh_baskets: I64
    hh_categories: I64
    hh_dow_counts: I64  # households x 7: trips per weekday (Monday = 0)
    # Categories.
    cat_households: I64
    cat_promo_share: F64
    active_households: int

    @property
    def n_pairs(self) -> int:
        return int(self.n.shape[0])

    def pair_index(self, household: npt.ArrayLike, category: npt.ArrayLike) -> I64:
        """Index of each (household, category) among the pairs, -1 where it has no purchase."""
        h = np.asarray(household, dtype=np.int64)
        c = np.asarray(category, dtype=np.int64)
        keys = self.pair_household * len(self.categories) + self.pair_category
        wanted = h * len(self.categories) + c
        pos = np.searchsorted(keys, wanted)
        pos_clipped = np.minimum(pos, max(0, keys.size - 1))
        hit = (
            (keys.size > 0) & (keys[pos_clipped] == wanted)
            if keys.size
            else np.zeros(wanted.shape, dtype=bool)
        )
        return np.where(hit, pos_clipped, -1).astype(np.int64)


def _group_starts(keys: I64) -> I64:
    """Start index of each run of equal values in a sorted array."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1)).astype(np.int64)


def _rank_within(group: I64, count: I64, tiebreak: I64) -> I64:
    """1-based rank of each row by ``count`` (descending) within its group (ties: lower ``tiebreak``)."""
    order = np.lexsort((tiebreak, -count, group))
    starts = _group_starts(group[order])
    sizes = np.diff(np.append(starts, group.size))
    rank = np.empty(group.size, dtype=np.int64)
    rank[order] = np.arange(group.size) - np.repeat(starts, sizes) + 1
    return rank


def _count_distinct(group: I64, value: I64, n_groups: int) -> I64:
    """Number of distinct ``value``s per group id (0..n_groups-1)."""
    if group.size == 0:
        return np.zeros(n_groups, dtype=np.int64)
    order = lexsort_pair(group, value)
    g, v = group[order], value[order]
    new = np.ones(g.size, dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (v[1:] != v[:-1])
    return np.bincount(g[new], minlength=n_groups).astype(np.int64)


def _group_ends(starts: I64, size: int) -> I64:
    """Last index of each run, given the runs' start indices in an array of ``size`` elements."""
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate((starts[1:], [size])).astype(np.int64) - 1


def _group_median(group: I64, values: F64, n_groups: int) -> F64:
    """Median of ``values`` per group id (0..n_groups-1); NaN for empty groups."""
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    order = lexsort_pair(group, values)
    g, v = group[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    lo = offsets[has] + (counts[has] - 1) // 2
    hi = offsets[has] + counts[has] // 2
    out[has] = (v[lo] + v[hi]) / 2
    return out


def summarise(history: PurchaseHistory, until_day: int | None = None) -> PairStats:
    """Aggregate the lines strictly before ``until_day`` (all lines if None)."""
    n_hh, n_cat = len(history.households), len(history.categories)
    until = until_day if until_day is not None else (history.last_day + 1 if history.n_lines else 0)
    keep = history.day < until
    hh = history.household[keep].astype(np.int64)
    day = history.day[keep].astype(np.int64)
    spend_line = history.qty[keep].astype(np.float64) * history.price[keep].astype(np.float64)
    pairs = _pair_aggregates(history, keep, n_cat, until)
    households = _household_aggregates(hh, day, spend_line, n_hh)
    pair_household, pair_category = pairs["pair_household"], pairs["pair_category"]
    # Trips after the pair's last purchase: the household's trips minus those up to d_n.
    upto = np.searchsorted(
        households["trip_key"], pair_household * (1 << 32) + pairs["last_day"], side="right"
    )
    hh_trip_end = np.cumsum(households["hh_trips"])
    trips_after_last = (hh_trip_end[pair_household] - upto).astype(np.int64)
    cat_days = np.bincount(pair_category, pairs["n"].astype(np.float64), minlength=n_cat)
    cat_promo = np.bincount(pair_category, pairs["promo_days"].astype(np.float64), minlength=n_cat)
    with np.errstate(invalid="ignore", divide="ignore"):
        cat_promo_share = np.where(cat_days > 0, cat_promo / cat_days, np.nan)
    return PairStats(
        until_day=int(until),
        households=history.households,
        categories=history.categories,
        pair_household=pair_household,
        pair_category=pair_category,
        n=pairs["n"],
        first_day=pairs["first_day"],
        last_day=pairs["last_day"],
        prev_day=pairs["prev_day"],
        back3_day=pairs["back3_day"],
        interval_median=pairs["interval_median"],
        gap_sq_sum=pairs["gap_sq_sum"],
        qty_median=pairs["qty_median"],
        last_qty=pairs["last_qty"],
        spend=pairs["spend"],
        promo_days=pairs["promo_days"],
        dow_counts=pairs["dow_counts"],
        recent_28d=pairs["recent_28d"],
        recent_91d=pairs["recent_91d"],
        baskets=pairs["baskets"],
        frequency_rank=_rank_within(pair_household, pairs["baskets"], pair_category),
        trips_after_last=trips_after_last,
        hh_trips=households["hh_trips"],
        hh_first_day=households["hh_first_day"],
        hh_last_day=households["hh_last_day"],
        hh_trip_interval=households["hh_trip_interval"],
        hh_spend=households["hh_spend"],
        hh_baskets=_count_distinct(hh, history.basket[keep].astype(np.int64), n_hh),
        hh_categories=np.bincount(pair_household, minlength=n_hh).astype(np.int64),
        hh_dow_counts=households["hh_dow_counts"],
        cat_households=np.bincount(pair_category, minlength=n_cat).astype(np.int64),
        cat_promo_share=cat_promo_share,
        active_households=int(np.count_nonzero(households["hh_trips"])),
    )


def _pair_aggregates(
    history: PurchaseHistory, keep: npt.NDArray[np.bool_], n_cat: int, until: int
) -> dict[str, Any]:
    """Per pair (sorted by household, category) from its purchase days."""
    pair_key = history.household[keep].astype(np.int64) * n_cat + history.category[keep]
    day = history.day[keep].astype(np.int64)
    order = lexsort_pair(pair_key, day)
    pk, dd = pair_key[order], day[order]
    qty = history.qty[keep].astype(np.float64)[order]
    spend = qty * history.price[keep].astype(np.float64)[order]
    promo = history.promo[keep][order].astype(np.int64)
    # Purchase days: one row per (pair, day).
    start = _group_starts(pk * (1 << 32) + dd)
    pd_pair, pd_day = pk[start], dd[start]
    empty = start.size == 0
    pd_qty = np.zeros(0) if empty else np.add.reduceat(qty, start)
    pd_spend = np.zeros(0) if empty else np.add.reduceat(spend, start)
    pd_promo = np.zeros(0, np.int64) if empty else np.maximum.reduceat(promo, start)

    p_start = _group_starts(pd_pair)
    n_pairs = p_start.size
    p_end = _group_ends(p_start, pd_pair.size)
    n = (p_end - p_start + 1).astype(np.int64)
    p_key = pd_pair[p_start]
    pair_of_pd = np.repeat(np.arange(n_pairs), n)
    k = np.minimum(3, n - 1)
    # Gaps within each pair (the first purchase day of a pair has none).
    gap_valid = np.ones(pd_day.size, dtype=bool)
    gap_valid[p_start] = False
    gaps = np.diff(pd_day, prepend=0).astype(np.float64)
    gap_pair = pair_of_pd[gap_valid]
    return {
        "pair_household": (p_key // max(1, n_cat)).astype(np.int64),
        "pair_category": (p_key % max(1, n_cat)).astype(np.int64),
        "n": n,
        "first_day": pd_day[p_start].astype(np.int64),
        "last_day": pd_day[p_end].astype(np.int64),
        "prev_day": np.where(n >= 2, pd_day[np.maximum(p_end - 1, p_start)], -1).astype(np.int64),
        "back3_day": np.where(n >= 2, pd_day[np.maximum(p_end - k, p_start)], -1).astype(np.int64),
        "interval_median": _group_median(gap_pair, gaps[gap_valid], n_pairs),
        "gap_sq_sum": np.bincount(gap_pair, gaps[gap_valid] ** 2, minlength=n_pairs).astype(np.float64),
        "qty_median": _group_median(pair_of_pd, pd_qty, n_pairs),
        "last_qty": pd_qty[p_end] if n_pairs else np.zeros(0),
        "spend": np.bincount(pair_of_pd, pd_spend, minlength=n_pairs).astype(np.float64),
        "promo_days": np.bincount(pair_of_pd, pd_promo, minlength=n_pairs).astype(np.int64),
        "recent_28d": np.bincount(pair_of_pd, pd_day >= until - 28, minlength=n_pairs).astype(np.int64),
        "recent_91d": np.bincount(pair_of_pd, pd_day >= until - 91, minlength=n_pairs).astype(np.int64),
        "baskets": _count_distinct(
            np.searchsorted(p_key, pair_key), history.basket[keep].astype(np.int64), n_pairs
        ),
        "dow_counts": np.bincount(pair_of_pd * 7 + weekday(pd_day), minlength=n_pairs * 7)
        .reshape(n_pairs, 7)
        .astype(np.int64),
    }


def _household_aggregates(hh: I64, day: I64, spend_line: F64, n_hh: int) -> dict[str, Any]:
    """Per household from its trips (distinct shopping days)."""
    trip_key = unique_ints(hh * (1 << 32) + day)
    trip_hh, trip_day = trip_key >> 32, trip_key & ((1 << 32) - 1)
    hh_trips = np.bincount(trip_hh, minlength=n_hh).astype(np.int64)
    first = np.full(n_hh, -1, dtype=np.int64)
    last = np.full(n_hh, -1, dtype=np.int64)
    start = _group_starts(trip_hh)
    end = _group_ends(start, trip_hh.size)
    if trip_hh.size:
        first[trip_hh[start]] = trip_day[start]
        last[trip_hh[end]] = trip_day[end]
    valid = np.ones(trip_day.size, dtype=bool)
    valid[start] = False
    gaps = np.diff(trip_day, prepend=0).astype(np.float64)
    return {
        "trip_key": trip_key,
        "hh_trips": hh_trips,
        "hh_first_day": first,
        "hh_last_day": last,
        "hh_trip_interval": _group_median(trip_hh[valid], gaps[valid], n_hh),
        "hh_spend": np.bincount(hh, spend_line, minlength=n_hh).astype(np.float64),
        "hh_dow_counts": np.bincount(trip_hh * 7 + weekday(trip_day), minlength=n_hh * 7)
        .reshape(n_hh, 7)
        .astype(np.int64),
    }


def pair_features(
    stats: PairStats,
    household: npt.ArrayLike,
    category: npt.ArrayLike,
    now: float | npt.ArrayLike,
) -> npt.NDArray[np.float32]:
    """The `FEATURE_NAMES` matrix for the given (household, category) codes at ``now``."""
    h = np.asarray(household, dtype=np.int64)
    c = np.asarray(category, dtype=np.int64)
    t = np.broadcast_to(np.asarray(now, dtype=np.float64), h.shape)
    p = stats.pair_index(h, c)
    has = p >= 0
    q = np.where(has, p, 0)
    nan = np.nan

    def pick(values: npt.NDArray[np.generic], empty: float = nan) -> F64:
        if values.size == 0:
            return np.full(h.shape, empty)
        return np.where(has, values[q].astype(np.float64), empty)

    n = pick(stats.n, 0.0)
    first, last = pick(stats.first_day), pick(stats.last_day)
    prev, back3 = pick(stats.prev_day), pick(stats.back3_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(n >= 2, (last - first) / (n - 1), nan)
        var_gap = np.where(n >= 3, pick(stats.gap_sq_sum) / (n - 1) - mean_gap**2, nan)
        cv = np.sqrt(np.maximum(var_gap, 0.0)) / mean_gap
        k = np.minimum(3, n - 1)
        trend = np.where(n >= 3, (last - back3) / k / mean_gap, nan)
        median_gap = np.where(n >= 2, pick(stats.interval_median), nan)
        recency = t - last
        trips = stats.hh_trips[h].astype(np.float64)
        hh_first = np.where(trips > 0, stats.hh_first_day[h], nan)
        hh_last = np.where(trips > 0, stats.hh_last_day[h], nan)
        qty_median = pick(stats.qty_median)
        spend = pick(stats.spend, 0.0)
        promo_share = pick(stats.promo_days) / n
        dow = stats.dow_counts[q] if stats.dow_counts.size else np.zeros((h.size, 7), dtype=np.int64)
        dow_now = dow[np.arange(h.size), weekday(t)] if h.size else np.zeros(0)
        hh_spend = stats.hh_spend[h]
        columns = {
            "n_purchases": n,
            "purchases_28d": pick(stats.recent_28d, 0.0),
            "purchases_91d": pick(stats.recent_91d, 0.0),
            "interval_median": median_gap,
            "interval_mean": mean_gap,
            "interval_cv": np.where(n >= 3, cv, nan),
            "interval_last": np.where(n >= 2, last - prev, nan),
            "trend": trend,
            "recency_days": recency,
            "recency_ratio": recency / median_gap,
            "tenure_days": t - first,
            "purchase_rate_30d": np.where(t > hh_first, 30 * n / (t - hh_first), nan),
            "qty_median": qty_median,
            "last_qty_ratio": pick(stats.last_qty) / qty_median,
            "trip_share": np.where(trips > 0, n / trips, nan),
            "basket_share": np.where(
                stats.hh_baskets[h] > 0, pick(stats.baskets, 0.0) / np.maximum(stats.hh_baskets[h], 1), nan
            ),
            "frequency_rank": pick(stats.frequency_rank),
            "trips_since_last": pick(stats.trips_after_last),
            "share_of_wallet": np.where(hh_spend > 0, spend / hh_spend, nan),
            "promo_share": promo_share,
            "promo_sensitivity": promo_share - stats.cat_promo_share[c],
            "dow_share_now": np.where(has, dow_now / n, nan),
            "dow_concentration": np.where(has, dow.max(axis=1) / n, nan) if h.size else np.zeros(0),
            "category_popularity": stats.cat_households[c] / max(1, stats.active_households),
            "household_trips": trips,
            "household_trip_interval": stats.hh_trip_interval[h],
            "household_recency": t - hh_last,
            "household_categories": stats.hh_categories[h].astype(np.float64),
        }
        hh_dow = stats.hh_dow_counts[h].astype(np.float64)
        wd = weekday(t)
        for j in range(7):
            columns[f"trip_dow_share_{j}"] = np.where(
                trips > 0, hh_dow[np.arange(h.size), (wd + j) % 7] / trips, nan
            )
    matrix = np.empty((h.size, len(FEATURE_NAMES)), dtype=np.float32)
    for name, index in F.items():
        matrix[:, index] = columns[name]
    return matrix
