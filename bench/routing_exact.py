"""Exact solving time, a section of bench/routing.py (`--section exact`).

`plan_route(strategy="exact")` on random 15- and 16-item lists, with and without precedence, on a warm
shortest-path cache: milliseconds per plan (what a caller waits). Then the ordering problem that plan
built is solved again by the solver alone, new (`routing.held_karp`, bounded) and before
(`bench.held_karp_before`, the plain DP of ab75d76), three times each, interleaved; the fastest of
the three counts (a busy box adds spikes, never removes work). Both must find the same cost: the
section stops with an error otherwise. `ratio` is before / new per list, median over the lists.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.held_karp_before import solve_held_karp_before
from bench.routing_places import captured_problems
from routing import Layout, plan_route
from routing.held_karp import solve_held_karp
from routing.ordering_problem import OrderingProblem, OrderingSolution

EXACT_SIZES = (15, 16)
REPEATS = 3


@dataclass
class ExactResult:
    layout: str
    items: int
    precedence: bool
    stops: list[int] = field(default_factory=list)
    places: list[int] = field(default_factory=list)  # candidate places of the ordering problem
    ms: list[float] = field(default_factory=list)  # plan_route, wall clock
    solver_ms: list[float] = field(default_factory=list)  # solve_held_karp alone, fastest of REPEATS
    before_ms: list[float] = field(default_factory=list)  # the solver before #18's bounds, same way


def _fastest(solver: Callable[[OrderingProblem], OrderingSolution], problem: OrderingProblem) -> float:
    started = time.perf_counter()
    solver(problem)
    return (time.perf_counter() - started) * 1000


def _solver_times(problem: OrderingProblem) -> tuple[float, float]:
    """Milliseconds of the new and the old solver on `problem` (fastest of REPEATS, interleaved)."""
    new, old = solve_held_karp(problem), solve_held_karp_before(problem)
    if not (new.cost == old.cost or abs(new.cost - old.cost) <= 1e-9 * (1 + abs(old.cost))):
        raise AssertionError(f"exact solvers disagree: {new.cost} != {old.cost}")
    new_ms, old_ms = [], []
    for _ in range(REPEATS):
        new_ms.append(_fastest(solve_held_karp, problem))
        old_ms.append(_fastest(solve_held_karp_before, problem))
    return min(new_ms), min(old_ms)


def run_exact(layouts: list[tuple[str, Layout]], lists: int, seed: int) -> list[ExactResult]:
    results: list[ExactResult] = []
    for name, layout in layouts:
        categories = list(layout.categories)
        for size in EXACT_SIZES:
            for precedence in (False, True):
                result = ExactResult(name, size, precedence)
                for index in range(lists):
                    items = random.Random(f"{seed}-exact-{name}-{size}-{index}").sample(categories, size)
                    with captured_problems() as problems:
                        plan_route(layout, items, precedence=precedence, strategy="exact")  # warm
                    started = time.perf_counter()
                    route = plan_route(layout, items, precedence=precedence, strategy="exact")
                    result.ms.append((time.perf_counter() - started) * 1000)
                    result.stops.append(problems[0].n_groups)
                    result.places.append(problems[0].n_candidates)
                    assert route.optimal
                    new_ms, old_ms = _solver_times(problems[0])
                    result.solver_ms.append(new_ms)
                    result.before_ms.append(old_ms)
                results.append(result)
    return results


def print_exact(results: list[ExactResult]) -> None:
    print("\nExact (Held-Karp) plans, milliseconds with a warm cache: plan_route (median / max over the")
    print("lists), then the solver alone, new against before #18's bounds on the same problems")
    header = (
        f"{'layout':<13}{'items':>6}{'stops':>7}{'places':>8}{'prec':>6}{'plan':>14}"
        f"{'solver':>14}{'before':>14}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ratios = [old / new for new, old in zip(r.solver_ms, r.before_ms, strict=True)]
        print(
            f"{r.layout:<13}{r.items:>6}{_span(r.stops):>7}{_span(r.places):>8}"
            f"{'on' if r.precedence else 'off':>6}{_median_max(r.ms):>14}{_median_max(r.solver_ms):>14}"
            f"{_median_max(r.before_ms):>14}{statistics.median(ratios):>6.1f}x"
        )


def _span(values: list[int]) -> str:
    return f"{min(values)}-{max(values)}" if min(values) != max(values) else str(values[0])


def _median_max(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}"
