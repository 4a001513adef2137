"""Stop ordering: the combinatorial core of the planner, on plain cost matrices.

The problem is a shortest Hamiltonian *path* with a fixed start, a free end (the cost of finishing at
each candidate is given), groups of interchangeable candidates (a category sold in several places:
visit exactly one of them; a "generalised" TSP) and optional precedence ranks (ambient -> chilled ->
frozen: the ranks along the path must never decrease). Costs may be asymmetric (one-way edges) and
infinite (unreachable).

* `solve_held_karp`: exact dynamic programme over (set of groups visited, last candidate),
  vectorised with numpy one popcount layer at a time. Time O(m^2 2^k), memory O(m 2^k) for k groups
  and m candidates.
* `solve_heuristic`: near-optimal. Orders one representative per group with LKH-3 (the `elkai`
  package) when it is importable, else with cheapest insertion + 2-opt + Or-opt in pure Python; then
  picks the best candidate per group for that order exactly (a layered shortest path) and repeats
  while that improves the route.
"""

from __future__ import annotations

import importlib
import itertools
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from routing.errors import InvalidArgumentError

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

#: `solve(strategy="auto")` is exact up to this many groups (stops). 16 groups with a few
#: candidates each take well under a second on the store box; each further group doubles time and memory.
EXACT_MAX_GROUPS: Final = 16
#: Held-Karp refuses tables larger than this (bytes), whatever the strategy: the box has 2-4 GiB.
_EXACT_MAX_TABLE_BYTES: Final = 256 * 1024 * 1024
#: A move must gain at least this much (metres of cost) to be taken; float noise never loops.
_MIN_GAIN: Final = 1e-7
#: The heuristic alternates ordering and placement at most this many times.
_MAX_PLACEMENT_ROUNDS: Final = 6
_LKH_RUNS: Final = 1
#: Without LKH, the local search restarts from this many random perturbations per stop (iterated
#: local search); a fixed count, not a time budget, so the same list always gives the same route.
_KICKS_PER_STOP: Final = 3
_MAX_MOVES_PER_IMPROVE: Final = 10_000
#: LKH works on integers: the largest finite cost is scaled to this, so a path of ~100 arcs plus
#: penalties stays far inside LKH's 32-bit arc costs.
_LKH_COST_SCALE: Final = 10_000


@dataclass(frozen=True, slots=True, eq=False)
class OrderingProblem:
    """Pick one candidate of every group and an order for them, minimising
    `start_cost[first] + sum(cost[a, b] for consecutive a, b) + end_cost[last]`,
    with `rank` non-decreasing along the order.

    Candidates are indexed 0..m-1; `group[c]` is in 0..k-1 and every group has a candidate.
    Set every rank to 0 to switch precedence off.
    """

    start_cost: NDArray[np.float64]
    cost: NDArray[np.float64]
    end_cost: NDArray[np.float64]
    group: NDArray[np.int64]
    rank: NDArray[np.int64]

    def __post_init__(self) -> None:
        m = len(self.group)
        if self.cost.shape != (m, m) or self.start_cost.shape != (m,) or self.end_cost.shape != (m,):
            raise InvalidArgumentError("cost arrays do not match the number of candidates")
        if self.rank.shape != (m,):
            raise InvalidArgumentError("rank must have one entry per candidate")
        if m and set(self.group.tolist()) != set(range(int(self.group.max()) + 1)):
            raise InvalidArgumentError("groups must be numbered 0..k-1 with no gaps")

    @property
    def blocked_cost(self) -> float:
        """A finite stand-in for `inf` in heuristics (inf - inf would make move gains NaN).

        It exceeds the cost of any path that avoids it, yet stays small enough that the gains of
        moves stay exact to well below a millimetre; a huge constant would drown them in rounding
        noise and make the local search chase phantom improvements.
        """
        parts = (self.start_cost, self.cost, self.end_cost)
        return 1.0 + float(sum(part[np.isfinite(part)].sum() for part in parts))

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) else 0

    @property
    def n_candidates(self) -> int:
        return len(self.group)

    def path_cost(self, order: Sequence[int]) -> float:
        """Cost of visiting `order` (candidate indices); `inf` if an arc is impossible."""
        if not order:
            return 0.0
        total = float(self.start_cost[order[0]]) + float(self.end_cost[order[-1]])
        for a, b in itertools.pairwise(order):
            total += float(self.cost[a, b])
        return total

    def is_valid(self, order: Sequence[int]) -> bool:
        """One candidate of each group, ranks non-decreasing."""
        groups = [int(self.group[c]) for c in order]
        if sorted(groups) != list(range(self.n_groups)):
            return False
        ranks = [int(self.rank[c]) for c in order]
        return all(a <= b for a, b in itertools.pairwise(ranks))


@dataclass(frozen=True, slots=True)
class OrderingSolution:
    order: tuple[int, ...]  # candidate indices, one per group, in visiting order
    cost: float  # `inf` when no valid order exists
    optimal: bool  # proven optimal (exact method)
    method: str  # "held-karp", "lkh-3" or "local-search"


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
    if problem.n_groups <= exact_max_groups and _held_karp_bytes(problem) <= _EXACT_MAX_TABLE_BYTES:
        return solve_held_karp(problem)
    return solve_heuristic(problem, use_lkh=lkh_available(), max_seconds=max_seconds)


# -- exact ------------------------------------------------------------------------------------


def _held_karp_bytes(problem: OrderingProblem) -> int:
    return (1 << problem.n_groups) * max(problem.n_candidates, 1) * 8


def _transition_costs(problem: OrderingProblem) -> NDArray[np.float64]:
    """`cost` with impossible transitions (same group, rank going down) set to inf."""
    same_group = problem.group[:, None] == problem.group[None, :]
    rank_drops = problem.rank[None, :] < problem.rank[:, None]
    return np.where(same_group | rank_drops, math.inf, problem.cost)


def _reachable_masks(problem: OrderingProblem) -> NDArray[np.int64]:
    """The sets of groups a valid walk can have visited at some point, ascending.

    With precedence, a group h whose every candidate ranks below every candidate of a group g must be
    visited before g; a set holding g but not h is never reached, so the DP skips it. For the usual
    ambient -> chilled -> frozen list that leaves a small fraction of the 2^k sets (10 ambient + 3
    chilled + 2 frozen stops: about 1,100 of 32,768). Without ranks every set is reachable."""
    k = problem.n_groups
    masks = np.arange(1 << k, dtype=np.int64)
    low = np.full(k, np.iinfo(np.int64).max)
    high = np.full(k, np.iinfo(np.int64).min)
    np.minimum.at(low, problem.group, problem.rank)
    np.maximum.at(high, problem.group, problem.rank)
    keep = np.ones(masks.size, dtype=bool)
    for g in range(k):
        before = sum(1 << h for h in range(k) if high[h] < low[g])
        if before:
            keep &= ((masks >> g) & 1 == 0) | (masks & before == before)
    return masks[keep]


def solve_held_karp(problem: OrderingProblem) -> OrderingSolution:
    """The optimal order (Held-Karp over groups x candidates)."""
    k, m = problem.n_groups, problem.n_candidates
    if k == 0:
        return OrderingSolution((), 0.0, optimal=True, method="held-karp")
    if _held_karp_bytes(problem) > _EXACT_MAX_TABLE_BYTES:
        raise InvalidArgumentError(
            f"{k} stops with {m} candidate places are too many for the exact solver; use strategy 'auto'"
        )
    transition = _transition_costs(problem)
    group_bit = np.left_shift(np.int64(1), problem.group)
    candidates_of = [np.flatnonzero(problem.group == g) for g in range(k)]
    n_masks = 1 << k
    # best[mask, c]: cheapest walk from the start through one candidate of each group in `mask`,
    # ending at candidate c (whose group is in `mask`).
    best = np.full((n_masks, m), math.inf)
    best[group_bit, np.arange(m)] = problem.start_cost
    masks = _reachable_masks(problem)
    popcount = np.zeros(masks.size, dtype=np.int64)
    for bit in range(k):
        popcount += (masks >> bit) & 1
    for size in range(2, k + 1):
        layer = masks[popcount == size]
        for g in range(k):
            bit_value = 1 << g
            with_group = layer[(layer & bit_value) != 0]
            previous = best[with_group ^ bit_value]  # (masks in layer, m)
            for c in candidates_of[g]:
                best[with_group, c] = (previous + transition[:, c]).min(axis=1)
    full = n_masks - 1
    totals = best[full] + problem.end_cost
    last = int(np.argmin(totals))
    total = float(totals[last])
    if not math.isfinite(total):
        return OrderingSolution((), math.inf, optimal=True, method="held-karp")
    # Walk back: recomputing the same sums picks a predecessor that achieved the stored minimum.
    order = [last]
    mask = full
    while mask != int(group_bit[order[-1]]):
        current = order[-1]
        mask ^= int(group_bit[current])
        order.append(int(np.argmin(best[mask] + transition[:, current])))
    order.reverse()
    return OrderingSolution(tuple(order), problem.path_cost(order), optimal=True, method="held-karp")


# -- heuristic --------------------------------------------------------------------------------


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
    search = _LocalSearch(problem)
    representatives = _initial_representatives(problem)
    best_order: list[int] | None = None
    best_cost = math.inf
    for _ in range(_MAX_PLACEMENT_ROUNDS):
        if use_lkh:
            order = _lkh_order(problem, representatives)
            order = search.improve(order, deadline)
        else:
            order = search.improve(search.cheapest_insertion(representatives), deadline)
        order = _best_placement(problem, order)
        order = search.improve(order, deadline)
        cost = problem.path_cost(order)
        if best_order is not None and cost >= best_cost - _MIN_GAIN:
            break
        best_order, best_cost = order, cost
        representatives = order
        if time.monotonic() > deadline:
            break
    assert best_order is not None
    if not use_lkh:
        # Without LKH, shake the converged order a few times to get out of its local optimum.
        kicked = _best_placement(problem, search.iterated(best_order, deadline))
        kicked = search.improve(kicked, deadline)
        if problem.path_cost(kicked) < best_cost - _MIN_GAIN:
            best_order, best_cost = kicked, problem.path_cost(kicked)
    if not math.isfinite(best_cost) or not problem.is_valid(best_order):
        return OrderingSolution((), math.inf, optimal=False, method=method)
    return OrderingSolution(tuple(best_order), best_cost, optimal=False, method=method)


def _initial_representatives(problem: OrderingProblem) -> list[int]:
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
        members = np.flatnonzero(problem.group == g)
        representatives.append(int(members[int(np.argmin(score[members]))]))
    return representatives


def _best_placement(problem: OrderingProblem, order: Sequence[int]) -> list[int]:
    """For the group order of `order`, the best candidate of each group (exact; a layered shortest path)."""
    transition = _transition_costs(problem)
    layers = [np.flatnonzero(problem.group == problem.group[c]) for c in order]
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


def _lkh_order(problem: OrderingProblem, representatives: Sequence[int]) -> list[int]:
    """Order the representatives with LKH-3, as an asymmetric TSP.

    The open path start -> ... -> end becomes a tour by one free arc end -> start, with every other arc
    into the start or out of the end forbidden. Forbidden arcs and rank-decreasing arcs cost a penalty
    larger than any valid path, so LKH only uses them when nothing else is possible.
    """
    elkai: Any = importlib.import_module("elkai")
    reps = list(representatives)
    k = len(reps)
    start, end = k, k + 1
    raw = np.full((k + 2, k + 2), math.inf)
    raw[np.ix_(range(k), range(k))] = problem.cost[np.ix_(reps, reps)]
    raw[start, :k] = problem.start_cost[reps]
    raw[:k, end] = problem.end_cost[reps]
    finite = raw[np.isfinite(raw)]
    largest = float(finite.max()) if finite.size else 1.0
    scale = _LKH_COST_SCALE / max(largest, 1e-9)
    penalty = (k + 1) * _LKH_COST_SCALE + 1
    weights = np.where(np.isfinite(raw), np.rint(raw * scale), penalty).astype(np.int64)
    ranks = problem.rank[reps]
    weights[:k, :k] += np.where(ranks[None, :] < ranks[:, None], penalty, 0)
    np.fill_diagonal(weights, 0)
    weights[end, :] = penalty
    weights[end, start] = 0
    weights[end, end] = 0
    weights[start, end] = penalty
    if k + 2 < 3:  # pragma: no cover - k >= 1 always gives 3 or more cities
        return reps
    tour: list[int] = elkai.DistanceMatrix(weights.tolist()).solve_tsp(runs=_LKH_RUNS)[:-1]
    at = tour.index(start)
    tour = tour[at:] + tour[:at]
    if tour[1] == end:  # read the cycle the other way round
        tour = [start, *reversed(tour[1:])]
    return [reps[i] for i in tour if i < k]


class _LocalSearch:
    """Cheapest insertion, then 2-opt and Or-opt moves, for asymmetric costs and precedence ranks.

    Works on a tour `[START, c1, ..., cn, END]` of extended indices (m = start, m+1 = end). Every move
    is evaluated with the asymmetric costs it really changes: reversing a segment reverses the
    direction of every arc inside it, which the 2-opt gain accounts for with prefix sums of the
    forward and the backward arc costs.
    """

    def __init__(self, problem: OrderingProblem) -> None:
        m = problem.n_candidates
        self.problem = problem
        self.start, self.end = m, m + 1
        blocked = problem.blocked_cost
        extended = np.full((m + 2, m + 2), blocked)
        extended[:m, :m] = np.where(np.isfinite(problem.cost), problem.cost, blocked)
        extended[self.start, :m] = np.where(np.isfinite(problem.start_cost), problem.start_cost, blocked)
        extended[:m, self.end] = np.where(np.isfinite(problem.end_cost), problem.end_cost, blocked)
        self.matrix = extended
        self.cost: list[list[float]] = extended.tolist()
        self.rank: list[int] = [*problem.rank.tolist(), -1, int(problem.rank.max(initial=0)) + 1]
        self.group: list[int] = problem.group.tolist()
        members = [np.flatnonzero(problem.group == g).tolist() for g in range(problem.n_groups)]
        # Candidates that can stand in for each candidate (its group), for the placement moves.
        self.alternatives: list[list[int]] = [
            [other for other in members[g] if other != c] for c, g in enumerate(self.group)
        ]
        self.moves = 0  # improving moves applied, over the life of this search
        self.hit_limit = False  # an `improve` stopped at the move cap or the deadline, not at a local optimum

    def cheapest_insertion(self, representatives: Sequence[int]) -> list[int]:
        """Insert groups one at a time where they add least, keeping ranks in order."""
        matrix = self.matrix
        tour = [self.start, self.end]
        pending = list(representatives)
        ranks = np.array(self.rank)
        while pending:
            stops = np.array(pending)
            here, after = np.array(tour[:-1]), np.array(tour[1:])
            added = matrix[here][:, stops] + matrix[stops][:, after].T - matrix[here, after][:, None]
            fits = (ranks[here][:, None] <= ranks[stops][None, :]) & (
                ranks[stops][None, :] <= ranks[after][:, None]
            )
            added = np.where(fits, added, math.inf)
            position, which = np.unravel_index(int(np.argmin(added)), added.shape)
            tour.insert(int(position) + 1, pending.pop(int(which)))
        return tour[1:-1]

    def improve(self, order: Sequence[int], deadline: float) -> list[int]:
        """Apply improving 2-opt and Or-opt moves until none is left (or time runs out)."""
        tour = [self.start, *order, self.end]
        # Each accepted move lowers the cost by at least _MIN_GAIN, so this terminates anyway; the cap
        # bounds the worst case on pathological inputs.
        for _ in range(_MAX_MOVES_PER_IMPROVE):
            if time.monotonic() > deadline:
                self.hit_limit = True
                break
            if not (self._swap_place(tour) or self._two_opt(tour) or self._or_opt(tour)):
                break
            self.moves += 1
        else:
            self.hit_limit = True
        return tour[1:-1]

    def iterated(self, order: Sequence[int], deadline: float) -> list[int]:
        """Local search, then repeated double-bridge kicks inside one storage class, keeping the best."""
        best = self.improve(order, deadline)
        best_cost = self.problem.path_cost(best)
        rng = random.Random(len(best))  # seeded: identical lists get identical routes
        for _ in range(_KICKS_PER_STOP * len(best)):
            if time.monotonic() > deadline:
                break
            kicked = self._double_bridge(best, rng)
            if kicked is None:
                break
            candidate = self.improve(kicked, deadline)
            cost = self.problem.path_cost(candidate)
            if cost < best_cost - _MIN_GAIN:
                best, best_cost = candidate, cost
        return best

    def _double_bridge(self, order: list[int], rng: random.Random) -> list[int] | None:
        """Swap two adjacent segments within one rank class (a move 2-opt and Or-opt cannot undo)."""
        runs = [
            list(group)
            for _, group in itertools.groupby(range(len(order)), key=lambda i: self.rank[order[i]])
        ]
        runs = [run for run in runs if len(run) >= 3]
        if not runs:
            return None
        run = rng.choice(runs)
        i, j, k = sorted(rng.sample(range(run[0], run[-1] + 2), 3))
        return order[:i] + order[j:k] + order[i:j] + order[k:]

    def _two_opt(self, tour: list[int]) -> bool:
        cost, rank = self.cost, self.rank
        n = len(tour)
        # forward[i]: cost of tour[1] -> ... -> tour[i]; backward[i]: the same arcs walked the other
        # way. Both start at tour[1]: a reversed segment never includes the start, and summing the
        # prohibitive arcs into it would drown small gains in rounding error (phantom improvements).
        forward = [0.0] * n
        backward = [0.0] * n
        for i in range(2, n):
            forward[i] = forward[i - 1] + cost[tour[i - 1]][tour[i]]
            backward[i] = backward[i - 1] + cost[tour[i]][tour[i - 1]]
        for i in range(1, n - 2):
            before = tour[i - 1]
            first = tour[i]
            for j in range(i + 1, n - 1):
                last = tour[j]
                if rank[last] != rank[first]:
                    break  # ranks only grow along the tour: longer segments would mix ranks too
                after = tour[j + 1]
                old = cost[before][first] + (forward[j] - forward[i]) + cost[last][after]
                new = cost[before][last] + (backward[j] - backward[i]) + cost[first][after]
                if new < old - _MIN_GAIN:
                    tour[i : j + 1] = tour[i : j + 1][::-1]
                    return True
        return False

    def _swap_place(self, tour: list[int]) -> bool:
        """Visit another place of the same group (a category sold elsewhere too) where it is shorter."""
        cost, rank = self.cost, self.rank
        for i in range(1, len(tour) - 1):
            before, current, after = tour[i - 1], tour[i], tour[i + 1]
            now = cost[before][current] + cost[current][after]
            for other in self.alternatives[current]:
                fits = rank[before] <= rank[other] <= rank[after]
                if fits and cost[before][other] + cost[other][after] < now - _MIN_GAIN:
                    tour[i] = other
                    return True
        return False

    def _or_opt(self, tour: list[int]) -> bool:
        """Move a segment of 1-3 stops elsewhere; a single stop may switch to another of its places."""
        cost, rank = self.cost, self.rank
        n = len(tour)
        for length in (1, 2, 3):
            for i in range(1, n - length):
                j_last = i + length - 1
                if j_last >= n - 1:
                    break
                first, last = tour[i], tour[j_last]
                before, after = tour[i - 1], tour[j_last + 1]
                removal_gain = cost[before][first] + cost[last][after] - cost[before][after]
                # A moved single stop may be collected at any of its group's places.
                choices = [first, *self.alternatives[first]] if length == 1 else [first]
                for p in range(n - 1):
                    if i - 1 <= p <= j_last:
                        continue
                    left, right = tour[p], tour[p + 1]
                    for head in choices:
                        tail = head if length == 1 else last
                        if rank[left] > rank[head] or rank[tail] > rank[right]:
                            continue
                        added = cost[left][head] + cost[tail][right] - cost[left][right]
                        if added < removal_gain - _MIN_GAIN:
                            segment = [head] if length == 1 else tour[i : j_last + 1]
                            del tour[i : j_last + 1]
                            insert_at = p + 1 if p < i else p + 1 - length
                            tour[insert_at:insert_at] = segment
                            return True
        return False
