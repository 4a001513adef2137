"""The LambdaRank next-basket ranker against GP-TopFreq and tuned TIFU-KNN, frozen and rolling protocol.

    python bench/next_basket_ranker.py --cutoff 2017-10-01            # Complete Journey (~30-60 min)
    python bench/next_basket_ranker.py --sample-households 300 --train-every 14   # a quick look

Trains `models.basket_ranker` on the days before the cutoff (fresh rows, one basket per household every
``--train-every`` days; TIFU-KNN tuned before the cutoff as `storeedge models evaluate` tunes it),
exports it to ONNX (model.onnx + card.json in ``--model-dir``, parity with LightGBM checked on held-out
rows) and evaluates the *exported* model through onnxruntime with `models.evaluation` in both protocols:
frozen (every test basket ranked from the history before the cutoff) and rolling (each day's baskets
from the history before that day), next to GP-TopFreq and TIFU-KNN from the same run. The goal of
issue #16: Recall@10 >= 1.05x GP-TopFreq and > TIFU-KNN in both. Prints a table and writes JSON to
bench/results/next_basket_ranker-<groups>-<cutoff>.json. Needs the train extra (lightgbm, onnxmltools).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

_BENCH_DIR = Path(__file__).resolve().parent
if str(_BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_BENCH_DIR.parent))

from models.basket_ranker import (  # noqa: E402
    RANKER_GROUPS,
    TRAIN_EVERY_DAYS,
    train_basket_ranker,
    write_ranker,
)
from models.datasets import load_source  # noqa: E402
from models.evaluation import evaluate_next_basket, evaluate_next_basket_rolling  # noqa: E402
from models.history import epoch_day  # noqa: E402
from models.inference import OnnxModel  # noqa: E402

GOAL_VS_GP = 1.05
STARTED = time.perf_counter()


def stage(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {text}", file=sys.stderr, flush=True)


def comparison(part: dict[str, Any]) -> dict[str, Any]:
    """The ranker, GP-TopFreq and TIFU-KNN of one protocol, with the ratios and whether the goal is met."""
    model, gp, tifu = part["model"], part["baseline"], part["baseline_tifu_knn"]
    ratio_gp = model["recall@10"] / gp["recall@10"]
    return {
        "ranker": {"recall@10": model["recall@10"], "ndcg@10": model["ndcg@10"]},
        "gp_top_freq": {"recall@10": gp["recall@10"], "ndcg@10": gp["ndcg@10"]},
        "tifu_knn": {"recall@10": tifu["recall@10"], "ndcg@10": tifu["ndcg@10"]},
        "recall_vs_gp_top_freq": ratio_gp,
        "recall_vs_tifu_knn": model["recall@10"] / tifu["recall@10"],
        "tifu_knn_vs_gp_top_freq": tifu["recall@10"] / gp["recall@10"],
        "goal_met": bool(ratio_gp >= GOAL_VS_GP and model["recall@10"] > tifu["recall@10"]),
        "baskets": model["baskets"],
        "households": model["households"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", default="completejourney", help="completejourney or a history file")
    parser.add_argument("--cutoff", type=date.fromisoformat, default=date(2017, 10, 1))
    parser.add_argument(
        "--end", type=date.fromisoformat, default=None, help="end of the test window (default: the data's)"
    )
    parser.add_argument("--sample-households", type=int, default=None)
    parser.add_argument(
        "--train-every", type=int, default=TRAIN_EVERY_DAYS, help="a training day every N days"
    )
    parser.add_argument("--groups", default=",".join(RANKER_GROUPS), help="feature groups: base,tifu[,trend]")
    parser.add_argument("--model-dir", type=Path, default=None, help="where to write model.onnx + card.json")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    groups = tuple(args.groups.split(","))
    output = (
        args.output or _BENCH_DIR / "results" / f"next_basket_ranker-{'+'.join(groups)}-{args.cutoff}.json"
    )

    seconds: dict[str, float] = {}
    began = time.perf_counter()
    history = load_source(args.source, sample_households=args.sample_households)
    cutoff = epoch_day(args.cutoff)
    end = history.last_day + 1 if args.end is None else epoch_day(args.end)
    seconds["load"] = time.perf_counter() - began
    stage("training")
    began = time.perf_counter()
    ranker = train_basket_ranker(history, cutoff, groups=groups, train_every=args.train_every, end_day=end)
    seconds["train"] = time.perf_counter() - began
    with tempfile.TemporaryDirectory(prefix="next-basket-ranker-") as scratch:
        directory = args.model_dir or Path(scratch) / "next_basket_ranker"
        began = time.perf_counter()
        card = write_ranker(directory, ranker, history, cutoff, source=args.source)
        seconds["export"] = time.perf_counter() - began
        served = ranker.scorer(OnnxModel(directory, expected_features=ranker.features).run)
        began = time.perf_counter()
        stage("evaluating, frozen protocol")
        frozen = evaluate_next_basket(history, cutoff, None, scorer=served, end_day=end)
        seconds["evaluate_frozen"] = time.perf_counter() - began
        began = time.perf_counter()
        stage("evaluating, rolling protocol")
        rolling = evaluate_next_basket_rolling(history, cutoff, None, scorer=served, end_day=end)
        seconds["evaluate_rolling"] = time.perf_counter() - began
    results = {"frozen": comparison(frozen), "rolling": comparison(rolling)}
    print(
        f"{args.source}, cutoff {args.cutoff}: LambdaRank over {', '.join(groups)} "
        f"({ranker.training['baskets']} training baskets, {ranker.training['rows']} rows, "
        f"{card.onnx_bytes} bytes of ONNX; cores {os.cpu_count()})"
    )
    print(f"{'protocol':<10}{'ranker':>10}{'GP-TopFreq':>12}{'TIFU-KNN':>10}{'vs GP':>8}{'vs TIFU':>9}  goal")
    for protocol, row in results.items():
        print(
            f"{protocol:<10}{row['ranker']['recall@10']:>10.4f}{row['gp_top_freq']['recall@10']:>12.4f}"
            f"{row['tifu_knn']['recall@10']:>10.4f}{row['recall_vs_gp_top_freq']:>7.3f}x"
            f"{row['recall_vs_tifu_knn']:>8.3f}x  {'met' if row['goal_met'] else 'not met'}"
        )
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    document = {
        "source": args.source,
        "cutoff": args.cutoff.isoformat(),
        "test_days": end - cutoff,
        "sample_households": args.sample_households,
        "train_every_days": args.train_every,
        "groups": list(groups),
        "training": ranker.training,
        "onnx_bytes": card.onnx_bytes,
        "model_version": card.version,
        "tifu_knn_tuning": frozen["tifu_knn_tuning"],
        "results": results,
        "reports": {"frozen": frozen, "rolling": rolling},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=float) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
