"""Benchmark: a full nightly rescore of a store's households with the shipped ONNX models.

    python bench/models.py            # 20,000 households x 30 categories (the issue's size)
    python bench/models.py --quick    # 2,000 households, a few seconds

A simulated history (the household simulator, the demo store's first 30 categories, 120 days) is
built first and not timed. Then, timed stage by stage, what the daemon's nightly batch does:
aggregate the history (`summarise`), build pair features for every household x category (the full
grid, bought or not), score next purchase (8 hazard rows per pair through onnxruntime), build the
next-basket candidates and score them. onnxruntime gets ``--threads`` intra-op threads (the store box
has 2 cores). Prints a table and writes JSON to bench/results/models.json. Not a test: nothing here
asserts a speed.

Then the daemon's side (`serving` in the JSON): the same households written into a store database
(purchases and their lines, untimed), every household given personalisation consent, and a full
rescore through `edge.predictions.service.PredictionService.full_rescore` (the daemon's own code path: reads on
a read-only connection, scoring in the executor, writes through the single writer in steps of
``[models] batch_households``, onnxruntime threads ``--serving-threads``, by default the daemon's
``[models] threads`` default), timed end to end and compared with the models-only rescore of the same
run; plus the RSS of a fresh process that has imported the daemon and loaded the three models (what
serving costs before any data).

Last (`http` in the JSON; ``--skip-http`` leaves it out): a single household's shopping list through
real HTTP, p50/p99, personalised and generic, next to ``/healthz`` in the same run, by running
`bench/customers.py` (its own daemon subprocess and mosquitto; with ``--quick`` its quick size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

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
from simulators.household_history import (  # noqa: E402
    DEMO_PLANOGRAM,
    HouseholdSimConfig,
    HouseholdSimulation,
    simulate_with_profiles,
)
from simulators.household_population import category_profiles  # noqa: E402

RESULTS = _BENCH_DIR / "results" / "models.json"


def simulate(households: int, categories: int, days: int, seed: int) -> HouseholdSimulation:
    profiles = category_profiles(load_planogram(DEMO_PLANOGRAM))[:categories]
    config = HouseholdSimConfig(seed=seed, households=households, days=days, start=date(2024, 1, 1))
    return simulate_with_profiles(config, profiles)


def history_of(sim: HouseholdSimulation) -> PurchaseHistory:
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
    parser.add_argument(
        "--serving-threads",
        type=int,
        default=None,
        help="onnxruntime threads of the daemon-side rescore (default: the daemon's [models] threads default)",
    )
    parser.add_argument(
        "--skip-http",
        action="store_true",
        help="skip the shopping-list latency through HTTP (bench/customers.py on a daemon subprocess)",
    )
    parser.add_argument("--models", type=Path, default=TRAINED_DIR, help="directory with the trained models")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"JSON results file (default: {RESULTS})"
    )
    args = parser.parse_args(argv)
    households = args.households or (2_000 if args.quick else 20_000)

    load_at_start = os.getloadavg()
    began = time.perf_counter()
    sim = simulate(households, args.categories, args.days, seed=1)
    history = history_of(sim)
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
    del x, bx, scores, probability, stats
    serving = serving_benchmark(sim, args.serving_threads)
    http = None if args.skip_http else http_benchmark(quick=args.quick)
    print(
        f"{n_hh} households x {n_cat} categories, {history.n_lines} history lines ({args.days} days), "
        f"onnxruntime threads {args.threads}, cores {os.cpu_count()}, load average at start "
        f"{load_at_start[0]:.2f}  (history built in {build_s:.1f} s)"
    )
    print(f"{'stage':<40}{'rows':>12}{'seconds':>10}{'rows/s':>14}")
    for name, rows, seconds in stages:
        print(f"{name:<40}{rows:>12}{seconds:>10.2f}{rows / seconds if seconds else 0:>14.0f}")
    print(f"{'full rescore':<40}{n_hh * n_cat:>12}{total_s:>10.2f}{n_hh * n_cat / total_s:>14.0f}  (pairs/s)")
    print(f"peak RSS {rss_mb:.0f} MB")
    print()
    print(
        f"daemon side: {serving['households']} consenting households, {serving['history_lines']} lines in SQLite"
    )
    print(f"{'full rescore through PredictionService':<40}{serving['rows']:>12}{serving['full_rescore_seconds']:>10.2f}"
          f"{serving['rows'] / serving['full_rescore_seconds']:>14.0f}  (cached rows/s)")  # fmt: skip
    print(
        f"  onnxruntime threads {serving['threads']}; {serving['full_rescore_seconds'] / total_s:.2f}x the "
        f"models-only rescore above; stages (they overlap): {serving['stage_seconds']}"
    )
    print(
        f"RSS of a process with the daemon imported and the models loaded: {serving['models_loaded_rss_mb']} MB"
    )
    if http is not None:
        print()
        print(
            f"through HTTP (bench/customers.py: a daemon subprocess, {http['households']} seeded households, "
            f"{http['consenting']} consenting; one request at a time)"
        )
        print(f"{'request':<40}{'p50 ms':>10}{'p99 ms':>10}")
        for name in HTTP_REQUESTS:
            serial = http["results"][name]["serial"]
            print(f"{name:<40}{serial['p50_ms']:>10.1f}{serial['p99_ms']:>10.1f}")

    document = {
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_at_start],  # other work on the box
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
        "serving": serving,
        "http": None
        if http is None
        else {
            "households": http["households"],
            "consenting": http["consenting"],
            **{name: http["results"][name]["serial"] for name in HTTP_REQUESTS},
        },
        "models": {
            "next_purchase": next_purchase.card.version,
            "next_basket": next_basket.card.version,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def store_database(sim: HouseholdSimulation, path: Path) -> int:
    """The simulation's baskets as the daemon stores them (ledger row, purchase, lines); returns lines."""
    from sensors.planogram import load_planogram as planogram_of  # noqa: PLC0415

    conn = sqlite3.connect(path, isolation_level=None)
    from edge.store.migrations import migrate  # noqa: PLC0415

    migrate(conn)
    order = np.lexsort((sim.basket, sim.second, sim.minute, sim.day))
    bounds = np.flatnonzero(np.diff(sim.basket[order])) + 1
    starts = np.concatenate(([0], bounds))
    first = order[starts]
    ts = (
        (sim.start_epoch_day + sim.day[first].astype(np.int64)) * 86_400
        + sim.minute[first].astype(np.int64) * 60
    ) * 1000
    names = [h.household_id for h in sim.population.households]
    sku_of = [p.skus for p in sim.profiles]
    categories = planogram_of(DEMO_PLANOGRAM).categories_by_sku
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO readings (id, device, kind, seq, ts_ms, received_ms, value, detail)"
        " VALUES (?, 'bench', 'pos_transaction', ?, ?, ?, 0, NULL)",
        ((i + 1, i, int(ts[i]), int(ts[i])) for i in range(first.size)),
    )
    conn.executemany(
        "INSERT INTO purchases (id, reading_id, lane, basket_id, household, ts_ms, total, lines)"
        " VALUES (?, ?, '1', ?, ?, ?, 0, 0)",
        ((i + 1, i + 1, str(int(sim.basket[first[i]])), names[int(sim.household[first[i]])], int(ts[i]))
         for i in range(first.size)),
    )  # fmt: skip
    basket_no = np.repeat(np.arange(first.size), np.diff(np.append(starts, order.size)))
    conn.executemany(
        "INSERT INTO purchase_items (purchase_id, line, sku, category, qty, unit_price) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (int(basket_no[k]) + 1, k, sku, categories.get(sku), float(sim.qty[j]), float(sim.price[j]))
            for k, j in enumerate(order)
            for sku in (sku_of[int(sim.category[j])][int(sim.sku[j])],)
        ),
    )
    conn.executemany(
        "INSERT INTO consents (household, purpose, granted, updated_ms) VALUES (?, 'personalisation', 1, 0)",
        ((h,) for h in names),
    )
    conn.execute("COMMIT")
    conn.close()
    return int(order.size)


HTTP_REQUESTS = ("shopping list, personalised", "shopping list, generic", "healthz (baseline)")


def http_benchmark(*, quick: bool) -> dict[str, Any]:
    """The shopping list through real HTTP: `bench/customers.py` in a subprocess (its own daemon and
    mosquitto; ``--quick``: 300 households), its JSON read back."""
    with tempfile.TemporaryDirectory(prefix="storeedge-bench-http-") as scratch:
        out = Path(scratch) / "customers.json"
        command = [sys.executable, str(_BENCH_DIR / "customers.py"), "--out", str(out)]
        subprocess.run([*command, "--quick"] if quick else command, check=True, cwd=_BENCH_DIR.parent)
        document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return document


def models_loaded_rss_mb() -> int:
    """VmRSS of a fresh interpreter that imported the daemon and loaded the shipped models."""
    code = (
        "import edge.daemon\nfrom models import load_models\nm = load_models()\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=_BENCH_DIR.parent
    )
    return round(int(out.stdout.strip()) / 1024)


def serving_benchmark(sim: HouseholdSimulation, threads: int | None) -> dict[str, object]:
    from edge.config import parse_config  # noqa: PLC0415
    from edge.customers.privacy import Pseudonymiser  # noqa: PLC0415
    from edge.metrics import IngestMetrics  # noqa: PLC0415
    from edge.predictions.service import PredictionService, StoreClock  # noqa: PLC0415
    from edge.store.apply import BatchApplier  # noqa: PLC0415 - the daemon only for this part
    from edge.store.writer import StoreWriter  # noqa: PLC0415
    from models.inference import load_models  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="storeedge-bench-") as scratch:
        db = Path(scratch) / "store.db"
        lines = store_database(sim, db)
        end_s = (sim.start_epoch_day + sim.config.days) * 86_400.0 + 3 * 3600  # 03:00 after the last day
        config = parse_config(
            {
                "store": {"planogram": str(DEMO_PLANOGRAM), "timezone": "UTC"},
                "database": {"path": str(db)},
                "models": {} if threads is None else {"threads": threads},
            }
        )
        models = load_models(threads=config.models.threads)

        async def run() -> tuple[int, int, float, dict[str, float]]:
            metrics = IngestMetrics()
            applier = BatchApplier(load_planogram(DEMO_PLANOGRAM), Pseudonymiser(b"bench-key-0123456789"))
            writer = StoreWriter(db, applier, metrics)
            await writer.open()
            task = asyncio.create_task(writer.run())
            service = PredictionService(
                config, db, writer, metrics, models, StoreClock("UTC", now=lambda: end_s)
            )
            report = await service.full_rescore()
            await service.close()
            await writer.stop()
            await task
            await writer.close()
            stages = report.stages
            split = {} if stages is None else {
                "read_history": round(stages.read_s, 2),
                "score": round(stages.score_s, 2),
                "write": round(stages.write_s, 2),
            }  # fmt: skip
            return report.households, report.rows, report.seconds, split

        households, rows, seconds, split = asyncio.run(run())
    return {
        "households": households,
        "history_lines": lines,
        "rows": rows,
        "batch_households": config.models.batch_households,
        "threads": config.models.threads,
        "full_rescore_seconds": round(seconds, 2),
        "stage_seconds": split,
        "models_loaded_rss_mb": models_loaded_rss_mb(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    raise SystemExit(main())
