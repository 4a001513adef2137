"""Benchmark: a full nightly rescore of a store's households with the shipped ONNX models.

    python bench/models.py            # 20,000 households x 30 categories (the issue's size)
    python bench/models.py --quick    # 2,000 households, a few seconds

A simulated history (the household simulator, the demo store's first 30 categories, 120 days) is
built first and not timed. Then, timed stage by stage, what the daemon's nightly batch does:
aggregate the history (`summarise`), build pair features for every household x category (the full
grid, bought or not), score next purchase (8 hazard rows per pair through onnxruntime), build the
next-basket candidates and score them. onnxruntime gets ``--threads`` intra-op threads (the store box
has 2 cores). Prints a table and writes JSON to bench/results/models.json. Not a test: nothing here
asserts a speed. (The daemon-side HTTP latency and RSS come with serving.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path

# This file is called models.py: running it as a script would put bench/ first on sys.path and make
# `import models` import this file. Put the repository root there instead.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))

import numpy as np  # noqa: E402

from models.features import pair_features, summarise  # noqa: E402
from models.history import PurchaseHistory, make_history  # noqa: E402
from models.inference import TRAINED_DIR, NextBasketModel, NextPurchaseModel  # noqa: E402
from models.next_basket import basket_features, candidates  # noqa: E402
from models.next_purchase import N_BINS  # noqa: E402
from sensors.planogram import load_planogram  # noqa: E402
from simulators.household_history import DEMO_PLANOGRAM, HouseholdSimConfig, simulate_with_profiles  # noqa: E402
from simulators.household_population import category_profiles  # noqa: E402

RESULTS = _BENCH_DIR / "results" / "models.json"


def simulated_history(households: int, categories: int, days: int, seed: int) -> PurchaseHistory:
    profiles = category_profiles(load_planogram(DEMO_PLANOGRAM))[:categories]
    config = HouseholdSimConfig(seed=seed, households=households, days=days, start=date(2024, 1, 1))
    sim = simulate_with_profiles(config, profiles)
    return make_history(
        [h.household_id for h in sim.population.households],
        [p.name for p in sim.profiles],
        {
            "household": sim.household,
            "category": sim.category,
            "day": sim.day.astype(np.int64) + sim.start_epoch_day,
            "minute": sim.minute,
            "basket": sim.basket,
            "qty": sim.qty,
            "price": sim.price,
            "promo": sim.promo,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 households instead of 20,000")
    parser.add_argument("--households", type=int, default=None)
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--models", type=Path, default=TRAINED_DIR, help="directory with the trained models")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"JSON results file (default: {RESULTS})"
    )
    args = parser.parse_args(argv)
    households = args.households or (2_000 if args.quick else 20_000)

    began = time.perf_counter()
    history = simulated_history(households, args.categories, args.days, seed=1)
    build_s = time.perf_counter() - began
    next_purchase = NextPurchaseModel(args.models / "next_purchase", threads=args.threads)
    next_basket = NextBasketModel(args.models / "next_basket", threads=args.threads)
    now = float(history.last_day + 1)

    stages: list[tuple[str, int, float]] = []

    def timed(name: str, rows: int, began: float) -> None:
        stages.append((name, rows, time.perf_counter() - began))

    total_began = time.perf_counter()
    began = time.perf_counter()
    stats = summarise(history)
    timed("summarise history", history.n_lines, began)

    began = time.perf_counter()
    n_hh, n_cat = len(history.households), len(history.categories)
    grid_h = np.repeat(np.arange(n_hh), n_cat)
    grid_c = np.tile(np.arange(n_cat), n_hh)
    x = pair_features(stats, grid_h, grid_c, now)
    timed("pair features (full grid)", x.shape[0], began)

    began = time.perf_counter()
    scores = next_purchase.score(x)
    timed(f"next purchase ({N_BINS} ONNX rows per pair)", x.shape[0], began)

    began = time.perf_counter()
    cands = candidates(stats, np.arange(n_hh))
    bx = basket_features(stats, cands, now)
    timed("basket candidates + features", cands.rows, began)

    began = time.perf_counter()
    probability = next_basket.score(bx).probability
    timed("next basket", cands.rows, began)
    total_s = time.perf_counter() - total_began
    assert np.isfinite(scores.expected_days).all()
    assert np.isfinite(probability).all()

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{n_hh} households x {n_cat} categories, {history.n_lines} history lines ({args.days} days), "
        f"onnxruntime threads {args.threads}, cores {os.cpu_count()}  (history built in {build_s:.1f} s)"
    )
    print(f"{'stage':<40}{'rows':>12}{'seconds':>10}{'rows/s':>14}")
    for name, rows, seconds in stages:
        print(f"{name:<40}{rows:>12}{seconds:>10.2f}{rows / seconds if seconds else 0:>14.0f}")
    print(f"{'full rescore':<40}{n_hh * n_cat:>12}{total_s:>10.2f}{n_hh * n_cat / total_s:>14.0f}  (pairs/s)")
    print(f"peak RSS {rss_mb:.0f} MB")

    document = {
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "cores": os.cpu_count(),
        "threads": args.threads,
        "households": n_hh,
        "categories": n_cat,
        "history_lines": history.n_lines,
        "stages": [
            {"stage": n, "rows": r, "seconds": round(s, 3), "rows_per_s": round(r / s) if s else None}
            for n, r, s in stages
        ],
        "full_rescore_seconds": round(total_s, 2),
        "pairs_per_s": round(n_hh * n_cat / total_s),
        "peak_rss_mb": round(rss_mb),
        "models": {
            "next_purchase": next_purchase.card.version,
            "next_basket": next_basket.card.version,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
