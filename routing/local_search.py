"""Local search for the stop order: cheapest insertion, 2-opt, Or-opt and place swaps.

Written for asymmetric costs (one-way edges) and precedence ranks; used by `routing.heuristic` to
polish LKH's orders, and on its own (with double-bridge kicks) when LKH is not installed.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Sequence
from typing import Final

import numpy as np

from routing.ordering_problem import OrderingProblem

__all__ = ["MIN_GAIN", "LocalSearch"]

#: A move must gain at least this much (metres of cost) to be taken; float noise never loops.
MIN_GAIN: Final = 1e-7
#: Without LKH, the local search restarts from this many random perturbations per stop (iterated
#: local search); a fixed count, not a time budget, so the same list always gives the same route.
_KICKS_PER_STOP: Final = 3
_MAX_MOVES_PER_IMPROVE: Final = 10_000


class LocalSearch:
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

    def insert(self, order: Sequence[int], candidate: int) -> list[int]:
        """`order` with `candidate` inserted where it adds least, keeping ranks in order."""
        tour = [self.start, *order, self.end]
        cost, rank = self.cost, self.rank
        best_at, best_added = 1, math.inf
        for at in range(1, len(tour)):
            left, right = tour[at - 1], tour[at]
            if rank[left] <= rank[candidate] <= rank[right]:
                added = cost[left][candidate] + cost[candidate][right] - cost[left][right]
                if added < best_added:
                    best_at, best_added = at, added
        tour.insert(best_at, candidate)
        return tour[1:-1]

    def improve(self, order: Sequence[int], deadline: float) -> list[int]:
        """Apply improving 2-opt and Or-opt moves until none is left (or time runs out)."""
        tour = [self.start, *order, self.end]
        # Each accepted move lowers the cost by at least MIN_GAIN, so this terminates anyway; the cap
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
            if cost < best_cost - MIN_GAIN:
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
                if new < old - MIN_GAIN:
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
                if fits and cost[before][other] + cost[other][after] < now - MIN_GAIN:
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
                        if added < removal_gain - MIN_GAIN:
                            segment = [head] if length == 1 else tour[i : j_last + 1]
                            del tour[i : j_last + 1]
                            insert_at = p + 1 if p < i else p + 1 - length
                            tour[insert_at:insert_at] = segment
                            return True
        return False
