"""Stop ordering: the combinatorial core of the planner, on plain cost matrices.

The problem (`OrderingProblem`, in `routing.ordering_problem`) is a shortest Hamiltonian path with a
fixed start, a free end, groups of interchangeable places (a generalised TSP) and optional precedence
ranks, on asymmetric costs. `solve` picks the solver:

* `solve_held_karp` (`routing.held_karp`): exact dynamic programme, up to `EXACT_MAX_GROUPS` stops.
* `solve_heuristic` (`routing.heuristic`): near-optimal beyond, choosing places together with the
  order; LKH-3 (`elkai`) when it is importable, else local search (`routing.local_search`).
"""

from __future__ import annotations

from typing import Final, Literal

from routing.errors import InvalidArgumentError
from routing.held_karp import EXACT_MAX_TABLE_BYTES, held_karp_bytes, solve_held_karp
from routing.heuristic import lkh_available, solve_heuristic
from routing.ordering_problem import OrderingProblem, OrderingSolution

__all__ = [
    "EXACT_MAX_GROUPS",
    "OrderingProblem",
    "OrderingSolution",
    "Strategy",
    "lkh_available",
    "solve",
    "solve_held_karp",
    "solve_heuristic",
]

Strategy = Literal["auto", "exact", "lkh", "local"]

#: `solve(strategy="auto")` is exact up to this many groups (stops). 16 groups with two places each
#: take about 5-15 ms on the store box's layouts (bounded Held-Karp, routing.held_karp); each further
#: group doubles the bound's time and memory.
EXACT_MAX_GROUPS: Final = 16


def solve(
    problem: OrderingProblem,
    strategy: Strategy = "auto",
    *,
    exact_max_groups: int = EXACT_MAX_GROUPS,
    max_seconds: float = 5.0,
) -> OrderingSolution:
    """Solve with the strategy asked for; "auto" is exact up to `exact_max_groups` groups."""
    if strategy == "exact":
        return solve_held_karp(problem)
    if strategy == "lkh":
        if not lkh_available():
            raise InvalidArgumentError("strategy 'lkh' needs the elkai package, which is not installed")
        return solve_heuristic(problem, use_lkh=True, max_seconds=max_seconds)
    if strategy == "local":
        return solve_heuristic(problem, use_lkh=False, max_seconds=max_seconds)
    if strategy != "auto":
        raise InvalidArgumentError(f"unknown strategy {strategy!r} (auto, exact, lkh, local)")
    if problem.n_groups <= exact_max_groups and held_karp_bytes(problem) <= EXACT_MAX_TABLE_BYTES:
        return solve_held_karp(problem)
    return solve_heuristic(problem, use_lkh=lkh_available(), max_seconds=max_seconds)
