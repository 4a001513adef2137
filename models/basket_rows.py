"""Next-basket training rows as the daemon serves: features as of the basket's day (training extra).

`collect(history, days, rng, tifu, groups)` builds, for each of ``days``, the candidate rows
(`models.next_basket.candidates`) of that day's baskets (one random basket per household with ``rng``,
every basket without), every feature computed from the history strictly before that day, one float32
matrix per feature group asked for: the served groups of `models.ranker_features` (``base``, ``tifu``,
``trend``) and two the study `bench/next_basket_study.py` tried and the ranker does not use:

* ``decay``: recency-weighted basket frequencies of the pair (`decayed_frequency`);
* ``neighbours``: the category's basket share among the household's 50 most similar households
  (`neighbour_share`, recomputed every 28 days).

The ranker `models.basket_ranker` trains on these rows; the study imports them too (one copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.basket_baselines import TifuParams
from models.features import PairStats, summarise
from models.history import PurchaseHistory
from models.next_basket import top_frequency_scores
from models.ranker_features import SERVED_GROUPS, StoreTrend, ranker_groups
from models.training import basket_queries, sample_per_group

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
TRIP_DECAYS = (0.5, 0.8, 0.95)
DAY_DECAYS = (14.0, 60.0)
NEIGHBOURS = 50
NEIGHBOUR_BLOCK_DAYS = 28
STUDY_GROUPS = ("decay", "neighbours")  # computed only here, not served


@dataclass(frozen=True, slots=True)
class Rows:
    """Candidate rows of many baskets, with the feature groups asked for and what the metrics need."""

    query: I64
    household: I64  # per query
    category: I64
    day: I64  # per row
    label: npt.NDArray[np.bool_]
    n_relevant: I64  # per query
    groups: dict[str, F32]
    baseline: F64
    baseline_tiebreak: F64
    popularity_tiebreak: F64


def decayed_frequency(history: PurchaseHistory, day: int, household: I64, category: I64) -> F32:
    """Per row: recency-weighted basket frequencies of the pair from the history before ``day``."""
    n_cat = len(history.categories)
    keep = history.day < day
    hh = history.household[keep].astype(np.int64)
    days = history.day[keep].astype(np.int64)
    trips = np.unique(hh * (1 << 32) + days)
    trip_hh = trips >> 32
    trip_start = np.searchsorted(trip_hh, np.arange(len(history.households)))
    n_trips = np.bincount(trip_hh, minlength=len(history.households))
    pair_days = np.unique((hh * n_cat + history.category[keep]) * (1 << 32) + days)
    pair, pair_day = pair_days >> 32, pair_days & ((1 << 32) - 1)
    pair_hh = pair // n_cat
    ago = (
        n_trips[pair_hh] - 1 - (np.searchsorted(trips, pair_hh * (1 << 32) + pair_day) - trip_start[pair_hh])
    )
    pairs, index = np.unique(pair, return_inverse=True)
    columns = [
        np.bincount(index, r**ago, minlength=pairs.size) * (1 - r) / (1 - r ** n_trips[pairs // n_cat])
        for r in TRIP_DECAYS
    ]
    columns += [
        np.bincount(index, np.exp(-(day - pair_day) / tau), minlength=pairs.size) for tau in DAY_DECAYS
    ]
    columns += [np.bincount(index, (ago < k).astype(np.float64), minlength=pairs.size) for k in (1, 3, 5)]
    wanted = household * n_cat + category
    pos = np.minimum(np.searchsorted(pairs, wanted), max(pairs.size - 1, 0))
    hit = pairs[pos] == wanted if pairs.size else np.zeros(wanted.size, dtype=bool)
    return np.column_stack([np.where(hit, c[pos], 0.0) for c in columns]).astype(np.float32)


def neighbour_share(stats: PairStats) -> F64:
    """Households x categories: the basket share of each category among the household's most similar
    households (cosine of basket-share vectors), weighted by similarity."""
    shares = np.zeros((len(stats.households), len(stats.categories)))
    shares[stats.pair_household, stats.pair_category] = stats.baskets / np.maximum(
        stats.hh_baskets[stats.pair_household], 1
    )
    unit = shares / np.maximum(np.linalg.norm(shares, axis=1, keepdims=True), 1e-9)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -1.0)
    k = min(NEIGHBOURS, len(stats.households) - 1)
    nearest = np.argpartition(-similarity, k, axis=1)[:, :k]
    weight = np.take_along_axis(similarity, nearest, axis=1).clip(0)
    return np.asarray(
        (weight[:, :, None] * shares[nearest]).sum(1) / np.maximum(weight.sum(1, keepdims=True), 1e-9)
    )


def day_rows(
    history: PurchaseHistory,
    day: int,
    rng: np.random.Generator | None,
    tifu: TifuParams,
    groups: Sequence[str],
    trend: StoreTrend | None = None,
    neighbours: F64 | None = None,
) -> Rows | None:
    """The candidate rows of ``day``'s baskets (one per household if ``rng``), ranked from before it;
    ``neighbours`` (`neighbour_share`) is needed for the ``neighbours`` group."""
    stats = summarise(history, day)
    source = history
    if rng is not None:
        window = np.flatnonzero(history.day == day)
        baskets, first = np.unique(history.basket[window], return_index=True)
        chosen = sample_per_group(history.household[window][first].astype(np.int64), 1, rng)
        source = history.select(np.isin(history.basket, baskets[chosen]) | (history.day < day))
    queries = basket_queries(source, stats, day, day + 1)
    if queries.day.size == 0:
        return None
    cands = queries.candidates
    base, base_tiebreak = top_frequency_scores(stats, cands)
    served = [g for g in groups if g in SERVED_GROUPS]
    features = ranker_groups(history, stats, cands, float(day), tifu, served, trend)
    if "decay" in groups:
        features["decay"] = decayed_frequency(history, day, cands.household, cands.category)
    if "neighbours" in groups:
        assert neighbours is not None, "day_rows: the neighbours group needs neighbour_share"
        features["neighbours"] = neighbours[cands.household, cands.category].astype(np.float32)[:, None]
    return Rows(
        query=cands.query,
        household=queries.household,
        category=cands.category,
        day=np.full(cands.rows, day, dtype=np.int64),
        label=queries.label,
        n_relevant=queries.n_relevant,
        groups=features,
        baseline=base,
        baseline_tiebreak=base_tiebreak,
        popularity_tiebreak=-stats.cat_households[cands.category].astype(np.float64),
    )


def collect(
    history: PurchaseHistory,
    days: Sequence[int],
    rng: np.random.Generator | None,
    tifu: TifuParams,
    groups: Sequence[str] = SERVED_GROUPS + STUDY_GROUPS,
) -> Rows:
    """`day_rows` of every day of ``days`` in one `Rows` (queries numbered across days)."""
    unknown = sorted(set(groups) - set(SERVED_GROUPS + STUDY_GROUPS))
    if unknown:
        raise ValueError(f"collect: unknown feature groups {unknown}")
    trend = StoreTrend(history) if "trend" in groups else None
    parts: list[Rows] = []
    neighbours: F64 | None = None
    block: int | None = None
    for day in days:
        if "neighbours" in groups and (block is None or day >= block + NEIGHBOUR_BLOCK_DAYS):
            block = day
            neighbours = neighbour_share(summarise(history, day))
        part = day_rows(history, day, rng, tifu, groups, trend, neighbours)
        if part is not None:
            parts.append(part)
    if not parts:
        raise ValueError("collect: no baskets on any of the days")
    offsets = np.cumsum([0] + [p.household.size for p in parts[:-1]])
    return Rows(
        query=np.concatenate([p.query + o for p, o in zip(parts, offsets, strict=True)]),
        household=np.concatenate([p.household for p in parts]),
        category=np.concatenate([p.category for p in parts]),
        day=np.concatenate([p.day for p in parts]),
        label=np.concatenate([p.label for p in parts]),
        n_relevant=np.concatenate([p.n_relevant for p in parts]),
        groups={g: np.concatenate([p.groups[g] for p in parts]) for g in parts[0].groups},
        baseline=np.concatenate([p.baseline for p in parts]),
        baseline_tiebreak=np.concatenate([p.baseline_tiebreak for p in parts]),
        popularity_tiebreak=np.concatenate([p.popularity_tiebreak for p in parts]),
    )
