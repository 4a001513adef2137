"""A lower bound on finishing a walk, for the exact solver: the same problem on groups alone.

Shrink every group to one point and let the cost from group g to group h be the cheapest arc from any
candidate of g to any candidate of h (`GroupCosts`); finishing at h costs its cheapest way out. Every
real walk costs at least its group-level shadow, so the exact optimum of the small problem bounds the
real one from below. `CompletionBound` solves it backwards, for every set of groups still to visit at
once: `bound[h, rest]` is the cheapest group-level walk from h through every group of `rest` (h among
them) and out. That is a Held-Karp over k points instead of m candidates, with a single arc per pair,
and it is tight: where every group has one place it is the real cost of finishing.

The table is float32 (it is only a bound: inputs are rounded down and the result is lowered by more
than the rounding of 16 additions can add, so it never exceeds the float64 truth); float64 when a
cost is negative or huge, where that argument does not hold. The layer layout
(which set is where, and where each push lands) depends only on k and, with precedence, on the sets a
walk can reach; without precedence it is cached per k.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from routing.ordering_problem import OrderingProblem

__all__ = ["CompletionBound", "GroupCosts"]

#: float32 sums of up to 17 terms are off by less than 17 * 2**-24 (relative, for costs >= 0).
_FLOAT32_SLACK: Final = 4e-6
#: Larger costs are bounded in float64 (17 float32 sums of them stay far from overflowing).
_FLOAT32_MAX_COST: Final = 1e30
#: Layouts without precedence are cached up to this many groups (about 8 MB at 16).
_CACHED_MAX_GROUPS: Final = 16


@dataclass(frozen=True, slots=True)
class GroupCosts:
    """The problem seen from groups: the cheapest arc between two groups, into and out of each."""

    # (k, k): the cheapest arc from a candidate of g to one of h; inf on the diagonal.
    between: NDArray[np.float64]
    start: NDArray[np.float64]  # (k,): cheapest first step into each group
    end: NDArray[np.float64]  # (k,): cheapest way out from each group

    @classmethod
    def of(cls, problem: OrderingProblem, transition: NDArray[np.float64]) -> GroupCosts:
        k = problem.n_groups
        by_group = np.argsort(problem.group, kind="stable")
        firsts = np.searchsorted(problem.group[by_group], np.arange(k))
        columns = np.minimum.reduceat(transition[:, by_group], firsts, axis=1)
        between = np.minimum.reduceat(columns[by_group], firsts, axis=0)
        np.fill_diagonal(between, math.inf)
        start = np.minimum.reduceat(problem.start_cost[by_group], firsts)
        end = np.minimum.reduceat(problem.end_cost[by_group], firsts)
        return cls(between, start, end)


@dataclass(frozen=True, slots=True)
class _Layer:
    """The sets of one size and, for size > 1, where the previous layer's pushes land."""

    sets: NDArray[np.int64]  # ascending masks; column j of this layer's table is sets[j]
    source: NDArray[np.intp]  # flat (group, column) index into the previous layer's pushes
    target: NDArray[np.intp]  # flat (group, column) index into this layer's table


@dataclass(frozen=True, slots=True)
class _Layout:
    layers: tuple[_Layer, ...]  # layers[s - 1]: the sets of s groups
    column: NDArray[np.intp]  # column[mask]: the mask's column in its layer


def _layout(k: int, allowed: NDArray[np.bool_] | None) -> _Layout:
    """Layers of the allowed sets (all non-empty sets when `allowed` is None)."""
    masks = np.arange(1, 1 << k, dtype=np.int64)
    if allowed is not None:
        masks = masks[allowed[masks]]
    size = np.bitwise_count(masks)
    by_size = np.argsort(size, kind="stable")
    cuts = np.searchsorted(size[by_size], np.arange(1, k + 2))
    column = np.zeros(1 << k, dtype=np.intp)
    bits = np.left_shift(np.int64(1), np.arange(k, dtype=np.int64))
    layers: list[_Layer] = []
    empty = np.zeros(0, dtype=np.intp)
    for s in range(k):
        sets = masks[by_size[cuts[s] : cuts[s + 1]]]
        column[sets] = np.arange(sets.size)
        if not layers:
            layers.append(_Layer(sets, empty, empty))
            continue
        before = layers[-1].sets
        grown = before[None, :] | bits[:, None]  # (k, n_before): the set after adding group g
        fits = (before[None, :] & bits[:, None]) == 0
        if allowed is not None:
            fits &= allowed[grown]
        group, at = np.nonzero(fits)
        source = group * before.size + at
        target = group * sets.size + column[grown[group, at]]
        layers.append(_Layer(sets, source.astype(np.intp), target.astype(np.intp)))
    return _Layout(tuple(layers), column)


@functools.lru_cache(maxsize=2)
def _full_layout(k: int) -> _Layout:
    return _layout(k, None)


class CompletionBound:
    """`lower(rests)`: for each set of groups still to visit, a lower bound on finishing the walk from
    each group of it (see the module docstring)."""

    def __init__(self, costs: GroupCosts, allowed_rest: NDArray[np.bool_] | None) -> None:
        k = costs.end.size
        self.k = k
        if allowed_rest is None and k <= _CACHED_MAX_GROUPS:
            self.layout = _full_layout(k)
        else:
            self.layout = _layout(k, allowed_rest)
        finite = np.concatenate([part[np.isfinite(part)] for part in (costs.between, costs.end)])
        # float32's error bound needs costs >= 0, and sums of its largest values would overflow.
        exact = bool(finite.size and (finite.min() < 0 or finite.max() > _FLOAT32_MAX_COST))
        dtype = np.float64 if exact else np.float32
        between = _rounded_down(costs.between, dtype)
        end = _rounded_down(costs.end, dtype)
        self.scale = 1.0 if exact else 1.0 - _FLOAT32_SLACK
        self.tables = self._solve(between.T.copy(), end)

    def _solve(self, into: NDArray[np.floating], end: NDArray[np.floating]) -> list[NDArray[np.floating]]:
        """tables[s - 1][g, j]: from group g through the j-th set of s groups (g in it), then out."""
        k = self.k
        first = self.layout.layers[0].sets
        table = np.full((k, first.size), math.inf, dtype=end.dtype)
        alone = np.bitwise_count(first - 1).astype(np.intp)  # the group of each one-group set
        table[alone, np.arange(first.size)] = end[alone]
        tables = [table]
        for layer in self.layout.layers[1:]:
            previous = tables[-1]
            # pushed[g, j] = min over h of cost(g -> h) + previous[h, j]: step to g before that walk.
            pushed = previous[0][None, :] + into[0][:, None]
            scratch = np.empty_like(pushed)
            for h in range(1, k):
                np.add(previous[h][None, :], into[h][:, None], out=scratch)
                np.minimum(pushed, scratch, out=pushed)
            table = np.full((k, layer.sets.size), math.inf, dtype=end.dtype)
            table.reshape(-1)[layer.target] = pushed.reshape(-1)[layer.source]
            tables.append(table)
        return tables

    def lower(self, rests: NDArray[np.int64]) -> NDArray[np.float64]:
        """(k, n): a lower bound on finishing from group g with `rests[j]` (g in it) still to visit;
        inf where no valid finish exists. All rests must have the same number of groups (>= 1)."""
        if not rests.size:
            return np.zeros((self.k, 0))
        table = self.tables[int(np.bitwise_count(rests[0])) - 1]
        found = table[:, self.layout.column[rests]].astype(np.float64)
        return found * self.scale if self.scale != 1.0 else found


def _rounded_down(values: NDArray[np.float64], dtype: type[np.floating]) -> NDArray[np.floating]:
    """`values` in `dtype`, never above the float64 originals."""
    cast = values.astype(dtype)
    if dtype is np.float64:
        return cast
    above = cast.astype(np.float64) > values
    return np.where(above, np.nextafter(cast, dtype(-math.inf)), cast)
