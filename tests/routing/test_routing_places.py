"""Choosing each category's place together with the order (a generalised TSP) beyond the exact solver.

The heuristic is held to the exact solver wherever that runs: on random instances with several places
per group, and on real 17-stop lists of the hypermarket, where most categories are sold in two places.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import Layout, plan_route
from routing.lkh import gtsp_order
from routing.ordering import OrderingProblem, lkh_available, solve_held_karp, solve_heuristic

needs_lkh = pytest.mark.skipif(not lkh_available(), reason="elkai (LKH-3) is not installed")


def metric_problem(seed: int, group_sizes: list[int], *, precedence: bool, one_way: float) -> OrderingProblem:
    """A store-like instance: places on a floor, walking costs that obey the triangle inequality (as
    shortest paths always do) and are asymmetric where some arcs are dearer one way (one-way aisles)."""
    rng = np.random.default_rng(seed)
    m = sum(group_sizes)
    points = rng.uniform(0, 40, size=(m + 2, 2))  # the places, then the start and the end
    walk = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    walk *= np.where(rng.random(walk.shape) < one_way, rng.uniform(1.5, 3.0, size=walk.shape), 1.0)
    for via in range(m + 2):  # Floyd-Warshall: the cheapest walk, as the planner's shortest paths
        walk = np.minimum(walk, walk[:, via, None] + walk[None, via, :])
    walk = walk.round(1)
    rank = rng.integers(0, 3, size=m) if precedence else np.zeros(m, dtype=np.int64)
    return OrderingProblem(
        start_cost=walk[m, :m].copy(),
        cost=walk[:m, :m].copy(),
        end_cost=walk[:m, m + 1].copy(),
        group=np.repeat(np.arange(len(group_sizes)), group_sizes).astype(np.int64),
        rank=rank.astype(np.int64),
    )


instances_with_places = st.tuples(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 3), min_size=2, max_size=9),
    st.booleans(),
    st.sampled_from([0.0, 0.2]),
)


@needs_lkh
@settings(max_examples=60, deadline=None)
@given(instances_with_places)
def test_lkh_choosing_places_is_valid_and_never_better_than_exact(
    instance: tuple[int, list[int], bool, float],
) -> None:
    seed, sizes, precedence, one_way = instance
    problem = metric_problem(seed, sizes, precedence=precedence, one_way=one_way)
    optimum = solve_held_karp(problem).cost
    solution = solve_heuristic(problem, use_lkh=True)
    assert problem.is_valid(solution.order)
    assert solution.cost >= optimum - 1e-9
    assert problem.path_cost(solution.order) == pytest.approx(solution.cost)


@needs_lkh
def test_lkh_choosing_places_matches_exact_on_nearly_every_store_like_instance() -> None:
    # A heuristic can miss; this pins how rarely, on 100 fixed instances of 5-10 stops with one to
    # three places each (LKH runs with a fixed seed, so the count is deterministic). Measured: 1 miss
    # here; the heuristic before #18 (LKH on one representative place per stop) missed 33.
    rng = random.Random(18)
    misses = 0
    for _ in range(100):
        sizes = [rng.randint(1, 3) for _ in range(rng.randint(5, 10))]
        precedence, one_way = rng.random() < 0.5, rng.choice([0.0, 0.2])
        problem = metric_problem(rng.randrange(2**32), sizes, precedence=precedence, one_way=one_way)
        if solve_heuristic(problem, use_lkh=True).cost > solve_held_karp(problem).cost + 1e-9:
            misses += 1
    assert misses <= 3


@needs_lkh
@settings(max_examples=40, deadline=None)
@given(instances_with_places)
def test_the_generalised_tsp_order_visits_one_place_of_every_group(
    instance: tuple[int, list[int], bool, float],
) -> None:
    seed, sizes, precedence, one_way = instance
    problem = metric_problem(seed, sizes, precedence=precedence, one_way=one_way)
    order = gtsp_order(problem)
    assert sorted(int(problem.group[c]) for c in order) == list(range(problem.n_groups))
    if not precedence:
        assert problem.is_valid(order)


@needs_lkh
def test_a_place_that_only_pays_off_with_another_order_is_found() -> None:
    # Group 0 has a place right by the start (candidate 0) and one far away by the end (candidate 1).
    # With every other stop on the way to the end, the far one wins only if the order changes too.
    m = 8
    positions = np.array([1.0, 9.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    cost = np.abs(positions[:, None] - positions[None, :])
    problem = OrderingProblem(
        start_cost=positions.copy(),
        cost=cost,
        end_cost=10.0 - positions,
        group=np.array([0, 0, 1, 2, 3, 4, 5, 6], dtype=np.int64),
        rank=np.zeros(m, dtype=np.int64),
    )
    solution = solve_heuristic(problem, use_lkh=True)
    assert solution.cost == pytest.approx(solve_held_karp(problem).cost) == pytest.approx(10.0)


@needs_lkh
@pytest.mark.parametrize("seed", [1, 2])
def test_seventeen_stop_hypermarket_lists_route_as_short_as_exact(
    hypermarket_layout: Layout, seed: int
) -> None:
    # Past the exact solver's 16 stops "auto" is LKH; it must still find the optimum where exact runs.
    categories = list(hypermarket_layout.categories)
    items = random.Random(f"seventeen-{seed}").sample(categories, 17)
    heuristic = plan_route(hypermarket_layout, items, precedence=False, strategy="lkh")
    exact = plan_route(hypermarket_layout, items, precedence=False, strategy="exact")
    assert heuristic.solver == "lkh-3"
    assert exact.optimal
    assert heuristic.distance_m <= exact.distance_m + 1e-9
