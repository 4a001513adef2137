"""The stop-ordering core on raw cost matrices: exact against brute force, heuristics always valid."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import InvalidArgumentError, planner
from routing.held_karp import reachable_masks
from routing.heuristic import initial_representatives
from routing.local_search import LocalSearch
from routing.ordering import (
    EXACT_MAX_GROUPS,
    OrderingProblem,
    lkh_available,
    solve,
    solve_held_karp,
    solve_heuristic,
)
from tests.routing.routing_testkit import random_grid_store


def make_problem(
    seed: int,
    group_sizes: list[int],
    *,
    precedence: bool,
    blocked: float = 0.0,
    symmetric: bool = False,
) -> OrderingProblem:
    rng = np.random.default_rng(seed)
    m = sum(group_sizes)
    cost = rng.uniform(1, 50, size=(m, m)).round(1)
    if symmetric:
        cost = np.minimum(cost, cost.T)
    if blocked:
        cost[rng.random((m, m)) < blocked] = math.inf  # one-way streets: some arcs do not exist
    np.fill_diagonal(cost, 0.0)
    group = np.repeat(np.arange(len(group_sizes)), group_sizes)
    rank = rng.integers(0, 3, size=m) if precedence else np.zeros(m, dtype=np.int64)
    return OrderingProblem(
        start_cost=rng.uniform(1, 50, size=m).round(1),
        cost=cost,
        end_cost=rng.uniform(1, 50, size=m).round(1),
        group=group.astype(np.int64),
        rank=rank.astype(np.int64),
    )


def brute_force(problem: OrderingProblem) -> float:
    members = [np.flatnonzero(problem.group == g).tolist() for g in range(problem.n_groups)]
    best = math.inf
    for choice in itertools.product(*members):
        for order in itertools.permutations(choice):
            if problem.is_valid(order):
                best = min(best, problem.path_cost(order))
    return best


instances = st.tuples(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 3), min_size=1, max_size=5),
    st.booleans(),
    st.sampled_from([0.0, 0.0, 0.15, 0.4]),
)


@settings(max_examples=120, deadline=None)
@given(instances)
def test_held_karp_matches_brute_force(instance: tuple[int, list[int], bool, float]) -> None:
    seed, sizes, precedence, blocked = instance
    problem = make_problem(seed, sizes, precedence=precedence, blocked=blocked)
    expected = brute_force(problem)
    solution = solve_held_karp(problem)
    if math.isinf(expected):
        assert math.isinf(solution.cost)
        return
    assert solution.optimal
    assert problem.is_valid(solution.order)
    assert solution.cost == pytest.approx(expected)
    assert problem.path_cost(solution.order) == pytest.approx(solution.cost)


@settings(max_examples=60, deadline=None)
@given(instances, st.booleans())
def test_heuristics_return_valid_orders_never_better_than_optimal(
    instance: tuple[int, list[int], bool, float], use_lkh: bool
) -> None:
    seed, sizes, precedence, blocked = instance
    if use_lkh and not lkh_available():
        use_lkh = False
    problem = make_problem(seed, sizes, precedence=precedence, blocked=blocked)
    optimum = solve_held_karp(problem).cost
    solution = solve_heuristic(problem, use_lkh=use_lkh, max_seconds=5)
    assert not solution.optimal
    if math.isinf(solution.cost):
        return  # a heuristic may miss the only feasible order of a heavily blocked instance
    assert problem.is_valid(solution.order)
    assert solution.cost >= optimum - 1e-9
    assert problem.path_cost(solution.order) == pytest.approx(solution.cost)


def test_local_search_on_strongly_asymmetric_costs_terminates_and_improves() -> None:
    # Cheap to go "up" the index, very dear to come back: every 2-opt reversal flips arc directions,
    # so a solver that assumed symmetry would mis-evaluate moves and could cycle.
    m = 40
    index = np.arange(m)
    cost = np.where(index[None, :] > index[:, None], 1.0 + (index[None, :] - index[:, None]) * 0.01, 100.0)
    np.fill_diagonal(cost, 0.0)
    rng = np.random.default_rng(7)
    shuffled = rng.permutation(m)
    cost = cost[np.ix_(shuffled, shuffled)]
    problem = OrderingProblem(
        start_cost=np.full(m, 5.0),
        cost=cost,
        end_cost=np.full(m, 5.0),
        group=np.arange(m, dtype=np.int64),
        rank=np.zeros(m, dtype=np.int64),
    )
    search = LocalSearch(problem)
    order = search.iterated(search.cheapest_insertion(list(range(m))), deadline=math.inf)
    assert not search.hit_limit, "local search must stop at a local optimum, not at its move cap"
    assert problem.is_valid(order)
    solution = solve_heuristic(problem, use_lkh=False)
    assert problem.is_valid(solution.order)
    # The optimum follows increasing original index: 39 cheap arcs plus start and end.
    assert solution.cost == pytest.approx(5 + 5 + 39 * 1.01)


def test_local_search_with_all_costs_equal_does_not_loop() -> None:
    m = 30
    problem = OrderingProblem(
        start_cost=np.ones(m),
        cost=np.ones((m, m)),
        end_cost=np.ones(m),
        group=np.arange(m, dtype=np.int64),
        rank=np.zeros(m, dtype=np.int64),
    )
    search = LocalSearch(problem)
    search.iterated(list(range(m)), deadline=math.inf)
    assert not search.hit_limit
    assert search.moves == 0, "no move gains anything when every order costs the same"
    assert solve_heuristic(problem, use_lkh=False).cost == pytest.approx(m + 1)


def test_precedence_is_kept_by_the_heuristics_on_larger_instances() -> None:
    problem = make_problem(11, [2] * 30, precedence=True, symmetric=True)
    for use_lkh in (False, lkh_available()):
        solution = solve_heuristic(problem, use_lkh=use_lkh, max_seconds=5)
        ranks = [int(problem.rank[c]) for c in solution.order]
        assert ranks == sorted(ranks)
        assert problem.is_valid(solution.order)


def test_no_valid_order_gives_infinite_cost() -> None:
    # Two stops; the chilled one can only be left towards the ambient one, which must come first.
    problem = OrderingProblem(
        start_cost=np.array([1.0, 1.0]),
        cost=np.array([[0.0, math.inf], [1.0, 0.0]]),
        end_cost=np.array([1.0, math.inf]),
        group=np.array([0, 1], dtype=np.int64),
        rank=np.array([0, 1], dtype=np.int64),
    )
    assert math.isinf(solve_held_karp(problem).cost)
    assert math.isinf(solve_heuristic(problem, use_lkh=False).cost)


def test_auto_is_exact_up_to_the_limit_and_heuristic_beyond() -> None:
    small = make_problem(3, [1] * EXACT_MAX_GROUPS, precedence=True)
    assert solve(small).method == "held-karp"
    large = make_problem(3, [1] * (EXACT_MAX_GROUPS + 1), precedence=True)
    assert solve(large).method in {"lkh-3", "local-search"}
    assert solve(large, "local").method == "local-search"


def test_exact_handles_fifteen_stops_with_alternatives() -> None:
    problem = make_problem(5, [2] * 15, precedence=True)
    solution = solve(problem, "exact")
    assert solution.optimal
    assert problem.is_valid(solution.order)
    # Any heuristic answer is a valid order, so it can be no shorter than the proven optimum.
    assert solve_heuristic(problem, use_lkh=False).cost >= solution.cost - 1e-9


def test_unknown_strategy_and_malformed_problems_are_rejected() -> None:
    problem = make_problem(1, [1, 1], precedence=False)
    with pytest.raises(InvalidArgumentError, match="unknown strategy"):
        solve(problem, "fastest")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="groups must be numbered"):
        OrderingProblem(
            start_cost=np.ones(2),
            cost=np.zeros((2, 2)),
            end_cost=np.ones(2),
            group=np.array([0, 2], dtype=np.int64),
            rank=np.zeros(2, dtype=np.int64),
        )
    with pytest.raises(InvalidArgumentError, match="too many for the exact solver"):
        solve_held_karp(make_problem(1, [1] * 30, precedence=False))


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(4, 12),
    st.booleans(),
    st.sampled_from(["two_opt", "or_opt", "swap"]),
)
def test_every_local_search_move_really_shortens_the_asymmetric_path(
    seed: int, size: int, precedence: bool, move: str
) -> None:
    # The gain of a move is computed incrementally; it must agree with the cost recomputed from scratch,
    # which for 2-opt means accounting for the reversed direction of every arc in the segment. Every
    # third group has a second place, for the moves that change where a group is collected.
    sizes = [2 if g % 3 == 0 else 1 for g in range(size)]
    problem = make_problem(seed, sizes, precedence=precedence)
    search = LocalSearch(problem)
    rng = np.random.default_rng(seed)
    first_of_group = [int(np.flatnonzero(problem.group == g)[0]) for g in range(size)]
    order = sorted(rng.permutation(first_of_group).tolist(), key=lambda c: int(problem.rank[c]))
    tour = [search.start, *order, search.end]
    before = problem.path_cost(tour[1:-1])
    moves = {"two_opt": search._two_opt, "or_opt": search._or_opt, "swap": search._swap_place}
    moved = moves[move](tour)
    after = problem.path_cost(tour[1:-1])
    assert problem.is_valid(tour[1:-1])
    if moved:
        assert after < before - 1e-9
    else:
        assert after == pytest.approx(before)


def test_local_search_with_missing_arcs_stops_at_a_local_optimum() -> None:
    problem = make_problem(3, [1] * 25, precedence=True, blocked=0.35)
    search = LocalSearch(problem)
    order = search.iterated(search.cheapest_insertion(list(range(25))), deadline=math.inf)
    assert not search.hit_limit
    assert sorted(order) == list(range(25))


def test_local_search_to_convergence_takes_only_real_improvements(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real instance (from a random grid store) with two stops at one spot, so some moves gain
    # exactly nothing. Arcs into the start and out of the end can never be used, and here they cost
    # 1e12: if any gain were computed from sums that include them, rounding error (~1e-4 at that
    # magnitude) would turn zero-gain moves into phantom improvements and the search would cycle
    # between two equally long orders until its time limit.
    captured: list[OrderingProblem] = []

    def capture(problem: OrderingProblem, *args: object, **kwargs: object) -> object:
        captured.append(problem)
        return solve(problem, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(planner, "solve", capture)
    store = random_grid_store(0, rows=4, cols=5, n_categories=12)
    planner.plan_route(store.layout, list(store.categories), accessible=True)
    problem = captured[0]
    search = LocalSearch(problem)
    for row in search.cost:
        row[search.start] = 1e12
    search.cost[search.end] = [1e12] * len(search.cost)
    tour = [search.start, *search.cheapest_insertion(initial_representatives(problem)), search.end]
    cost = problem.path_cost(tour[1:-1])
    for _ in range(500):
        if not (search._two_opt(tour) or search._or_opt(tour)):
            break
        new_cost = problem.path_cost(tour[1:-1])
        assert new_cost < cost - 1e-9, "a move that does not shorten the path"
        cost = new_cost
    else:
        pytest.fail("local search did not converge in 500 moves")
    assert problem.is_valid(tour[1:-1])


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(
    st.tuples(
        st.integers(0, 2**32 - 1),
        st.lists(st.integers(1, 2), min_size=1, max_size=6),
        st.booleans(),
        st.sampled_from([0.0, 0.1, 0.3]),
    )
)
def test_held_karp_matches_brute_force_long(instance: tuple[int, list[int], bool, float]) -> None:
    test_held_karp_matches_brute_force.hypothesis.inner_test(instance)  # type: ignore[attr-defined]


def test_precedence_prunes_the_exact_solvers_states_to_the_reachable_sets() -> None:
    # 10 ambient, 3 chilled, 2 frozen stops (one place each): any subset of ambient, then all ambient
    # plus some chilled, then all ambient and chilled plus some frozen.
    ranks = np.array([0] * 10 + [1] * 3 + [2] * 2, dtype=np.int64)
    problem = make_problem(7, [1] * 15, precedence=False, blocked=0.0)
    ranked = OrderingProblem(problem.start_cost, problem.cost, problem.end_cost, problem.group, ranks)
    assert reachable_masks(ranked).size == 2**10 + (2**3 - 1) + (2**2 - 1)
    assert reachable_masks(problem).size == 2**15  # without ranks nothing can be skipped
    # A category sold both chilled and frozen ranks with neither group: it may come in either phase.
    mixed = OrderingProblem(
        np.ones(3), np.ones((3, 3)), np.ones(3), np.array([0, 1, 1]), np.array([0, 1, 2], dtype=np.int64)
    )
    assert reachable_masks(mixed).size == 3  # {}, {0}, {0, 1}: group 1 never before group 0
    assert solve_held_karp(ranked).cost == pytest.approx(brute_force_ranked(ranked))


def brute_force_ranked(problem: OrderingProblem) -> float:
    """The optimum found another way: every order of the chilled and frozen stops, each joined to the
    best ambient walk ending next to it (Held-Karp without ranks, so the pruning under test is unused)."""
    by_rank = [np.flatnonzero(problem.rank == r).tolist() for r in sorted(set(problem.rank.tolist()))]
    best = math.inf
    for orders in itertools.product(*(itertools.permutations(group) for group in by_rank[1:])):
        tail = [c for part in orders for c in part]
        head = OrderingProblem(
            problem.start_cost[by_rank[0]],
            problem.cost[np.ix_(by_rank[0], by_rank[0])],
            problem.cost[np.ix_(by_rank[0], [tail[0]])][:, 0]
            + problem.path_cost([*tail])
            - problem.start_cost[tail[0]],
            np.arange(len(by_rank[0]), dtype=np.int64),
            np.zeros(len(by_rank[0]), dtype=np.int64),
        )
        best = min(best, solve_held_karp(head).cost)
    return best
