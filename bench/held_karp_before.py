"""The exact solver as it was before the bounds of #18 (commit ab75d76): the in-run baseline of
`bench/routing.py --section exact`, and the reference the tests compare the pruned solver with.

A plain layered Held-Karp over every reachable (set of groups, last candidate): no pruning.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from routing.held_karp import reachable_masks
from routing.ordering_problem import OrderingProblem, OrderingSolution, transition_costs

__all__ = ["solve_held_karp_before"]


def solve_held_karp_before(problem: OrderingProblem) -> OrderingSolution:
    """The optimal order, by the dense DP (no size check: callers keep k small)."""
    k, m = problem.n_groups, problem.n_candidates
    if k == 0:
        return OrderingSolution((), 0.0, optimal=True, method="held-karp")
    transition = transition_costs(problem)
    group_bit = np.left_shift(np.int64(1), problem.group)
    members = [problem.members(g) for g in range(k)]
    masks = reachable_masks(problem)
    popcount = np.bitwise_count(masks)
    # One table per layer: best[size - 1][row_of[mask], c] is the cheapest walk from the start
    # through one candidate of each group in `mask` (of `size` groups), ending at candidate c.
    row_of = np.zeros(1 << k, dtype=np.int64)
    reachable = np.zeros(1 << k, dtype=bool)
    reachable[masks] = True
    best: list[NDArray[np.float64]] = []
    for size in range(1, k + 1):
        sets = masks[popcount == size]
        row_of[sets] = np.arange(sets.size)
        table = np.full((sets.size, m), math.inf)
        if size == 1:
            # A group precedence puts after another cannot be the first stop: its set is not there.
            first = np.isin(group_bit, sets)
            table[row_of[group_bit[first]], np.flatnonzero(first)] = problem.start_cost[first]
        for g in range(k) if size > 1 else ():
            # The sets holding g whose set without g is reachable (precedence may forbid it: then g
            # cannot have been the last group visited).
            rows = np.flatnonzero((sets >> g) & 1 == 1)
            rows = rows[reachable[sets[rows] ^ (1 << g)]]
            if not rows.size:
                continue
            # Candidate-major, so the minimum runs over rows of contiguous sets (wide vector ops).
            previous = np.ascontiguousarray(best[-1][row_of[sets[rows] ^ (1 << g)]].T)
            reached = (previous[:, None, :] + transition[:, members[g], None]).min(axis=0)
            table[rows[:, None], members[g][None, :]] = reached.T
        best.append(table)
    totals = best[-1][0] + problem.end_cost
    last = int(np.argmin(totals))
    if not math.isfinite(float(totals[last])):
        return OrderingSolution((), math.inf, optimal=True, method="held-karp")
    # Walk back: recomputing the same sums picks a predecessor that achieved the stored minimum.
    order = [last]
    mask = (1 << k) - 1
    while mask != int(group_bit[order[-1]]):
        current = order[-1]
        mask ^= int(group_bit[current])
        before = best[int(np.bitwise_count(mask)) - 1][row_of[mask]]
        order.append(int(np.argmin(before + transition[:, current])))
    order.reverse()
    return OrderingSolution(tuple(order), problem.path_cost(order), optimal=True, method="held-karp")
