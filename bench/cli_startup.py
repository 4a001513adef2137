"""Benchmark: how long `storeedge` commands take end to end, against a bare interpreter in the same run.

    python bench/cli_startup.py            # 20 runs of each command (about a minute)
    python bench/cli_startup.py --quick    # 3 runs of each, a few seconds

Each command runs as its own process, as store IT runs it, and the wall time from spawn to exit is
measured: `python -c pass` (the baseline: a bare interpreter start), `storeedge --help`,
`storeedge config check storeedge.example.toml` and `storeedge route` for a 15-item list on the demo
store (15 stops, the map and the directions). The commands take turns (one run of each, then the next
round), so a burst of load elsewhere on the machine lands on all of them alike; one unmeasured round
comes first to warm the file cache and to write the bytecode caches every installed program has (into
a temporary PYTHONPYCACHEPREFIX, so the tree is left alone, even when PYTHONDONTWRITEBYTECODE is set
around the benchmark: compiling every module on every start is not what users see). The table gives the median and p90 in seconds and the median's
ratio to the baseline's median; the CPU time (user + system) of the same runs is shown beside it, as
it says less about what else the machine was doing. Issue #18's goals were measured where a bare start took 0.08 s:
`--help` and `config check` under 0.3 s (3.75x), `route` under 0.6 s (7.5x); both are shown.
JSON goes to bench/results/cli_startup.json, with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stats import pct  # noqa: E402

RESULTS = REPO / "bench" / "results" / "cli_startup.json"
BASELINE_S = 0.08  # the bare interpreter start on the machine where issue #18's goals were set
ROUTE_ITEMS = (
    "milk,bread,ice-cream,eggs,pasta,coffee,cheese,fruit,rice,tea,frozen-pizza,biscuits,water,salad,detergent"
)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argv: tuple[str, ...]
    goal_s: float | None  # issue #18's goal, measured where BASELINE_S was the bare start


@dataclass(slots=True)
class Timing:
    name: str
    argv: list[str]
    runs: int
    median_s: float
    p90_s: float
    min_s: float
    ratio_to_baseline: float
    cpu_median_s: float
    cpu_ratio_to_baseline: float
    goal_s: float | None
    goal_ratio: float | None


@dataclass(slots=True)
class Run:
    runs: int
    python: str
    machine: str
    cpus: int | None
    load_before: list[float]
    route_stops: int
    load_after: list[float] = field(default_factory=list)
    commands: list[Timing] = field(default_factory=list)


def storeedge_argv() -> list[str]:
    """The installed `storeedge` script beside this interpreter (what users run), else `-m edge`."""
    script = Path(sys.executable).parent / "storeedge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "edge"]


def commands() -> list[Command]:
    storeedge = storeedge_argv()
    return [
        Command("python -c pass", (sys.executable, "-c", "pass"), None),
        Command("storeedge --help", (*storeedge, "--help"), 0.3),
        Command("storeedge config check", (*storeedge, "config", "check", "storeedge.example.toml"), 0.3),
        Command("storeedge route (15 stops)", (*storeedge, "route", "--items", ROUTE_ITEMS), 0.6),
    ]


def route_stops(storeedge: list[str]) -> int:
    """How many stops the benchmarked route has (the same list, as JSON): the issue's case is 15."""
    argv = [*storeedge, "route", "--items", ROUTE_ITEMS, "--json"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
    return len(json.loads(result.stdout)["stops"])


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(command: Command, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command`."""
    cpu, started = _children_cpu_s(), time.perf_counter()
    result = subprocess.run(command.argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - started, _children_cpu_s() - cpu
    if result.returncode != 0:
        raise SystemExit(f"{command.name} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed, cpu


def measure(cmds: list[Command], runs: int) -> dict[str, list[tuple[float, float]]]:
    samples: dict[str, list[tuple[float, float]]] = {command.name: [] for command in cmds}
    with tempfile.TemporaryDirectory(prefix="storeedge-pycache-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for command in cmds:  # warm the file and bytecode caches; not counted
            time_once(command, env)
        for _ in range(runs):
            for command in cmds:
                samples[command.name].append(time_once(command, env))
    return samples


def summarise(cmds: list[Command], samples: dict[str, list[tuple[float, float]]]) -> list[Timing]:
    wall = {name: [w for w, _ in runs] for name, runs in samples.items()}
    cpu = {name: [c for _, c in runs] for name, runs in samples.items()}
    baseline, cpu_baseline = statistics.median(wall[cmds[0].name]), statistics.median(cpu[cmds[0].name])
    return [
        Timing(
            name=command.name,
            argv=[Path(command.argv[0]).name, *command.argv[1:]],
            runs=len(wall[command.name]),
            median_s=round(statistics.median(wall[command.name]), 4),
            p90_s=round(pct(wall[command.name], 0.9), 4),
            min_s=round(min(wall[command.name]), 4),
            ratio_to_baseline=round(statistics.median(wall[command.name]) / baseline, 2),
            cpu_median_s=round(statistics.median(cpu[command.name]), 4),
            cpu_ratio_to_baseline=round(statistics.median(cpu[command.name]) / cpu_baseline, 2),
            goal_s=command.goal_s,
            goal_ratio=None if command.goal_s is None else round(command.goal_s / BASELINE_S, 2),
        )
        for command in cmds
    ]


def print_table(timings: list[Timing]) -> None:
    header = (
        f"{'command':<28}{'median s':>10}{'p90 s':>8}{'ratio':>8}{'cpu s':>8}{'cpu ratio':>11}"
        f"{'goal s':>8}{'goal ratio':>12}{'met':>5}"
    )
    print(
        "CLI start-up: process wall time (ratio = median / median of `python -c pass`; cpu = user + system)"
    )
    print(header)
    print("-" * len(header))
    for t in timings:
        goal = "-" if t.goal_s is None else f"{t.goal_s:.2f}"
        goal_ratio = "-" if t.goal_ratio is None else f"{t.goal_ratio:.2f}x"
        met = "-"
        if t.goal_s is not None and t.goal_ratio is not None:
            met = "yes" if t.median_s < t.goal_s and t.ratio_to_baseline < t.goal_ratio else "no"
        print(
            f"{t.name:<28}{t.median_s:>10.3f}{t.p90_s:>8.3f}{t.ratio_to_baseline:>7.2f}x{t.cpu_median_s:>8.3f}"
            f"{t.cpu_ratio_to_baseline:>10.2f}x{goal:>8}{goal_ratio:>12}{met:>5}"
        )
    print(
        f"\n'met': wall median under the goal in seconds and as a ratio (the goals assume a {BASELINE_S} s bare start)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 runs of each command instead of 20")
    parser.add_argument("--runs", type=int, help="runs of each command (default 20, --quick 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results file (default: {RESULTS})")
    args = parser.parse_args(argv)
    runs: int = args.runs or (3 if args.quick else 20)
    if runs < 1:
        parser.error("--runs: must be at least 1")
    run = Run(
        runs=runs,
        python=platform.python_version(),
        machine=f"{platform.machine()}, {platform.system()}",
        cpus=os.cpu_count(),
        load_before=[round(load, 2) for load in os.getloadavg()],
        route_stops=route_stops(storeedge_argv()),
    )
    cmds = commands()
    run.commands = summarise(cmds, measure(cmds, runs))
    run.load_after = [round(load, 2) for load in os.getloadavg()]
    print_table(run.commands)
    print(f"route stops: {run.route_stops}; load average before {run.load_before}, after {run.load_after}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(run), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
