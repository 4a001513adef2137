"""The exact stop order: Held-Karp dynamic programming over (set of groups visited, last candidate).

`best[mask, c]` is the cheapest walk from the start through one candidate of each group in `mask`,
ending at candidate c. Sets are filled one popcount layer at a time, and within a layer one group g at
a time for every set holding g at once: the predecessors of those sets are `mask ^ bit(g)`, so a whole
layer of one group is one min-plus product of (candidates) x (sets) against (candidates) x
(candidates of g), computed on a transposed copy so that the minimum runs over contiguous rows.
Each layer has its own table, so the gathers of one layer read only the previous layer's (a few MB
that stay in the cache) instead of the whole 2^k table. Time O(m^2 2^k), memory O(m 2^k) for k
groups and m candidates.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

from routing.errors import InvalidArgumentError
from routing.ordering_problem import OrderingProblem, OrderingSolution, transition_costs

__all__ = ["EXACT_MAX_TABLE_BYTES", "held_karp_bytes", "reachable_masks", "solve_held_karp"]

#: Held-Karp refuses tables larger than this (bytes), whatever the strategy: the box has 2-4 GiB.
EXACT_MAX_TABLE_BYTES: Final = 256 * 1024 * 1024


def held_karp_bytes(problem: OrderingProblem) -> int:
    return (1 << problem.n_groups) * max(problem.n_candidates, 1) * 8


def reachable_masks(problem: OrderingProblem) -> NDArray[np.int64]:
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
    if held_karp_bytes(problem) > EXACT_MAX_TABLE_BYTES:
        raise InvalidArgumentError(
            f"{k} stops with {m} candidate places are too many for the exact solver; use strategy 'auto'"
        )
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
