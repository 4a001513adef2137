"""Benchmark: storeedge's route planner against classic baselines on the three shipped layouts.

    python bench/routing.py            # full run (several minutes on the 2-core store box)
    python bench/routing.py --quick    # a small subset, under a minute
    python -m bench.routing --quick    # the same, as a module
    python bench/routing.py --section validation   # one section: baselines, validation, exact, places

For each layout and list size (5, 10, 15, 25, 40, 60 random categories, fixed seed) it plans the
route with storeedge, then orders the *same stops* with the baselines, and prints two tables (metres,
milliseconds). JSON goes to bench/results/routing.json.

How the comparison is kept fair:
* Every method gets the same stop nodes, the same start (the first entrance), the same free end (the
  nearest checkout from the last stop) and the same shortest-path metres between stops, with one-way
  edges making them asymmetric. The stops are the places storeedge chose for categories sold in
  several places; only storeedge chooses placements, the others order fixed stops.
* The baselines know nothing about ambient -> chilled -> frozen, so the main storeedge column is
  planned with precedence off; "+prec" shows what the constraint costs.
* networkx's TSP approximations solve closed tours. A dummy node closes the path: the dummy -> start
  arc is free, stop -> dummy costs that stop's walk to the nearest checkout, and every other arc
  into the start or out of the dummy is prohibitively long. Simulated annealing runs on the directed
  (asymmetric) graph; Christofides needs an undirected metric, so it optimises the average of the
  two directions and its order is then scored with the real asymmetric costs.
* "S-shape" is the order staff walk: aisles (or wall/counter places) from west to east, going up one
  aisle and down the next, stops in walking order within each; between stops it still walks
  shortest paths.
* OR-Tools (if installed) uses guided local search with a time limit, with the same dummy-end trick.
* storeedge is timed with the layout's shortest-path cache warm for the list's stops, as in a running
  daemon; baselines are timed on the ready-made distance matrix.

Further sections (issue #18): layout validation time against layout size (bench/routing_scale.py),
exact solving time at 15 and 16 stops, new solver against the one before in the same run
(bench/routing_exact.py), and the choice of places for categories sold in several places against the
exact solver and against OR-Tools choosing places itself (bench/routing_places.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

# This file is called routing.py, so running it as a script would put bench/ first on sys.path and
# make `import routing` import this file. Put the repository root there instead.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from bench.routing_exact import print_exact, run_exact  # noqa: E402
from bench.routing_places import print_places, run_long, run_seventeen  # noqa: E402
from bench.routing_scale import print_validation, run_validation  # noqa: E402
from routing import Layout, NodeKind, load_bundled_layout, load_demo_layout, plan_route  # noqa: E402
from routing.graph import cost_graph  # noqa: E402
from routing.ordering import lkh_available  # noqa: E402

SIZES = (5, 10, 15, 25, 40, 60)
QUICK_SIZES = (5, 10, 15)
SEED = 20240601
RESULTS = _BENCH_DIR / "results" / "routing.json"
SECTIONS = ("baselines", "validation", "exact", "places")
METHODS = (
    "storeedge",
    "storeedge+prec",
    "storeedge-local",
    "christofides",
    "annealing",
    "s-shape",
    "or-tools",
)


@dataclass
class Instance:
    """One ordering problem: a start, stops and the metres between them (asymmetric)."""

    layout: Layout
    start: str
    stops: list[str]
    cost: np.ndarray  # (1 + n) x (1 + n) over [start, *stops]
    end_cost: np.ndarray  # 1 + n: walk to the nearest checkout from each

    def path_cost(self, order: Sequence[int]) -> float:
        """Metres of start -> stops[order...] -> nearest checkout; `order` indexes `stops`."""
        walk = [0, *(i + 1 for i in order)]
        return float(sum(self.cost[a, b] for a, b in itertools.pairwise(walk)) + self.end_cost[walk[-1]])


@dataclass
class Result:
    layout: str
    items: int
    stops: int
    method: str
    metres: float | None
    ms: float | None
    note: str = ""


@dataclass
class Run:
    quick: bool
    python: str
    machine: str
    lkh: bool
    ortools: bool
    results: list[Result] = field(default_factory=list)


def make_instance(layout: Layout, stop_nodes: Sequence[str]) -> Instance:
    graph = cost_graph(layout)
    start = layout.nodes_of_kind(NodeKind.ENTRANCE)[0].id
    stops = list(dict.fromkeys(node for node in stop_nodes if node != start))
    places = [start, *stops]
    checkouts = [node.id for node in layout.nodes_of_kind(NodeKind.CHECKOUT)]
    return Instance(
        layout=layout,
        start=start,
        stops=stops,
        cost=graph.cost_matrix(places, places),
        end_cost=graph.cost_matrix(places, checkouts).min(axis=1),
    )


# -- baselines ----------------------------------------------------------------------------------


def _dummy_closed_weights(instance: Instance) -> tuple[np.ndarray, float]:
    """Arc weights over [start, *stops, dummy] whose cheapest tour is the cheapest open path."""
    n = len(instance.stops)
    big = float(instance.cost[np.isfinite(instance.cost)].sum() + instance.end_cost.sum() + 1.0)
    weights = np.full((n + 2, n + 2), big)
    weights[: n + 1, : n + 1] = np.where(np.isfinite(instance.cost), instance.cost, big)
    weights[1 : n + 1, 0] = big  # nobody walks back to the start
    weights[: n + 1, n + 1] = instance.end_cost  # finishing = walking to the nearest checkout
    weights[n + 1, 0] = 0.0  # the dummy closes the tour for free
    np.fill_diagonal(weights, 0.0)
    return weights, big


def _order_from_cycle(cycle: Sequence[int], n: int) -> list[int]:
    """Read a tour over [start=0, stops 1..n, dummy=n+1] as the stop order after the start."""
    nodes = list(cycle[:-1]) if cycle[0] == cycle[-1] else list(cycle)
    at = nodes.index(0)
    nodes = nodes[at:] + nodes[:at]
    if nodes[1] == n + 1:  # the tour was read the other way round
        nodes = [0, *reversed(nodes[1:])]
    return [node - 1 for node in nodes if 1 <= node <= n]


def christofides_order(instance: Instance, seed: int) -> list[int]:
    del seed
    weights, _ = _dummy_closed_weights(instance)
    symmetric = (weights + weights.T) / 2
    n = len(instance.stops)
    graph = nx.Graph()
    for a, b in itertools.combinations(range(n + 2), 2):
        graph.add_edge(a, b, weight=float(symmetric[a, b]))
    order = _order_from_cycle(nx.approximation.christofides(graph, weight="weight"), n)
    # Symmetric solvers cannot tell the two directions apart: take the better one for real.
    return min(order, order[::-1], key=instance.path_cost)


def annealing_order(instance: Instance, seed: int) -> list[int]:
    weights, _ = _dummy_closed_weights(instance)
    n = len(instance.stops)
    graph = nx.DiGraph()
    for a, b in itertools.permutations(range(n + 2), 2):
        graph.add_edge(a, b, weight=float(weights[a, b]))
    cycle = nx.approximation.simulated_annealing_tsp(
        graph, "greedy", weight="weight", source=n + 1, seed=seed
    )
    return _order_from_cycle(cycle, n)


def s_shape_order(instance: Instance, seed: int) -> list[int]:
    """Aisles west to east, alternately walked up and down; other places by their position."""
    del seed
    layout = instance.layout
    groups: dict[str, list[int]] = {}
    for index, node_id in enumerate(instance.stops):
        groups.setdefault(layout.place_name(node_id), []).append(index)

    def x_of(group: list[int]) -> float:
        return sum(layout.node(instance.stops[i]).x for i in group) / len(group)

    def y_of(index: int) -> float:
        return layout.node(instance.stops[index]).y

    order: list[int] = []
    for turn, group in enumerate(
        sorted(groups.values(), key=lambda g: (round(x_of(g), 1), min(map(y_of, g))))
    ):
        order.extend(sorted(group, key=y_of, reverse=turn % 2 == 1))
    return order


def ortools_order(instance: Instance, seed: int, time_limit_ms: int) -> list[int]:
    del seed
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2  # noqa: PLC0415 - optional

    weights, _ = _dummy_closed_weights(instance)
    n = len(instance.stops)
    scaled = np.rint(weights * 100).astype(np.int64).tolist()  # centimetres: OR-Tools wants integers
    manager = pywrapcp.RoutingIndexManager(n + 2, 1, [0], [n + 1])
    model = pywrapcp.RoutingModel(manager)

    def arc_cost(from_index: int, to_index: int) -> int:
        return int(scaled[manager.IndexToNode(from_index)][manager.IndexToNode(to_index)])

    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitCallback(arc_cost))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(time_limit_ms)
    solution = model.SolveWithParameters(params)
    order = []
    index = model.Start(0)
    while not model.IsEnd(index):
        node = manager.IndexToNode(index)
        if 1 <= node <= n:
            order.append(node - 1)
        index = solution.Value(model.NextVar(index))
    return order


def ortools_installed() -> bool:
    try:
        import ortools  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


# -- running ------------------------------------------------------------------------------------


T = TypeVar("T")


def timed(function: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = function()
    return value, (time.perf_counter() - started) * 1000


def bench_instance(name: str, layout: Layout, items: list[str], *, ortools_ms: int) -> list[Result]:
    results: list[Result] = []
    # Warm the layout's shortest-path cache for these stops first, as a running daemon has it: the
    # timings then measure planning, not the one-off Dijkstra runs from nodes never started from.
    plan_route(layout, items, precedence=False)
    route, ms = timed(lambda: plan_route(layout, items, precedence=False))
    instance = make_instance(layout, [stop.node for stop in route.stops])
    size = len(instance.stops)
    note = "optimal" if route.optimal else route.solver
    results.append(Result(name, len(items), size, "storeedge", route.distance_m, ms, note))
    prec, ms = timed(lambda: plan_route(layout, items))
    note = "optimal" if prec.optimal else prec.solver
    results.append(Result(name, len(items), size, "storeedge+prec", prec.distance_m, ms, note))
    local, ms = timed(lambda: plan_route(layout, items, precedence=False, strategy="local"))
    results.append(Result(name, len(items), size, "storeedge-local", local.distance_m, ms, "pure Python"))
    baselines: list[tuple[str, Callable[[Instance, int], list[int]]]] = [
        ("christofides", christofides_order),
        ("annealing", annealing_order),
        ("s-shape", s_shape_order),
    ]
    if ortools_installed():
        baselines.append(("or-tools", lambda inst, seed: ortools_order(inst, seed, ortools_ms)))
    for method, solver in baselines:
        if size < 2 and method in {"christofides", "annealing"}:
            results.append(Result(name, len(items), size, method, None, None, "too few stops"))
            continue
        order, ms = timed(lambda solver=solver: solver(instance, SEED))  # type: ignore[misc]
        assert sorted(order) == list(range(size)), f"{method} lost a stop"
        note = f"{ortools_ms} ms limit" if method == "or-tools" else ""
        results.append(Result(name, len(items), size, method, instance.path_cost(order), ms, note))
    return results


def print_tables(results: list[Result]) -> None:
    rows: dict[tuple[str, int], dict[str, Result]] = {}
    for result in results:
        rows.setdefault((result.layout, result.items), {})[result.method] = result
    methods = [m for m in METHODS if any(m in row for row in rows.values())]
    header = f"{'layout':<18}{'items':>6}{'stops':>6}" + "".join(f"{m:>17}" for m in methods)
    for title, cell in (
        ("Route length in metres (gap to storeedge without precedence)", _metres_cell),
        ("Time in milliseconds", _ms_cell),
    ):
        print(f"\n{title}")
        print(header)
        print("-" * len(header))
        for (layout, items), row in rows.items():
            reference = row["storeedge"].metres
            stops = row["storeedge"].stops
            cells = "".join(f"{cell(row.get(m), reference):>17}" for m in methods)
            print(f"{layout:<18}{items:>6}{stops:>6}{cells}")


def _metres_cell(result: Result | None, reference: float | None) -> str:
    if result is None or result.metres is None:
        return "-"
    if reference is None or result.method == "storeedge" or reference == 0:
        suffix = "*" if result.note == "optimal" else ""
        return f"{result.metres:.1f}{suffix}"
    return f"{result.metres:.1f} ({(result.metres / reference - 1) * 100:+.1f}%)"


def _ms_cell(result: Result | None, reference: float | None) -> str:
    del reference
    return "-" if result is None or result.ms is None else f"{result.ms:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small layouts and lists only (< 30 s)")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"JSON results file (default: {RESULTS})"
    )
    parser.add_argument("--ortools-ms", type=int, default=None, help="OR-Tools time limit per instance")
    parser.add_argument(
        "--section",
        choices=("all", *SECTIONS),
        default="all",
        help="run one section only (default: all)",
    )
    args = parser.parse_args(argv)
    sections = SECTIONS if args.section == "all" else (args.section,)
    quick: bool = args.quick
    ortools_ms: int = args.ortools_ms or (200 if quick else 2000)
    layouts = [("demo", load_demo_layout()), ("convenience_store", load_bundled_layout("convenience_store"))]
    if not quick:
        layouts.append(("hypermarket", load_bundled_layout("hypermarket")))
    sizes = QUICK_SIZES if quick else SIZES
    run = Run(
        quick=quick,
        python=platform.python_version(),
        machine=f"{platform.machine()}, {platform.system()}",
        lkh=lkh_available(),
        ortools=ortools_installed(),
    )
    if "baselines" in sections:
        for name, layout in layouts:
            categories = list(layout.categories)
            for size in sizes:
                if size > len(categories):
                    print(f"{name}: only {len(categories)} categories, skipping {size}", file=sys.stderr)
                    continue
                items = random.Random(f"{SEED}-{name}-{size}").sample(categories, size)
                run.results.extend(bench_instance(name, layout, items, ortools_ms=ortools_ms))
                print(f"{name} {size} done", file=sys.stderr)
        print_tables(run.results)
        print(
            "\n* proven optimal (Held-Karp). Baselines order the stops storeedge chose; see the module docstring."
        )
    extra: dict[str, object] = {}
    if "validation" in sections:
        validation = run_validation(quick)
        print_validation(validation)
        extra["validation"] = [asdict(result) for result in validation]
    big = [layouts[0]] if quick else [layouts[0], layouts[-1]]
    if "exact" in sections:
        exact = run_exact(big, lists=2 if quick else 6, seed=SEED)
        print_exact(exact)
        extra["exact"] = [asdict(result) for result in exact]
    if "places" in sections:
        places = run_seventeen(big, lists=3 if quick else 40, seed=SEED, use_lkh=lkh_available())
        if ortools_installed() and not quick:
            places += run_long(layouts[-1][1], layouts[-1][0], lists=5, seed=SEED, ortools_ms=ortools_ms)
        print_places(places)
        extra["places"] = [asdict(result) for result in places]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = asdict(run) | extra
    for result in document["results"]:
        for key in ("metres", "ms"):
            if isinstance(result[key], float) and math.isfinite(result[key]):
                result[key] = round(result[key], 2)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
