"""The stop-ordering problem on plain cost matrices, and what a solver returns for it.

The problem is a shortest Hamiltonian *path* with a fixed start, a free end (the cost of finishing at
each candidate is given), groups of interchangeable candidates (a category sold in several places:
visit exactly one of them; a "generalised" TSP) and optional precedence ranks (ambient -> chilled ->
frozen: the ranks along the path must never decrease). Costs may be asymmetric (one-way edges) and
infinite (unreachable). The solvers live in `routing.held_karp` (exact) and `routing.heuristic`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routing.errors import InvalidArgumentError

__all__ = ["OrderingProblem", "OrderingSolution", "transition_costs"]


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

    def members(self, group: int) -> NDArray[np.int64]:
        """The candidates of one group."""
        return np.flatnonzero(self.group == group)

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


def transition_costs(problem: OrderingProblem) -> NDArray[np.float64]:
    """`cost` with impossible transitions (same group, rank going down) set to inf."""
    same_group = problem.group[:, None] == problem.group[None, :]
    rank_drops = problem.rank[None, :] < problem.rank[:, None]
    return np.where(same_group | rank_drops, math.inf, problem.cost)
