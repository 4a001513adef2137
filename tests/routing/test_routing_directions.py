"""Directions in words: turns and shelf sides follow from the coordinates."""

from __future__ import annotations

import pytest

from routing import Layout, plan_route
from routing.directions import shelf_side, turn_between

NORTH, EAST, SOUTH, WEST = (0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0)


@pytest.mark.parametrize(
    ("before", "after", "turn"),
    [
        (NORTH, EAST, "right"),
        (NORTH, WEST, "left"),
        (EAST, NORTH, "left"),
        (SOUTH, EAST, "left"),
        (NORTH, NORTH, "straight"),
        (NORTH, (0.3, 1.0), "straight"),  # a slight bend is not a turn
        (NORTH, SOUTH, "around"),
        ((1.0, -1.0), WEST, "right"),  # heading south-east, then west: a sharp right
    ],
)
def test_turns_follow_the_floor_plan_axes(
    before: tuple[float, float], after: tuple[float, float], turn: str
) -> None:
    assert turn_between(before, after) == turn


def test_shelf_side_is_relative_to_the_walking_direction() -> None:
    assert shelf_side(NORTH, (-1.5, 0.0)) == "left"
    assert shelf_side(SOUTH, (-1.5, 0.0)) == "right"
    assert shelf_side(EAST, (0.0, 2.0)) == "left"
    assert shelf_side(NORTH, (0.0, 1.0)) is None  # straight ahead
    assert shelf_side(None, (1.0, 0.0)) is None
    assert shelf_side(NORTH, (0.0, 0.0)) is None


def test_directions_for_two_shelves_in_one_aisle(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["pasta", "rice"])
    assert route.directions == (
        "Start at the entrance: walk 4 m, turn right into the front cross-aisle and walk 12 m, "
        "turn left into aisle 3 and walk 7 m.",
        # Rice (A3-2) is on the east side: on the right walking north into the aisle...
        "Aisle 3, right side: rice; then turn around, walk 4 m along aisle 3.",
        # ...and pasta (A3-1) on the west side, which is on the right walking back south.
        "Aisle 3, right side: pasta; then walk 3 m along aisle 3, turn left into the front cross-aisle "
        "and walk 8 m, turn right into till lane 1 and walk 2 m to checkout 1.",
        "Pay at checkout 1.",
    )


def test_directions_from_a_kiosk_across_the_store(demo_layout: Layout) -> None:
    route = plan_route(demo_layout, ["tea", "milk", "ice cream"], start="kiosk-2")
    assert route.directions == (
        "Start at kiosk 2: walk 3 m, turn right into the back cross-aisle and walk 4 m, "
        "turn left into aisle 4 and walk 3 m.",
        "Aisle 4, right side: tea; then walk 7 m along aisle 4, turn left into the cut-through and walk 12 m, "
        "turn right into aisle 7 and walk 11 m.",
        "Aisle 7, right side: milk; then walk 3 m along aisle 7, turn left into the front cross-aisle and "
        "walk 4 m, turn left into aisle 8 and walk 3 m.",
        "Aisle 8, left side: ice cream; then turn around, walk 3 m along aisle 8, carry on into till lane 4 "
        "and walk 2 m to checkout 4.",
        "Pay at checkout 4.",
    )
    assert [stop.side for stop in route.stops] == ["right", "right", "left"]


def test_stops_at_one_spot_share_a_sentence(convenience_layout: Layout) -> None:
    route = plan_route(convenience_layout, ["cheese", "ready meals", "yogurt", "newspapers", "magazines"])
    assert route.directions[1].startswith(
        "The front walkway, left side: newspapers, magazines; then turn right, walk 12 m along the front walkway"
    )
    assert route.directions[2].startswith(
        "The fridge wall, right side: cheese, yogurt, ready meals; then turn around"
    )
    assert len(route.directions) == 4


def test_every_stop_and_item_is_mentioned(hypermarket_layout: Layout) -> None:
    items = ["bananas", "pasta", "shampoo", "televisions", "milk", "ice-cream"]
    route = plan_route(hypermarket_layout, items)
    text = " ".join(route.directions)
    for item in items:
        assert item in text
    assert route.directions[0].startswith("Start at entrance 1:")
    assert route.directions[-1] == f"Pay at {hypermarket_layout.node(route.end).label}."
