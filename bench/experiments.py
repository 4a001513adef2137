"""Benchmark (issue #14): what an A/B test of model versions costs the store, two arms against one.

    .venv/bin/python bench/experiments.py            # 20,000 households (the whole store), 2 runs per arm
    .venv/bin/python bench/experiments.py --quick    # 2,000 households
    .venv/bin/python bench/experiments.py --smoke    # 200 households, a few seconds (the test suite)

The store of `bench/models.py` (its simulator and `store_database`: N households x 30 categories, 120
days of baskets in SQLite, every household with personalisation consent) is built first and not timed.
The challenger is the shipped models under another version (`models.cards.copy_model_set`), in a
live `experiment` bundle with weights 50/50 and no rollout, loaded by the daemon's own
`edge.experiments.service.ExperimentService` (every arm's models, the planner handed to the predictions).
"One arm" is the same daemon with no experiment running (``planner.live = None``); "two arms" is the
experiment running. In the same run, runs alternate one, two, two, one, ... so drift on the shared box
falls on both:

- a full rescore of every household (`PredictionService.full_rescore`, the nightly run): wall and
  process CPU seconds, the ratio two/one; goal < 20 s for the whole store (20,000 households);
- the kiosk's shopping list (`PredictionService.shopping_list`) of a sample of households, each scored
  on demand (its cached rows deleted first, untimed) and then read from the cache: p50/p99;
- RSS of a fresh process that imported the daemon and loaded one set of models, or two (fresh
  subprocesses, alternating, median of ``--rss-probes``).

One untimed full rescore comes first (it packs the purchase history, as the first night after an
upgrade does). Prints a table and writes JSON (default bench/results/experiments.json) with every figure, the cpu
count and the load average at start. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Running this file puts bench/ first on sys.path, where bench/models.py would shadow the `models`
# package: put the repository root there instead (as bench/models.py does).
_BENCH_DIR = Path(__file__).resolve().parent
REPO = _BENCH_DIR.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(REPO))

from bench.models import simulate, store_database  # noqa: E402
from bench.stats import pct  # noqa: E402
from edge.config import Config, parse_config  # noqa: E402
from edge.customers.privacy import Pseudonymiser  # noqa: E402
from edge.experiments.planner import LiveExperiment, arm_index  # noqa: E402
from edge.experiments.service import ExperimentService  # noqa: E402
from edge.metrics import IngestMetrics  # noqa: E402
from edge.predictions.clock import StoreClock  # noqa: E402
from edge.predictions.service import PredictionService  # noqa: E402
from edge.store.apply import BatchApplier  # noqa: E402
from edge.store.writer import StoreWriter  # noqa: E402
from models.cards import copy_model_set  # noqa: E402
from models.inference import TRAINED_DIR, load_models  # noqa: E402
from sensors.planogram import load_planogram  # noqa: E402
from simulators.household_history import DEMO_PLANOGRAM  # noqa: E402

RESULTS = _BENCH_DIR / "results" / "experiments.json"
GOAL_S = 20.0  # issue #14: a full rescore of the whole store on 2 cores, with the experiment running
WHOLE_STORE = 20_000
DAY_MS = 86_400_000
EXPERIMENT = "bench-two-arms"
MODES = ("one", "two")  # one arm: no experiment running; two arms: control + challenger, 50/50

# A fresh interpreter as the daemon is before any data: the daemon imported, one or two sets of models
# loaded (bench/models.py's `models_loaded_rss_mb` with the model directories as arguments).
RSS_PROBE = """
import sys
from pathlib import Path
import edge.daemon
from models import load_models
sets = [load_models(Path(d)) for d in sys.argv[1:]]
print([line.split()[1] for line in open('/proc/self/status') if line.startswith('VmRSS')][0])
"""


@dataclass(frozen=True, slots=True)
class Sizes:
    households: int
    list_households: int  # households whose shopping list is timed, per mode and round
    cache_reads: int  # cached reads timed after each on-demand one
    repeats: int  # full rescores per mode
    rss_probes: int  # fresh processes per number of model sets


def sizes_of(args: argparse.Namespace) -> Sizes:
    if args.smoke:
        base = Sizes(200, 10, 2, 1, 1)
    elif args.quick:
        base = Sizes(2_000, 100, 3, 2, 2)
    else:
        base = Sizes(WHOLE_STORE, 200, 3, 2, 3)
    return Sizes(
        args.households or base.households,
        args.list_households or base.list_households,
        base.cache_reads,
        args.repeats or base.repeats,
        args.rss_probes or base.rss_probes,
    )


def run_order(repeats: int) -> list[str]:
    """one, two, two, one, one, two, ...: each mode goes first every other round."""
    order: list[str] = []
    for r in range(repeats):
        order += MODES if r % 2 == 0 else MODES[::-1]
    return order


def experiment_bundle(bundles: Path, now_ms: int) -> Path:
    """The live `experiment` bundle: the store's own models (control) against the shipped models under
    another version (challenger), 50/50 without a rollout, running since yesterday."""
    root = bundles / "experiment" / "versions" / "1"
    copy_model_set(TRAINED_DIR, root / "arms" / "challenger", "challenger")
    spec = {
        "id": EXPERIMENT,
        "name": "benchmark: the shipped models against themselves under another version",
        "arms": [
            {"key": "control", "weight": 0.5},
            {"key": "challenger", "weight": 0.5, "models": "arms/challenger"},
        ],
        "start_ms": now_ms - DAY_MS,
        "end_ms": now_ms + 30 * DAY_MS,
        "rollout": False,
    }
    (root / "experiment.json").write_text(json.dumps(spec), encoding="utf-8")
    current = bundles / "experiment" / "current"
    current.symlink_to(root.relative_to(current.parent))
    return root


def summary_ms(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(pct(samples, 0.5), 3),
        "p99_ms": round(pct(samples, 0.99), 3),
        "max_ms": round(max(samples), 3) if samples else float("nan"),
    }


def households_by_arm(db: Path) -> dict[str, int]:
    """Households whose cached predictions each arm scored (``none``: in no experiment)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT arm, COUNT(DISTINCT household) FROM predictions GROUP BY arm").fetchall()
    finally:
        conn.close()
    return {str(arm or "none"): int(n) for arm, n in rows}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Bench:
    """The daemon's prediction and experiment services on the benchmark's store database."""

    def __init__(self, config: Config, db: Path, now_s: float, sizes: Sizes) -> None:
        self.config = config
        self.db = db
        self.now_s = now_s
        self.sizes = sizes
        self.rescores: list[dict[str, Any]] = []
        self.lists: dict[str, dict[str, list[float]]] = {m: {"demand": [], "cache": []} for m in MODES}
        self.demand_by_arm: dict[str, list[float]] = {"control": [], "challenger": []}
        self.split: dict[str, int] = {}

    async def run(self) -> None:
        metrics = IngestMetrics()
        applier = BatchApplier(load_planogram(DEMO_PLANOGRAM), Pseudonymiser(b"bench-key-0123456789"))
        writer = StoreWriter(self.db, applier, metrics)
        await writer.open()
        writer_task = asyncio.create_task(writer.run(), name="writer")
        models = load_models(threads=self.config.models.threads)
        clock = StoreClock("UTC", now=lambda: self.now_s)
        predictions = PredictionService(self.config, self.db, writer, metrics, models, clock)
        experiments = ExperimentService(self.config, self.db, writer, predictions)
        try:
            if not await experiments.load():
                raise RuntimeError("the experiment bundle was not loaded (see the log)")
            live = experiments.planner.live
            assert live is not None
            await self.rescore_all(predictions, experiments, live)
            await self.shopping_lists(predictions, experiments, live)
        finally:
            await experiments.close()
            await predictions.close()
            await writer.stop()
            await writer_task
            await writer.close()

    @staticmethod
    def serve(experiments: ExperimentService, live: LiveExperiment, mode: str) -> None:
        experiments.planner.live = live if mode == "two" else None

    async def rescore_all(
        self, predictions: PredictionService, experiments: ExperimentService, live: LiveExperiment
    ) -> None:
        # Untimed: the first full run of a store packs its purchase history (edge.store.history_cache),
        # which every night after finds done; timing it would charge one mode for it.
        self.serve(experiments, live, "one")
        warmup = await predictions.full_rescore()
        print(f"  warm-up full rescore (packs the history, untimed): {warmup.seconds:.2f} s", file=sys.stderr)
        for mode in run_order(self.sizes.repeats):
            self.serve(experiments, live, mode)
            cpu = cpu_seconds()
            report = await predictions.full_rescore()
            used = cpu_seconds() - cpu
            stages = report.stages
            self.rescores.append(
                {
                    "arms": mode,
                    "households": report.households,
                    "rows": report.rows,
                    "seconds": round(report.seconds, 3),
                    "cpu_seconds": round(used, 3),
                    "stage_seconds": None
                    if stages is None
                    else {
                        "read_history": round(stages.read_s, 3),
                        "score": round(stages.score_s, 3),
                        "write": round(stages.write_s, 3),
                    },
                }
            )
            if mode == "two":
                self.split = households_by_arm(self.db)
            print(f"  full rescore, {mode} arm(s): {report.seconds:.2f} s", file=sys.stderr)

    async def shopping_lists(
        self, predictions: PredictionService, experiments: ExperimentService, live: LiveExperiment
    ) -> None:
        everyone = sorted(self.scored_households())
        stride = max(1, len(everyone) // self.sizes.list_households)
        sample = everyone[::stride][: self.sizes.list_households]
        arm_of = {h: arm_index(live, h) for h in sample}
        # The next-basket version each arm's lists must show (None: the store's own models).
        versions = [(m or predictions.models).next_basket.card.version for m in live.arm_models]
        for r in range(self.sizes.repeats):
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                self.serve(experiments, live, mode)
                for household in sample:
                    await predictions.forget(household)  # not timed: the next read scores it on demand
                    began = time.perf_counter()
                    view = await predictions.shopping_list(household)
                    elapsed = (time.perf_counter() - began) * 1000
                    if not view.personalised:
                        raise RuntimeError(f"{household}: a generic list, expected a personalised one")
                    self.lists[mode]["demand"].append(elapsed)
                    index = arm_of[household]
                    if mode == "two" and index is not None:
                        self.demand_by_arm[live.spec.arms[index].key].append(elapsed)
                        if view.model_version != versions[index]:
                            raise RuntimeError(f"{household}: served {view.model_version}, not its arm's")
                    for _ in range(self.sizes.cache_reads):
                        began = time.perf_counter()
                        await predictions.shopping_list(household)
                        self.lists[mode]["cache"].append((time.perf_counter() - began) * 1000)

    def scored_households(self) -> list[str]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return [str(h) for (h,) in conn.execute("SELECT DISTINCT household FROM predictions")]
        finally:
            conn.close()


def rss_probe_mb(directories: list[Path]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, *map(str, directories)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return int(out.stdout.strip()) / 1024


def rss_benchmark(challenger: Path, probes: int) -> dict[str, Any]:
    sets = {"one": [TRAINED_DIR], "two": [TRAINED_DIR, challenger]}
    samples: dict[str, list[float]] = {m: [] for m in MODES}
    for mode in run_order(probes):
        samples[mode].append(rss_probe_mb(sets[mode]))
    one, two = (statistics.median(samples[m]) for m in MODES)
    return {
        "one_mb": round(one, 1),
        "two_mb": round(two, 1),
        "difference_mb": round(two - one, 1),
        "samples_mb": {m: [round(s, 1) for s in samples[m]] for m in MODES},
    }


def rescore_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_mode = {m: [r for r in runs if r["arms"] == m] for m in MODES}
    seconds = {m: statistics.median(r["seconds"] for r in by_mode[m]) for m in MODES}
    cpu = {m: statistics.median(r["cpu_seconds"] for r in by_mode[m]) for m in MODES}
    households = runs[0]["households"]
    whole = households >= WHOLE_STORE
    return {
        "households": households,
        "median_seconds": {m: round(seconds[m], 2) for m in MODES},
        "median_cpu_seconds": {m: round(cpu[m], 2) for m in MODES},
        "ratio_two_over_one": round(seconds["two"] / seconds["one"], 3),
        "cpu_ratio_two_over_one": round(cpu["two"] / cpu["one"], 3),
        "goal_seconds": GOAL_S,
        # Only a run of the whole store says anything about the goal.
        "goal_met_with_two_arms": (seconds["two"] < GOAL_S) if whole else None,
        "worst_two_arm_seconds": max(r["seconds"] for r in by_mode["two"]),
    }


def print_table(
    sizes: Sizes, rescore: dict[str, Any], lists: dict[str, Any], rss: dict[str, Any], split: dict[str, int]
) -> None:
    def row(name: str, one: float, two: float, tail: str) -> None:
        print(f"{name:<44}{one:>10.2f}{two:>10.2f}{tail:>12}")

    print(f"{'':<44}{'one arm':>10}{'two arms':>10}{'two/one':>12}")
    secs, cpu = rescore["median_seconds"], rescore["median_cpu_seconds"]
    row(f"full rescore, {rescore['households']} households (s)", secs["one"], secs["two"],
        f"{rescore['ratio_two_over_one']:.2f}x")  # fmt: skip
    row("  process CPU (s)", cpu["one"], cpu["two"], f"{rescore['cpu_ratio_two_over_one']:.2f}x")
    for path, label in (("demand", "scored on demand"), ("cache", "from the cache")):
        for q in ("p50_ms", "p99_ms"):
            one, two = lists[path]["one"][q], lists[path]["two"][q]
            row(f"shopping list, {label}, {q[:3]} (ms)", one, two, f"{two / one:.2f}x")
    row("RSS, daemon + models loaded (MB)", rss["one_mb"], rss["two_mb"], f"+{rss['difference_mb']:.1f} MB")
    goal = rescore["goal_met_with_two_arms"]
    verdict = (
        f"n/a ({rescore['households']} households is not the whole store)"
        if goal is None
        else ("met" if goal else "NOT met")
    )
    print(
        f"goal: full rescore of the whole store < {GOAL_S:.0f} s with two arms: {verdict} "
        f"(median {secs['two']:.2f} s, worst {rescore['worst_two_arm_seconds']:.2f} s; "
        f"{sizes.repeats} run(s) per mode)"
    )
    print(f"households per arm after a two-arm rescore: {split}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="example: .venv/bin/python bench/experiments.py --quick --out /tmp/experiments.json",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="2,000 households instead of 20,000")
    size.add_argument("--smoke", action="store_true", help="200 households, one run per mode (seconds)")
    parser.add_argument("--households", type=int, default=None, help="override the number of households")
    parser.add_argument("--repeats", type=int, default=None, help="full rescores per mode (default 2)")
    parser.add_argument("--list-households", type=int, default=None, help="households whose list is timed")
    parser.add_argument(
        "--rss-probes", type=int, default=None, help="fresh processes per number of model sets"
    )
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="onnxruntime threads (default: the daemon's [models] threads)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results file (default: {RESULTS})")
    args = parser.parse_args(argv)
    sizes = sizes_of(args)

    load_at_start = os.getloadavg()
    began = time.perf_counter()
    sim = simulate(sizes.households, args.categories, args.days, seed=1)
    with tempfile.TemporaryDirectory(prefix="storeedge-bench-experiments-") as scratch:
        db = Path(scratch) / "store.db"
        lines = store_database(sim, db)
        now_s = (sim.start_epoch_day + sim.config.days) * 86_400.0 + 3 * 3600  # 03:00 after the last day
        del sim
        bundles = Path(scratch) / "bundles"
        bundle = experiment_bundle(bundles, int(now_s * 1000))
        config = parse_config(
            {
                "store": {"planogram": str(DEMO_PLANOGRAM), "timezone": "UTC"},
                "database": {"path": str(db)},
                "models": {} if args.threads is None else {"threads": args.threads},
                "sync": {"bundle_dir": str(bundles)},
            }
        )
        build_s = time.perf_counter() - began
        bench = Bench(config, db, now_s, sizes)
        asyncio.run(bench.run())
        rss = rss_benchmark(bundle / "arms" / "challenger", sizes.rss_probes)
    total_s = time.perf_counter() - began

    rescore = rescore_summary(bench.rescores)
    lists = {path: {m: summary_ms(bench.lists[m][path]) for m in MODES} for path in ("demand", "cache")}
    lists["demand_two_arms_by_arm"] = {arm: summary_ms(s) for arm, s in bench.demand_by_arm.items()}
    print(
        f"{sizes.households} households x {args.categories} categories, {lines} purchase lines in SQLite; "
        f"onnxruntime threads {config.models.threads}, batch {config.models.batch_households}; cores "
        f"{os.cpu_count()}, load average at start {load_at_start[0]:.2f} (store built in {build_s:.1f} s)"
    )
    print_table(sizes, rescore, lists, rss, bench.split)
    print(f"run took {total_s:.0f} s")

    document = {
        "quick": args.quick,
        "smoke": args.smoke,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_at_start],  # other work on the box
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "households": sizes.households,
        "categories": args.categories,
        "history_lines": lines,
        "threads": config.models.threads,
        "batch_households": config.models.batch_households,
        "experiment": {"id": EXPERIMENT, "weights": [0.5, 0.5], "households_by_arm": bench.split},
        "run_order": run_order(sizes.repeats),
        "full_rescore": {**rescore, "runs": bench.rescores},
        "shopping_list": {
            "households": sizes.list_households,
            "cache_reads_per_household": sizes.cache_reads,
            **lists,
        },
        "rss": rss,
        "build_seconds": round(build_s, 1),
        "total_seconds": round(total_s, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
