"""LKH-3 (the `elkai` package) on the stop-ordering problem: as an asymmetric TSP over one place per
group, and as the generalised TSP over every place through the Noon-Bean transformation.

LKH works on integer arc weights: the largest finite cost is scaled to `_COST_SCALE`, so a path of
~100 arcs plus penalties stays far inside LKH's 32-bit arc costs. Both forms close the open path
start -> ... -> end into a tour by one free arc end -> start; every other arc into the start or out of
the end is forbidden. Forbidden and rank-decreasing arcs cost a penalty larger than any valid path,
so LKH only uses them when nothing else is possible (the callers repair such orders).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from routing.ordering_problem import OrderingProblem

__all__ = ["gtsp_order", "tsp_order"]

_COST_SCALE: Final = 10_000
_LKH_RUNS: Final = 1


def _scaled(raw: NDArray[np.float64], k: int) -> tuple[NDArray[np.int64], int]:
    """Integer weights of `raw` (inf -> penalty) and the penalty, larger than any valid path."""
    finite = raw[np.isfinite(raw)]
    largest = float(finite.max()) if finite.size else 1.0
    scale = _COST_SCALE / max(largest, 1e-9)
    penalty = (k + 1) * _COST_SCALE + 1
    weights = np.where(np.isfinite(raw), np.rint(raw * scale), penalty).astype(np.int64)
    return weights, penalty


def _solve(weights: NDArray[np.int64], start: int, end: int) -> list[int]:
    """LKH's tour over `weights`, rotated to begin at `start` and read towards `end` last."""
    elkai: Any = importlib.import_module("elkai")
    tour: list[int] = elkai.DistanceMatrix(weights.tolist()).solve_tsp(runs=_LKH_RUNS)[:-1]
    at = tour.index(start)
    tour = tour[at:] + tour[:at]
    if tour[1] == end:  # read the cycle the other way round
        tour = [start, *reversed(tour[1:])]
    return tour


def tsp_order(problem: OrderingProblem, representatives: Sequence[int]) -> list[int]:
    """Order the given places (one per group) with LKH-3, as an asymmetric TSP."""
    reps = list(representatives)
    k = len(reps)
    start, end = k, k + 1
    raw = np.full((k + 2, k + 2), math.inf)
    raw[np.ix_(range(k), range(k))] = problem.cost[np.ix_(reps, reps)]
    raw[start, :k] = problem.start_cost[reps]
    raw[:k, end] = problem.end_cost[reps]
    weights, penalty = _scaled(raw, k)
    ranks = problem.rank[reps]
    weights[:k, :k] += np.where(ranks[None, :] < ranks[:, None], penalty, 0)
    np.fill_diagonal(weights, 0)
    weights[end, :] = penalty
    weights[end, start] = 0
    weights[end, end] = 0
    weights[start, end] = penalty
    return [reps[i] for i in _solve(weights, start, end) if i < k]


def gtsp_order(problem: OrderingProblem) -> list[int]:
    """One place per group and their order, chosen together by LKH-3 (the Noon-Bean transformation).

    The places of a group form a cycle of free arcs (each to the next place of its group). A tour
    enters the group at the place it visits, runs round the cycle and leaves from the place before
    it, so an arc leaving place x is charged as leaving `next(x)`: cost[next(x), y]. Every arc
    between groups also costs a constant larger than any path, so the shortest tour enters each group
    exactly once and the place it enters at is the one visited. A tour that breaks a group up (only
    possible when every tour is penalised) is read by the first place it enters each group at.
    """
    m, k = problem.n_candidates, problem.n_groups
    start, end = m, m + 1
    following = np.arange(m)  # next(x): the next place of x's group, cyclically
    for g in range(k):
        members = problem.members(g)
        following[members] = np.roll(members, -1)
    raw = np.full((m + 2, m + 2), math.inf)
    raw[:m, :m] = problem.cost[following, :]
    raw[start, :m] = problem.start_cost
    raw[:m, end] = problem.end_cost[following]
    weights, _ = _scaled(raw, k)
    between = (k + 2) * _COST_SCALE  # more than any valid path: fewer group changes always win
    forbidden = 3 * between  # dearer than any tour that avoids it, even one with an extra group change
    weights = np.where(np.isfinite(raw), weights + between, forbidden)
    rank_drops = problem.rank[None, :] < problem.rank[following][:, None]
    same_group = problem.group[:, None] == problem.group[None, :]
    weights[:m, :m][rank_drops | same_group] = forbidden
    cycle = following != np.arange(m)
    weights[np.flatnonzero(cycle), following[cycle]] = 0
    weights[:, start] = forbidden
    weights[end, :] = forbidden
    weights[end, start] = 0
    np.fill_diagonal(weights, 0)
    tour = _solve(weights, start, end)
    order: list[int] = []
    seen: set[int] = set()
    previous_group = -1
    for node in tour:
        if node >= m:
            previous_group = -1
            continue
        group = int(problem.group[node])
        if group != previous_group and group not in seen:
            order.append(node)
            seen.add(group)
        previous_group = group
    return order
