"""Near-optimal stop orders beyond the exact solver's reach, choosing each category's place too.

Categories sold in several places make the ordering a generalised TSP: the place and the order must be
chosen together, since the best place for milk depends on what is collected around it. Starts, each
polished by the same loop; the shorter route wins:

* with LKH-3 (`elkai`) and a category in several places, the generalised TSP itself, given to LKH-3
  through the Noon-Bean transformation (`routing.lkh.gtsp_order`), which lets it trade a place for
  another while it orders;
* the order of one representative place per group, by LKH-3 or, without it, cheapest insertion. Past
  `_PLACE_SEARCH_MAX_GROUPS` stops it is skipped when the first start runs: on 17 hypermarket lists
  of 17-60 stops it never beat it (lost on 4) and took a third of the time.

The loop: pick the best place of every group for the current order (exact for a fixed order, a
layered shortest path), polish with 2-opt / Or-opt / place-swap moves (`routing.local_search`),
re-order those places with LKH, and repeat while the route gets shorter. Up to
`_PLACE_SEARCH_MAX_GROUPS` stops a local search over places follows (`_other_places`).
"""

from __future__ import annotations

import importlib
import itertools
import math
import time
from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from routing.lkh import gtsp_order, tsp_order
from routing.local_search import MIN_GAIN, LocalSearch
from routing.ordering_problem import OrderingProblem, OrderingSolution, transition_costs

__all__ = ["best_placement", "initial_representatives", "lkh_available", "solve_heuristic"]

#: The heuristic alternates ordering and placement at most this many times per start.
_MAX_PLACEMENT_ROUNDS: Final = 6
#: The place-by-place search (`_other_places`) runs up to this many groups. It is what makes the
#: heuristic match the exact solver just past its limit (17-20 stops); on long lists it costs about a
#: second per 60 stops for no gain that the generalised TSP start had not found already.
_PLACE_SEARCH_MAX_GROUPS: Final = 32


def lkh_available() -> bool:
    try:
        importlib.import_module("elkai")
    except ImportError:
        return False
    return True


def solve_heuristic(problem: OrderingProblem, *, use_lkh: bool, max_seconds: float = 5.0) -> OrderingSolution:
    """A near-optimal valid order (or cost `inf` if none was found)."""
    method = "lkh-3" if use_lkh else "local-search"
    if problem.n_groups == 0:
        return OrderingSolution((), 0.0, optimal=True, method=method)
    deadline = time.monotonic() + max_seconds
    search = LocalSearch(problem)
    several_places = problem.n_groups < problem.n_candidates
    short = problem.n_groups <= _PLACE_SEARCH_MAX_GROUPS
    starts: list[list[int]] = []
    if use_lkh and several_places:
        starts.append(gtsp_order(problem))
    if not (use_lkh and several_places) or short:
        representatives = initial_representatives(problem)
        starts.append(
            tsp_order(problem, representatives) if use_lkh else search.cheapest_insertion(representatives)
        )
    best_order: list[int] = []
    best_cost = math.inf
    for first in starts:
        order = _polish(problem, search, first, use_lkh=use_lkh, deadline=deadline)
        if not best_order or problem.path_cost(order) < best_cost - MIN_GAIN:
            best_order, best_cost = order, problem.path_cost(order)
    if several_places and short and time.monotonic() < deadline:
        best_order = _other_places(problem, search, best_order, deadline)
        best_cost = problem.path_cost(best_order)
    if not use_lkh:
        # Without LKH, shake the converged order a few times to get out of its local optimum.
        kicked = best_placement(problem, search.iterated(best_order, deadline))
        kicked = search.improve(kicked, deadline)
        if problem.path_cost(kicked) < best_cost - MIN_GAIN:
            best_order, best_cost = kicked, problem.path_cost(kicked)
    if not math.isfinite(best_cost) or not problem.is_valid(best_order):
        return OrderingSolution((), math.inf, optimal=False, method=method)
    return OrderingSolution(tuple(best_order), best_cost, optimal=False, method=method)


def _polish(
    problem: OrderingProblem, search: LocalSearch, order: list[int], *, use_lkh: bool, deadline: float
) -> list[int]:
    """Alternate best places for the order, local search and re-ordering while the route gets shorter."""
    best_order: list[int] | None = None
    best_cost = math.inf
    for _ in range(_MAX_PLACEMENT_ROUNDS):
        order = search.improve(order, deadline)
        order = best_placement(problem, order)
        order = search.improve(order, deadline)
        cost = problem.path_cost(order)
        if best_order is not None and cost >= best_cost - MIN_GAIN:
            break
        best_order, best_cost = order, cost
        if time.monotonic() > deadline:
            break
        order = tsp_order(problem, order) if use_lkh else search.cheapest_insertion(order)
    assert best_order is not None
    return best_order


def _other_places(
    problem: OrderingProblem, search: LocalSearch, order: list[int], deadline: float
) -> list[int]:
    """Local search over places: collect one group elsewhere, re-insert and re-polish; keep gains.

    Moving one stop to another of its places can pay off only once the stops around it are
    re-ordered, which no single move sees. Each trial re-inserts the stop at its new place where it
    adds least, then runs the local search and the exact placement again; the first trial that
    shortens the route is kept and the pass starts over, until a whole pass gains nothing.
    """
    best, best_cost = list(order), problem.path_cost(order)
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for position, current in enumerate(best):
            for other in search.alternatives[current]:
                rest = best[:position] + best[position + 1 :]
                trial = search.insert(rest, other)
                trial = best_placement(problem, search.improve(trial, deadline))
                trial = search.improve(trial, deadline)
                cost = problem.path_cost(trial)
                if cost < best_cost - MIN_GAIN and problem.is_valid(trial):
                    best, best_cost, improved = trial, cost, True
                    break
            if improved or time.monotonic() > deadline:
                break
    return best


def initial_representatives(problem: OrderingProblem) -> list[int]:
    """One candidate per group: the one closest, on average, to the nearest place of every other group."""
    k = problem.n_groups
    finite_cost = np.where(np.isfinite(problem.cost), problem.cost, problem.blocked_cost)
    # nearest[c, h]: from candidate c to the closest place of group h (columns grouped, then reduced).
    by_group = np.argsort(problem.group, kind="stable")
    starts = np.searchsorted(problem.group[by_group], np.arange(k))
    nearest = np.minimum.reduceat(finite_cost[:, by_group], starts, axis=1)
    own = np.zeros_like(nearest, dtype=bool)
    own[np.arange(problem.n_candidates), problem.group] = True
    score = np.where(own, 0.0, nearest).sum(axis=1) / max(k - 1, 1) if k > 1 else problem.start_cost
    representatives: list[int] = []
    for g in range(k):
        members = problem.members(g)
        representatives.append(int(members[int(np.argmin(score[members]))]))
    return representatives


def best_placement(problem: OrderingProblem, order: Sequence[int]) -> list[int]:
    """For the group order of `order`, the best candidate of each group (exact; a layered shortest path)."""
    transition = transition_costs(problem)
    layers = [problem.members(int(problem.group[c])) for c in order]
    cost_so_far = problem.start_cost[layers[0]].astype(np.float64)
    choices: list[NDArray[np.int64]] = []
    for previous, current in itertools.pairwise(layers):
        step = cost_so_far[:, None] + transition[np.ix_(previous, current)]
        choices.append(np.argmin(step, axis=0))
        cost_so_far = step.min(axis=0)
    totals = cost_so_far + problem.end_cost[layers[-1]]
    position = int(np.argmin(totals))
    if not math.isfinite(float(totals[position])):
        return list(order)
    placed = [int(layers[-1][position])]
    for layer, choice in zip(reversed(layers[:-1]), reversed(choices), strict=True):
        position = int(choice[position])
        placed.append(int(layer[position]))
    placed.reverse()
    return placed
