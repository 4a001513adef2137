"""The exact stop order: Held-Karp over (set of groups visited, last candidate), branch and bound.

`best[mask, c]` is the cheapest walk from the start through one candidate of each group in `mask`,
ending at candidate c. Layers of sets are filled one size at a time by pushing every kept state of
the previous layer along every arc at once (one min-plus product per layer). A state is kept only if
its cost plus a lower bound on finishing can still match an upper bound on the optimum:

* the lower bound (`routing.held_karp_bound`) is the exact optimum of the same problem on groups
  alone (cheapest arc between two groups), solved once backwards for every set of groups still to
  visit: a Held-Karp over k points instead of m candidates, in float32;
* the upper bound is a real walk: the group order of that small problem's optimum, with the best
  places for it (`best_placement`, exact for a fixed order).

The bound never exceeds the true cost of finishing, so no state of an optimal walk is dropped and the
answer stays exact. On the shipped layouts it keeps tens to hundreds of the 2^16 sets at 16 stops;
on random costs that are no distances it prunes little, and the pass costs about what the plain DP
did. With precedence leaving fewer than `_BOUND_MIN_SETS` reachable sets the plain DP is cheaper
than the bound and runs alone. Memory: the bound is (2^k x k) float32, the kept states at most
(2^k x m) float64 (when nothing can be pruned, e.g. when no valid walk exists).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

from routing.errors import InvalidArgumentError
from routing.held_karp_bound import CompletionBound, GroupCosts
from routing.heuristic import best_placement
from routing.ordering_problem import OrderingProblem, OrderingSolution, transition_costs

__all__ = ["EXACT_MAX_TABLE_BYTES", "held_karp_bytes", "reachable_masks", "solve_held_karp"]

#: Held-Karp refuses tables larger than this (bytes), whatever the strategy: the box has 2-4 GiB.
EXACT_MAX_TABLE_BYTES: Final = 256 * 1024 * 1024
#: With fewer reachable sets than this (precedence leaves few), bounding costs more than it saves.
_BOUND_MIN_SETS: Final = 4096
#: States whose bound exceeds the upper bound by less than this (relative) are kept: float noise.
_TOLERANCE: Final = 1e-9


def held_karp_bytes(problem: OrderingProblem) -> int:
    """The most memory the exact solver's tables can take: the kept states and the bound."""
    return (1 << problem.n_groups) * (max(problem.n_candidates, 1) * 8 + problem.n_groups * 4)


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
    """The optimal order (Held-Karp over groups x candidates, pruned by bounds that keep it exact)."""
    k, m = problem.n_groups, problem.n_candidates
    if k == 0:
        return OrderingSolution((), 0.0, optimal=True, method="held-karp")
    if held_karp_bytes(problem) > EXACT_MAX_TABLE_BYTES:
        raise InvalidArgumentError(
            f"{k} stops with {m} candidate places are too many for the exact solver; use strategy 'auto'"
        )
    full = (1 << k) - 1
    transition = transition_costs(problem)
    masks = reachable_masks(problem)
    reachable = np.zeros(1 << k, dtype=bool)
    reachable[masks] = True
    bound: CompletionBound | _NoBound = _NoBound(k)
    limit = math.inf
    if masks.size >= _BOUND_MIN_SETS:
        # The sets still to visit that a valid walk can have left (all of them without precedence).
        allowed_rest = None if masks.size == 1 << k else reachable[full ^ np.arange(1 << k)]
        groups = GroupCosts.of(problem, transition)
        bound = CompletionBound(groups, allowed_rest)
        upper = _upper_bound(problem, groups, bound)
        limit = upper + _TOLERANCE * (1.0 + abs(upper)) if math.isfinite(upper) else math.inf
    layers = _kept_states(problem, transition, reachable, bound, limit)
    sets, table = layers[-1]
    if not sets.size:
        return OrderingSolution((), math.inf, optimal=True, method="held-karp")
    totals = table[:, 0] + problem.end_cost
    last = int(np.argmin(totals))
    if not math.isfinite(float(totals[last])):
        return OrderingSolution((), math.inf, optimal=True, method="held-karp")
    # Walk back: recomputing the same sums picks a kept predecessor that achieved the stored minimum.
    group_bit = np.left_shift(np.int64(1), problem.group)
    order = [last]
    mask = full
    while mask != int(group_bit[order[-1]]):
        current = order[-1]
        mask ^= int(group_bit[current])
        layer_sets, layer_table = layers[mask.bit_count() - 1]
        before = layer_table[:, int(np.searchsorted(layer_sets, mask))]
        order.append(int(np.argmin(before + transition[:, current])))
    order.reverse()
    return OrderingSolution(tuple(order), problem.path_cost(order), optimal=True, method="held-karp")


def _kept_states(
    problem: OrderingProblem,
    transition: NDArray[np.float64],
    reachable: NDArray[np.bool_],
    bound: CompletionBound | _NoBound,
    limit: float,
) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
    """Per layer: the kept sets (ascending) and their (candidates x sets) costs, inf where not kept.

    Candidate-major, so that every step of the min-plus product is a wide operation over sets."""
    k, m = problem.n_groups, problem.n_candidates
    full = (1 << k) - 1
    group_bit = np.left_shift(np.int64(1), problem.group)
    slot = np.zeros(1 << k, dtype=np.intp)
    # First stops: a set of one group; a group precedence puts after another cannot come first.
    firsts = np.flatnonzero(reachable[group_bit])
    finish = bound.lower(np.full(1, full, dtype=np.int64))[problem.group[firsts], 0]
    firsts = firsts[_within(problem.start_cost[firsts] + finish, limit)]
    sets, where = _ascending(group_bit[firsts], slot)
    table = np.full((m, sets.size), math.inf)
    table[firsts, where] = problem.start_cost[firsts]
    layers = [(sets, table)]
    everywhere = bool(reachable.all())
    # Reused between layers: fresh arrays of this size would be page-faulted in again every time.
    scratch = np.empty(2 * m * _widest_layer(k))
    for _ in range(1, k):
        sets, table = layers[-1]
        size = m * sets.size
        reached = scratch[:size].reshape(m, sets.size)
        _min_plus(table, transition, reached, scratch[size : 2 * size].reshape(m, sets.size))
        # Step to candidate c of a group g not yet visited: kept if the cheapest finish from g through
        # every group left (g included) can still come within the upper bound.
        grown = sets[None, :] | group_bit[:, None]
        keep = grown != sets[None, :]
        if not everywhere:
            keep &= reachable[grown]
        finish = bound.lower(full ^ sets)[problem.group]
        finish += reached
        keep &= _within(finish, limit)
        cands, columns = np.nonzero(keep)
        new_sets, where = _ascending(grown[cands, columns], slot)
        new_table = np.full((m, new_sets.size), math.inf)
        new_table[cands, where] = reached[cands, columns]
        layers.append((new_sets, new_table))
    return layers


class _NoBound:
    """A lower bound of zero: the plain DP, for problems too small to gain from bounding."""

    def __init__(self, k: int) -> None:
        self.k = k

    def lower(self, rests: NDArray[np.int64]) -> NDArray[np.float64]:
        return np.zeros((self.k, rests.size))


def _ascending(
    masks: NDArray[np.int64], slot: NDArray[np.intp]
) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """The distinct masks ascending, and where each of `masks` is among them (no sort when many)."""
    if masks.size * 16 < slot.size:
        distinct, where = np.unique(masks, return_inverse=True)
        return distinct, where
    seen = np.zeros(slot.size, dtype=bool)
    seen[masks] = True
    distinct = np.flatnonzero(seen)
    slot[distinct] = np.arange(distinct.size)
    return distinct.astype(np.int64), slot[masks]


def _within(total: NDArray[np.float64], limit: float) -> NDArray[np.bool_]:
    """Finite and no more than `limit`."""
    return (total <= limit) & (total < math.inf)


def _min_plus(
    costs: NDArray[np.float64],
    arcs: NDArray[np.float64],
    out: NDArray[np.float64],
    scratch: NDArray[np.float64],
) -> None:
    """out[c, j] = min over c' of costs[c', j] + arcs[c', c], for each candidate c and set j."""
    live = np.flatnonzero(np.isfinite(costs).any(axis=1))
    if not live.size:
        out.fill(math.inf)
        return
    np.add(costs[live[0]][None, :], arcs[live[0]][:, None], out=out)
    for c in live[1:]:
        np.add(costs[c][None, :], arcs[c][:, None], out=scratch)
        np.minimum(out, scratch, out=out)


def _widest_layer(k: int) -> int:
    """The most sets of one size: k choose k/2."""
    return math.comb(k, k // 2)


def _upper_bound(problem: OrderingProblem, groups: GroupCosts, bound: CompletionBound) -> float:
    """The cost of a real valid walk: the group order of the bound's own optimum, best places for it
    (inf if that order is not valid with the real candidates)."""
    k = problem.n_groups
    rest = (1 << k) - 1
    step = groups.start
    group_order: list[int] = []
    for _ in range(k):
        # Finite scores only for groups still to visit whose rest can be finished validly.
        score = step + bound.lower(np.full(1, rest, dtype=np.int64))[:, 0]
        group = int(np.argmin(score))
        if not math.isfinite(float(score[group])):
            return math.inf
        group_order.append(group)
        rest ^= 1 << group
        step = groups.between[group]
    first_member = np.argsort(problem.group, kind="stable")
    starts = np.searchsorted(problem.group[first_member], np.arange(k))
    walk = best_placement(problem, [int(first_member[starts[g]]) for g in group_order])
    cost = problem.path_cost(walk)
    return cost if problem.is_valid(walk) and math.isfinite(cost) else math.inf
