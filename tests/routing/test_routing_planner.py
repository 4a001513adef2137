"""plan_route end to end: optimal on small stores, constraints always respected, nothing dropped."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import (
    InvalidArgumentError,
    Layout,
    NoRouteError,
    Storage,
    UnknownNodeError,
    parse_layout,
    plan_route,
)
from routing.graph import cost_graph
from routing.ordering import lkh_available
from tests.routing.routing_testkit import (
    assert_route_is_consistent,
    brute_force_distance,
    corridor_toml,
    random_grid_store,
    toml_tables,
)

# -- property tests on random stores ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_items=st.integers(0, 5),
    accessible=st.booleans(),
    precedence=st.booleans(),
    from_kiosk=st.booleans(),
)
def test_route_is_optimal_and_respects_every_constraint(
    seed: int, n_items: int, accessible: bool, precedence: bool, from_kiosk: bool
) -> None:
    store = random_grid_store(seed)
    items = list(store.categories[:n_items])
    start = "kiosk" if from_kiosk else "entrance"
    route = plan_route(store.layout, items, start=start, accessible=accessible, precedence=precedence)
    assert_route_is_consistent(store.layout, route, accessible=accessible, precedence=precedence)
    expected = brute_force_distance(
        store.layout, items, start=start, accessible=accessible, precedence=precedence
    )
    assert route.optimal
    assert route.distance_m == pytest.approx(expected)
    routed = [item for stop in route.stops for item in stop.items]
    assert sorted(routed + [u.item for u in route.unreachable]) == sorted(items), "no item may vanish"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), strategy=st.sampled_from(["local", "lkh"]))
def test_heuristic_strategies_respect_every_constraint(seed: int, strategy: str) -> None:
    if strategy == "lkh" and not lkh_available():
        strategy = "local"
    store = random_grid_store(seed, rows=4, cols=5, n_categories=12)
    route = plan_route(store.layout, list(store.categories), accessible=True, strategy=strategy)  # type: ignore[arg-type]
    assert_route_is_consistent(store.layout, route, accessible=True, precedence=True)
    assert not route.optimal
    optimum = plan_route(store.layout, list(store.categories), accessible=True)
    assert route.distance_m >= optimum.distance_m - 1e-9


# -- the demo store ---------------------------------------------------------------------------


def test_precedence_puts_chilled_then_frozen_last(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["ice cream", "milk", "bread", "eggs", "frozen-vegetables", "pasta"])
    assert [stop.storage for stop in route.stops] == [Storage.AMBIENT] * 2 + [Storage.CHILLED] * 2 + [
        Storage.FROZEN
    ] * 2
    assert route.optimal
    assert route.solver == "held-karp"


def test_without_precedence_the_walk_is_no_longer(demo_layout: Layout) -> None:
    items = ["ice cream", "milk", "bread", "tea", "frozen-pizza", "pasta"]
    constrained = plan_route(demo_layout, items)
    free = plan_route(demo_layout, items, precedence=False)
    assert free.distance_m <= constrained.distance_m
    assert_route_is_consistent(demo_layout, free, accessible=False, precedence=False)


def test_accessible_route_avoids_the_narrow_cut_through(demo_layout: Layout) -> None:
    items = ["coffee", "chocolate"]  # A4-4 is just behind the cut-through, A5-3 just in front of it
    normal = plan_route(demo_layout, items)
    accessible = plan_route(demo_layout, items, accessible=True)
    used = {frozenset(pair) for pair in itertools.pairwise(normal.path)}
    assert frozenset({"A4-mid", "A5-mid"}) in used, "the test needs the shortcut to be worth taking"
    assert_route_is_consistent(demo_layout, accessible, accessible=True, precedence=True)
    assert accessible.distance_m > normal.distance_m
    assert not accessible.unreachable


def test_staff_only_edges_are_never_used(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["frozen-chips"], start="kiosk-2")
    assert "stockroom" not in route.path
    assert_route_is_consistent(demo_layout, route, accessible=False, precedence=True)


def test_one_way_gate_and_tills_are_respected(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["bread"])
    assert route.path[:2] == ("entrance", "front-w")
    assert route.end.startswith("checkout-")
    # Nobody walks back out through the entrance gate or in through a till.
    with pytest.raises(NoRouteError, match="no walk from 'kiosk-1' to 'entrance'"):
        plan_route(demo_layout, ["bread"], start="kiosk-1", end="entrance")


def test_one_way_makes_costs_asymmetric() -> None:
    # A loop a -> b -> c -> a of one-way edges: b is 4 m from a, but a is 8 m from b.
    nodes: list[dict[str, object]] = [
        {"id": "entrance", "x": 0, "y": -2, "kind": "entrance"},
        {"id": "a", "x": 0, "y": 0},
        {"id": "b", "x": 4, "y": 0},
        {"id": "c", "x": 2, "y": 3},
        {"id": "checkout", "x": 0, "y": 6, "kind": "checkout"},
    ]
    edges: list[dict[str, object]] = [
        {"from": "entrance", "to": "a", "tags": ["one_way"]},
        {"from": "a", "to": "b", "tags": ["one_way"], "length": 4},
        {"from": "b", "to": "c", "tags": ["one_way"], "length": 4},
        {"from": "c", "to": "a", "tags": ["one_way"], "length": 4},
        {"from": "c", "to": "checkout", "tags": ["one_way"]},
    ]
    sections = [
        {"id": "at-a", "node": "a", "categories": ["tea"]},
        {"id": "at-b", "node": "b", "categories": ["milk"]},
    ]
    layout = parse_layout(
        "\n".join(
            [toml_tables("nodes", nodes), toml_tables("edges", edges), toml_tables("sections", sections)]
        )
    )
    graph = cost_graph(layout)
    assert graph.cost("a", "b") == 4
    assert graph.cost("b", "a") == 8
    route = plan_route(layout, ["milk", "tea"], precedence=False)
    assert [stop.section for stop in route.stops] == ["at-a", "at-b"]
    assert route.path == ("entrance", "a", "b", "c", "checkout")
    assert_route_is_consistent(layout, route, accessible=False, precedence=False)


# -- items, reasons, options ------------------------------------------------------------------


def test_unknown_items_are_reported_with_a_suggestion(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["milk", "chocolat", "caviar"])
    assert [stop.items for stop in route.stops] == [("milk",)]
    reasons = {entry.item: entry.reason for entry in route.unreachable}
    assert reasons["chocolat"] == (
        "unknown item 'chocolat': no category, alias or product of that name in this store "
        "(did you mean 'chocolate'?)"
    )
    assert reasons["caviar"].startswith("unknown item 'caviar'")
    assert "did you mean" not in reasons["caviar"]


def test_section_unreachable_without_stairs_is_reported_with_the_reason() -> None:
    extra = toml_tables("nodes", [{"id": "upstairs", "x": 4, "y": 6}]) + toml_tables(
        "edges", [{"from": "b", "to": "upstairs", "tags": ["stairs"]}]
    )
    sections = [
        {"id": "s-bread", "node": "b", "categories": ["bread"]},
        {"id": "s-books", "node": "upstairs", "categories": ["books"]},
    ]
    layout = parse_layout(corridor_toml(extra=extra, sections=sections))
    route = plan_route(layout, ["books", "bread"], accessible=True)
    assert [stop.section for stop in route.stops] == ["s-bread"]
    assert len(route.unreachable) == 1
    assert route.unreachable[0].item == "books"
    assert route.unreachable[0].category == "books"
    assert route.unreachable[0].reason == (
        "section 's-books' (node 'upstairs') cannot be reached without stairs or narrow aisles"
    )
    assert [stop.section for stop in plan_route(layout, ["books"]).stops] == ["s-books"]


def test_section_behind_a_one_way_from_the_start_is_reported() -> None:
    # The kiosk stands past the only way into the bread aisle.
    extra = toml_tables("nodes", [{"id": "kiosk", "x": 12, "y": 4, "kind": "kiosk"}]) + toml_tables(
        "edges", [{"from": "kiosk", "to": "d"}]
    )
    text = corridor_toml(extra=extra).replace(
        'from = "c"\nto = "d"', 'from = "c"\nto = "d"\ntags = ["one_way"]'
    )
    layout = parse_layout(text)
    route = plan_route(layout, ["bread", "milk"], start="kiosk")
    assert {entry.item: entry.reason for entry in route.unreachable} == {
        "bread": "section 's-bread' (node 'b') cannot be reached from 'kiosk'",
        "milk": "section 's-milk' (node 'c') cannot be reached from 'kiosk'",
    }


def test_names_aliases_and_products_resolve(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["Whole milk 1l", "toilet roll", "Ice Cream", "tinned_tomatoes", "milk"])
    by_item = {item: stop.section for stop in route.stops for item in stop.items}
    assert by_item == {
        "Whole milk 1l": "A7-1",
        "milk": "A7-1",
        "toilet roll": "A6-1",
        "Ice Cream": "A8-1",
        "tinned_tomatoes": "A3-4",
    }
    # Two entries meaning one category are both kept, at one stop: the list is the shopper's words.
    assert [stop.items for stop in route.stops if stop.section == "A7-1"] == [("Whole milk 1l", "milk")]
    assert not route.unreachable


def test_repeated_entries_are_one_stop(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["milk", "Milk", " milk "])
    assert [stop.items for stop in route.stops] == [("milk",)]


def test_category_in_several_places_uses_the_shortest(convenience_layout: Layout) -> None:
    # Milk is in the fridge wall and in the grab-and-go fridge by the tills.
    near_tills = plan_route(convenience_layout, ["milk"])
    assert [stop.section for stop in near_tills.stops] == ["grab-and-go"]
    for start in ("entrance", "kiosk"):
        for items in (["milk", "cheese"], ["milk", "ice-cream"], ["milk", "soft-drinks", "pasta"]):
            route = plan_route(convenience_layout, items, start=start)
            expected = brute_force_distance(convenience_layout, items, start=start)
            assert route.distance_m == pytest.approx(expected)


def test_a_category_in_two_storage_classes_is_ordered_by_the_place_chosen(convenience_layout: Layout) -> None:
    # Soft drinks are ambient in aisle 3 and chilled by the tills; ice cream must still be last.
    route = plan_route(convenience_layout, ["soft-drinks", "ice-cream", "bread"])
    ranks = [stop.storage.rank for stop in route.stops]
    assert ranks == sorted(ranks)
    assert route.stops[-1].categories == ("ice-cream",)


def test_congestion_steers_the_route_but_distance_stays_in_metres(demo_layout: Layout) -> None:
    calm = plan_route(demo_layout, ["tea", "soup"])
    assert "A4-mid" in calm.path or "A3-mid" in calm.path, "the quiet route uses the cut-through"
    crowded = plan_route(demo_layout, ["tea", "soup"], congestion={"grocery": 3.0, "bakery": 9.0})
    assert crowded.distance_m >= calm.distance_m
    assert_route_is_consistent(demo_layout, crowded, accessible=False, precedence=True)
    walked = sum(
        next(edge.length_m for edge in demo_layout.edges if {edge.source, edge.target} == {a, b})
        for a, b in itertools.pairwise(crowded.path)
    )
    assert crowded.distance_m == pytest.approx(walked)


def test_congestion_in_one_zone_avoids_that_zone_when_there_is_a_choice() -> None:
    # Two equally long ways from a to d: over b (zone busy) or over c (zone quiet).
    nodes: list[dict[str, object]] = [
        {"id": "entrance", "x": 0, "y": -2, "kind": "entrance"},
        {"id": "a", "x": 0, "y": 0},
        {"id": "b", "x": 3, "y": 3, "zone": "busy"},
        {"id": "c", "x": 3, "y": -3, "zone": "quiet"},
        {"id": "d", "x": 6, "y": 0},
        {"id": "checkout", "x": 6, "y": -2, "kind": "checkout"},
    ]
    edges: list[dict[str, object]] = [
        {"from": "entrance", "to": "a", "tags": ["one_way"]},
        {"from": "a", "to": "b"},
        {"from": "b", "to": "d"},
        {"from": "a", "to": "c"},
        {"from": "c", "to": "d"},
        {"from": "d", "to": "checkout", "tags": ["one_way"]},
    ]
    text = "\n".join(
        [
            toml_tables("zones", [{"id": "busy"}, {"id": "quiet"}]),
            toml_tables("nodes", nodes),
            toml_tables("edges", edges),
            toml_tables("sections", [{"id": "s", "node": "d", "categories": ["tea"]}]),
        ]
    )
    layout = parse_layout(text)
    assert "c" in plan_route(layout, ["tea"], congestion={"busy": 0.8}).path
    assert "b" in plan_route(layout, ["tea"], congestion={"quiet": 0.8}).path
    # Sensor glitches do not break routing: unknown zones are ignored, negative or NaN count as empty.
    assert (
        plan_route(layout, ["tea"], congestion={"nowhere": 5.0, "busy": -1.0, "quiet": math.nan}).distance_m
        > 0
    )
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        plan_route(layout, ["tea"], congestion={"busy": "high"})  # type: ignore[dict-item]


def test_start_end_and_unknown_nodes(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["bread"], start="kiosk-2", end="checkout-1")
    assert route.start == "kiosk-2"
    assert route.end == "checkout-1"
    assert route.path[0] == "kiosk-2"
    assert route.path[-1] == "checkout-1"
    with pytest.raises(UnknownNodeError, match="unknown start node 'kiosk-9'"):
        plan_route(demo_layout, ["bread"], start="kiosk-9")
    with pytest.raises(UnknownNodeError, match="unknown end node 'till-7'"):
        plan_route(demo_layout, ["bread"], end="till-7")


def test_default_end_is_the_nearest_checkout(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["potatoes"])  # aisle 1, far west: checkout 1 is nearest
    assert route.end == "checkout-1"
    for checkout in ("checkout-2", "checkout-3", "checkout-4"):
        assert plan_route(demo_layout, ["potatoes"], end=checkout).distance_m >= route.distance_m


def test_empty_list_walks_to_the_checkout(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, [])
    assert route.stops == ()
    assert route.unreachable == ()
    assert route.path[0] == "entrance"
    assert route.end.startswith("checkout-")
    assert route.directions[0].startswith("Start at the entrance: walk")
    assert route.directions[-1] == f"Pay at checkout {route.end[-1]}."


def test_minutes_count_walking_and_picking(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["milk", "bread"], walking_speed_m_s=0.5, pick_seconds=30)
    assert route.minutes == pytest.approx((route.distance_m / 0.5 + 2 * 30) / 60)
    default = plan_route(demo_layout, ["milk", "bread"])
    assert default.minutes == pytest.approx((default.distance_m / 1.0 + 2 * 20) / 60)
    with pytest.raises(InvalidArgumentError):
        plan_route(demo_layout, ["milk"], walking_speed_m_s=0)
    with pytest.raises(InvalidArgumentError):
        plan_route(demo_layout, ["milk"], pick_seconds=-1)
    with pytest.raises(InvalidArgumentError, match="not one string"):
        plan_route(demo_layout, "milk")


def test_large_lists_use_the_heuristic_and_keep_constraints(hypermarket_layout: Layout) -> None:
    categories = hypermarket_layout.categories
    items = [categories[i] for i in range(0, len(categories), len(categories) // 25)][:25]
    route = plan_route(hypermarket_layout, items, accessible=True)
    assert route.solver in {"lkh-3", "local-search"}
    assert not route.optimal
    assert_route_is_consistent(hypermarket_layout, route, accessible=True, precedence=True)
    assert len(route.stops) >= 20
    assert not route.unreachable


def test_cost_graphs_are_cached_per_layout_and_options(demo_layout: Layout) -> None:
    assert cost_graph(demo_layout) is cost_graph(demo_layout)
    assert cost_graph(demo_layout, accessible=True) is not cost_graph(demo_layout)
    # Occupancy is rounded to 1% for the cache key: jitter in live readings reuses the graph.
    assert cost_graph(demo_layout, congestion={"grocery": 0.501}) is cost_graph(
        demo_layout, congestion={"grocery": 0.499}
    )
    assert cost_graph(demo_layout, congestion={"grocery": 0.6}) is not cost_graph(
        demo_layout, congestion={"grocery": 0.5}
    )


def test_route_is_frozen_and_serialises_to_the_documented_json(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["milk", "bread", "ice-cream", "nonsense"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.distance_m = 0  # type: ignore[misc]
    document = json.loads(json.dumps(route.to_dict()))
    assert set(document) >= {"stops", "path", "distance_m", "minutes", "directions", "unreachable"}
    assert document["stops"][0] == {
        "node": "A2-s1",
        "section": "A2-1",
        "items": ["bread"],
        "storage": "ambient",
        "side": route.stops[0].side,
    }
    assert document["unreachable"] == [{"item": "nonsense", "reason": route.unreachable[0].reason}]
    assert document["distance_m"] == round(route.distance_m, 1)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 1_000_000),
    n_items=st.integers(0, 6),
    accessible=st.booleans(),
    precedence=st.booleans(),
    from_kiosk=st.booleans(),
)
def test_route_is_optimal_and_respects_every_constraint_long(
    seed: int, n_items: int, accessible: bool, precedence: bool, from_kiosk: bool
) -> None:
    test_route_is_optimal_and_respects_every_constraint.hypothesis.inner_test(  # type: ignore[attr-defined]
        seed=seed, n_items=n_items, accessible=accessible, precedence=precedence, from_kiosk=from_kiosk
    )
