"""The choice of places, a section of bench/routing.py (`--section places`; exact times: routing_exact.py).

Categories sold in several places (most of the hypermarket's). Lists of 17 stops, just past the exact
solver's limit: storeedge's default (LKH-3 choosing places with the order) against `strategy="exact"`
on the same list. Longer lists: storeedge against OR-Tools choosing the places itself (one disjunction
per stop over its places, guided local search with a time limit), both on the ordering problem
storeedge builds (same start, free end, asymmetric metres).
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from routing import Layout, Route, ordering, plan_route, planner
from routing.ordering import OrderingProblem, Strategy

SEVENTEEN = 17
LONG_SIZES = (25, 40, 60)


@dataclass
class PlacesResult:
    layout: str
    items: int
    lists: int
    stops: list[int] = field(default_factory=list)
    storeedge_m: list[float] = field(default_factory=list)
    reference_m: list[float] = field(default_factory=list)  # exact, or OR-Tools choosing places
    storeedge_ms: list[float] = field(default_factory=list)
    reference: str = "exact"


@contextlib.contextmanager
def captured_problems() -> Iterator[list[OrderingProblem]]:
    """The ordering problems `plan_route` builds while the block runs."""
    problems: list[OrderingProblem] = []
    original = ordering.solve

    def capture(problem: OrderingProblem, *args: object, **kwargs: object) -> object:
        problems.append(problem)
        return original(problem, *args, **kwargs)  # type: ignore[arg-type]

    with mock.patch.object(planner, "solve", capture):
        yield problems


def _timed_plan(layout: Layout, items: list[str], **options: Any) -> tuple[Route, float]:
    """The route and how long planning it took, in milliseconds."""
    started = time.perf_counter()
    route = plan_route(layout, items, **options)
    return route, (time.perf_counter() - started) * 1000


def run_seventeen(
    layouts: list[tuple[str, Layout]], lists: int, seed: int, *, use_lkh: bool
) -> list[PlacesResult]:
    results: list[PlacesResult] = []
    for name, layout in layouts:
        categories = list(layout.categories)
        result = PlacesResult(name, SEVENTEEN, lists)
        strategy: Strategy = "lkh" if use_lkh else "local"
        for index in range(lists):
            items = random.Random(f"{seed}-places-{name}-{index}").sample(categories, SEVENTEEN)
            with captured_problems() as problems:
                plan_route(layout, items, precedence=False, strategy=strategy)  # warm
            result.stops.append(problems[0].n_groups)
            heuristic, ms = _timed_plan(layout, items, precedence=False, strategy=strategy)
            result.storeedge_ms.append(ms)
            exact = plan_route(layout, items, precedence=False, strategy="exact")
            result.storeedge_m.append(heuristic.distance_m)
            result.reference_m.append(exact.distance_m)
        results.append(result)
    return results


def run_long(layout: Layout, name: str, lists: int, seed: int, ortools_ms: int) -> list[PlacesResult]:
    results: list[PlacesResult] = []
    categories = list(layout.categories)
    for size in LONG_SIZES:
        result = PlacesResult(name, size, lists, reference="or-tools")
        for index in range(lists):
            items = random.Random(f"{seed}-long-{name}-{size}-{index}").sample(categories, size)
            with captured_problems() as problems:
                plan_route(layout, items, precedence=False)  # warm, and the problem
            problem = problems[0]
            result.stops.append(problem.n_groups)
            route, ms = _timed_plan(layout, items, precedence=False)
            result.storeedge_ms.append(ms)
            result.storeedge_m.append(route.distance_m)
            order = ortools_choosing_places(problem, ortools_ms)
            result.reference_m.append(problem.path_cost(order))
        results.append(result)
    return results


def ortools_choosing_places(problem: OrderingProblem, time_limit_ms: int) -> list[int]:
    """OR-Tools' route over every place: exactly one place per stop (a disjunction), free end."""
    import numpy as np  # noqa: PLC0415
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2  # noqa: PLC0415 - optional

    m = problem.n_candidates
    start, end = m, m + 1
    big = 10**9
    cost = np.full((m + 2, m + 2), np.inf)
    cost[:m, :m] = problem.cost
    cost[start, :m] = problem.start_cost
    cost[:m, end] = problem.end_cost
    np.fill_diagonal(cost, 0.0)
    scaled = np.where(np.isfinite(cost), np.rint(cost * 100), big).astype(np.int64).tolist()  # centimetres
    manager = pywrapcp.RoutingIndexManager(m + 2, 1, [start], [end])
    model = pywrapcp.RoutingModel(manager)

    def arc_cost(from_index: int, to_index: int) -> int:
        return int(scaled[manager.IndexToNode(from_index)][manager.IndexToNode(to_index)])

    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitCallback(arc_cost))
    for g in range(problem.n_groups):
        model.AddDisjunction([manager.NodeToIndex(int(c)) for c in problem.members(g)], big, 1)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(time_limit_ms)
    solution = model.SolveWithParameters(params)
    order: list[int] = []
    index = model.Start(0)
    while not model.IsEnd(index):
        node = manager.IndexToNode(index)
        if node < m:
            order.append(node)
        index = solution.Value(model.NextVar(index))
    return order


def print_places(results: list[PlacesResult]) -> None:
    print("\nChoosing places: storeedge (LKH-3 over places and order) against the reference, metres")
    header = (
        f"{'layout':<18}{'items':>6}{'stops':>8}{'lists':>6}{'reference':>10}"
        f"{'longer':>8}{'shorter':>8}{'worst gap':>10}{'total gap':>10}{'ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        gaps = [(mine / other - 1) * 100 for mine, other in zip(r.storeedge_m, r.reference_m, strict=True)]
        longer = sum(
            1 for mine, other in zip(r.storeedge_m, r.reference_m, strict=True) if mine > other + 1e-6
        )
        shorter = sum(
            1 for mine, other in zip(r.storeedge_m, r.reference_m, strict=True) if mine < other - 1e-6
        )
        total = (sum(r.storeedge_m) / sum(r.reference_m) - 1) * 100
        stops = f"{min(r.stops)}-{max(r.stops)}"
        print(
            f"{r.layout:<18}{r.items:>6}{stops:>8}{r.lists:>6}{r.reference:>10}{longer:>8}{shorter:>8}"
            f"{max(gaps):>+9.1f}%{total:>+9.1f}%{statistics.median(r.storeedge_ms):>8.0f}"
        )
