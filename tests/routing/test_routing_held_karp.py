"""The bounded exact solver (#18): same optimum as brute force and as the plain DP it replaced.

`solve_held_karp` skips its bounds below `_BOUND_MIN_SETS` reachable sets, which every brute-force-sized
problem is; the tests that need the bounds on small problems patch that threshold to 0. The plain DP
of before (`bench.held_karp_before`) is the reference where brute force is out of reach.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Iterator
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.held_karp_before import solve_held_karp_before
from routing import Layout, ordering, plan_route, planner
from routing import held_karp as held_karp_module
from routing.held_karp import reachable_masks, solve_held_karp
from routing.held_karp_bound import CompletionBound, GroupCosts
from routing.ordering_problem import OrderingProblem, OrderingSolution, transition_costs
from tests.routing.test_routing_ordering import brute_force, make_problem


@contextlib.contextmanager
def bounds_always() -> Iterator[None]:
    """Bound every problem, however few its sets."""
    with mock.patch.object(held_karp_module, "_BOUND_MIN_SETS", 0):
        yield


def assert_same_optimum(problem: OrderingProblem, solution: OrderingSolution, expected: float) -> None:
    if math.isinf(expected):
        assert math.isinf(solution.cost)
        return
    assert solution.optimal
    assert problem.is_valid(solution.order)
    assert solution.cost == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert problem.path_cost(solution.order) == pytest.approx(solution.cost)


small_instances = st.tuples(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 3), min_size=1, max_size=5),
    st.booleans(),
    st.sampled_from([0.0, 0.0, 0.15, 0.4]),
    st.booleans(),
)


@settings(max_examples=120, deadline=None)
@given(small_instances)
def test_bounded_solver_matches_brute_force(instance: tuple[int, list[int], bool, float, bool]) -> None:
    seed, sizes, precedence, blocked, symmetric = instance
    problem = make_problem(seed, sizes, precedence=precedence, blocked=blocked, symmetric=symmetric)
    with bounds_always():
        solution = solve_held_karp(problem)
    assert_same_optimum(problem, solution, brute_force(problem))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 3), min_size=9, max_size=12),
    st.booleans(),
    st.sampled_from([0.0, 0.15, 0.4]),
)
def test_bounded_solver_matches_the_plain_dp_it_replaced(
    seed: int, sizes: list[int], precedence: bool, blocked: float
) -> None:
    problem = make_problem(seed, sizes, precedence=precedence, blocked=blocked)
    expected = solve_held_karp_before(problem).cost
    assert_same_optimum(problem, solve_held_karp(problem), expected)
    with bounds_always():
        assert_same_optimum(problem, solve_held_karp(problem), expected)


def test_sixteen_stops_with_two_places_each_match_the_plain_dp() -> None:
    # Non-metric random costs: the bound prunes little here, so the whole forward pass is exercised.
    for seed in range(2):
        problem = make_problem(seed, [2] * 16, precedence=seed == 1)
        assert_same_optimum(problem, solve_held_karp(problem), solve_held_karp_before(problem).cost)


def planned_problem(layout: Layout, items: list[str], *, precedence: bool) -> OrderingProblem:
    """The ordering problem `plan_route` builds for `items` (and checks its exact plan is optimal)."""
    problems: list[OrderingProblem] = []
    original = ordering.solve

    def capture(problem: OrderingProblem, *args: object, **kwargs: object) -> OrderingSolution:
        problems.append(problem)
        return original(problem, *args, **kwargs)  # type: ignore[arg-type]

    with mock.patch.object(planner, "solve", capture):
        assert plan_route(layout, items, precedence=precedence, strategy="exact").optimal
    return problems[0]


def test_hypermarket_lists_of_sixteen_match_the_plain_dp(hypermarket_layout: Layout) -> None:
    categories = list(hypermarket_layout.categories)
    for index in range(3):
        items = random.Random(f"held-karp-{index}").sample(categories, 16)
        for precedence in (False, True):
            problem = planned_problem(hypermarket_layout, items, precedence=precedence)
            assert problem.n_candidates > problem.n_groups  # some categories are sold in two places
            assert_same_optimum(problem, solve_held_karp(problem), solve_held_karp_before(problem).cost)


@pytest.mark.parametrize(("scale", "shift"), [(1.0, -30.0), (1e37, 0.0)])
def test_negative_and_huge_costs_are_bounded_exactly_too(scale: float, shift: float) -> None:
    # The float32 bound needs costs >= 0 that cannot overflow; otherwise it is computed in float64.
    for seed in range(20):
        problem = make_problem(seed, [1, 2, 1, 2, 1], precedence=seed % 2 == 0)
        shifted = OrderingProblem(
            problem.start_cost * scale,
            problem.cost * scale + shift,
            problem.end_cost * scale,
            problem.group,
            problem.rank,
        )
        with bounds_always():
            solution = solve_held_karp(shifted)
        assert_same_optimum(shifted, solution, brute_force(shifted))


def test_no_valid_order_is_infinite_with_bounds() -> None:
    problem = make_problem(4, [1, 1, 1], precedence=False, blocked=1.0)
    with bounds_always():
        assert math.isinf(solve_held_karp(problem).cost)


def _cheapest_finish(problem: OrderingProblem, group: int, rest: list[int]) -> float:
    """Brute force: from a place of `group` through every group of `rest` (not `group`), then out."""
    transition = transition_costs(problem)
    members = [problem.members(g).tolist() for g in range(problem.n_groups)]
    best = math.inf
    for order in itertools.permutations(rest):
        for places in itertools.product(members[group], *(members[g] for g in order)):
            walk = sum(float(transition[a, b]) for a, b in itertools.pairwise(places))
            best = min(best, walk + float(problem.end_cost[places[-1]]))
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 3), min_size=1, max_size=5),
    st.booleans(),
    st.sampled_from([0.0, 0.3]),
)
def test_completion_bound_never_exceeds_the_cheapest_finish(
    seed: int, sizes: list[int], precedence: bool, blocked: float
) -> None:
    problem = make_problem(seed, sizes, precedence=precedence, blocked=blocked)
    k = problem.n_groups
    full = (1 << k) - 1
    reachable = np.zeros(1 << k, dtype=bool)
    reachable[reachable_masks(problem)] = True
    allowed = None if reachable.all() else reachable[full ^ np.arange(1 << k)]
    bound = CompletionBound(GroupCosts.of(problem, transition_costs(problem)), allowed)
    singles = all(size == 1 for size in sizes)
    for rest in range(1, 1 << k):
        if allowed is not None and not allowed[rest]:
            continue
        lower = bound.lower(np.array([rest], dtype=np.int64))[:, 0]
        for group in (g for g in range(k) if rest >> g & 1):
            others = [g for g in range(k) if rest >> g & 1 and g != group]
            truth = _cheapest_finish(problem, group, others)
            assert lower[group] <= truth
            if singles and not precedence:
                # One place per group: the group-level problem is the real one, up to float32.
                assert lower[group] == pytest.approx(truth, rel=1e-5)
