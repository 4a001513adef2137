"""The route map drawn to fit (kiosk.route_map) and the turn-by-turn steps (routing.directions.walk_steps),
on the demo store's real layout and real planned routes."""

from __future__ import annotations

import re

import pytest

from kiosk.route_map import HERE_GLYPH, MapRoute, draw_route_map
from kiosk.route_words import legend, map_route, route_steps, step_text
from kiosk.screens.route import VisitMap
from routing import InvalidArgumentError, Layout, load_demo_layout, plan_route
from routing.directions import walk_steps
from tests.kiosk.kiosk_testkit import real_route, visit_from_route

EVERYTHING = ["milk", "bread", "ice cream", "eggs", "rice", "pet-food", "soft-drinks", "soup", "fruit",
              "vegetables", "cheese"]  # fmt: skip
SIZES = [(12, 4), (20, 6), (36, 12), (46, 19), (60, 20), (70, 33), (80, 24), (118, 36), (200, 60)]


@pytest.fixture(scope="module")
def layout() -> Layout:
    return load_demo_layout()


def whole_route(layout: Layout, items: list[str]) -> MapRoute:
    return map_route(layout, visit_from_route(real_route(items)), ())


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_map_fits_the_box_with_every_stop_and_one_you_are_here(
    layout: Layout, width: int, height: int
) -> None:
    route = whole_route(layout, EVERYTHING)
    assert len(route.stops) == 11
    lines = draw_route_map(layout, route, legend(), width, height)
    assert 0 < len(lines) <= height
    assert all(line.cell_len <= width for line in lines)
    text = "\n".join(line.plain for line in lines)
    assert text.replace(f"{HERE_GLYPH} you are here", "").count(HERE_GLYPH) == 1  # the legend's aside
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    for stop in range(1, 12):
        assert numbers.count(stop) >= 1, f"stop {stop} missing at {width}x{height}:\n{text}"
    if width >= 36:
        assert "E" in text  # the entrance
        assert "$" in text  # the checkouts
        assert "you are here" in text  # the legend, wrapped to the width


def test_too_small_a_box_gets_no_map(layout: Layout) -> None:
    assert draw_route_map(layout, whole_route(layout, ["milk"]), legend(), 11, 30) == []
    assert draw_route_map(layout, whole_route(layout, ["milk"]), legend(), 80, 3) == []


def test_the_next_stop_and_the_walk_to_it_are_highlighted(layout: Layout) -> None:
    route = whole_route(layout, ["milk", "bread"])
    lines = draw_route_map(layout, route, legend(), 80, 24)
    next_styles = {
        str(span.style) for line in lines for span in line.spans if line.plain[span.start : span.end] == "1"
    }
    assert "bold black on yellow" in next_styles
    styles = {str(span.style) for line in lines for span in line.spans}
    assert "bold yellow" in styles  # the leg to the next stop
    assert "bold cyan" in styles  # the rest of the route


def test_a_walked_path_is_drawn_and_named_in_the_legend(layout: Layout) -> None:
    view = visit_from_route(real_route(["milk"], "A2-s1"))
    route = map_route(layout, view, ("kiosk-1", "front-w", "A1-front"))
    lines = draw_route_map(layout, route, legend(), 100, 30)
    assert any(str(span.style) == "magenta" for line in lines for span in line.spans)
    assert "walked" in "\n".join(line.plain for line in lines)
    assert route.here == "A2-s1"


def test_steps_split_the_path_at_the_stops_with_metres_and_turns(layout: Layout) -> None:
    planned = plan_route(layout, ["bread", "milk"], start="kiosk-1")
    steps = walk_steps(layout, planned.path, [s.node for s in planned.stops] + [planned.end])
    assert [s.node for s in steps] == [*(s.node for s in planned.stops), planned.end]
    assert sum(s.distance_m for s in steps) == pytest.approx(planned.distance_m)
    assert steps[0].turn is None  # no heading at the start
    assert all(s.turn in ("straight", "left", "right", "around") for s in steps[1:])
    assert steps[0].place == "aisle 2"
    assert steps[-1].place == layout.node(planned.end).label


def test_steps_refuse_a_waypoint_off_the_path_or_a_jump_between_nodes(layout: Layout) -> None:
    with pytest.raises(InvalidArgumentError, match="not on the path"):
        walk_steps(layout, ["kiosk-1", "front-w"], ["A8-s1"])
    with pytest.raises(InvalidArgumentError, match="no edge joins"):
        walk_steps(layout, ["kiosk-1", "A8-s1"], ["A8-s1"])


def test_directions_in_words_say_metres_side_and_storage(layout: Layout) -> None:
    view = visit_from_route(real_route(["bread", "milk"]))
    steps = route_steps(layout, view)
    assert steps is not None
    first = step_text(view.sections[0], steps[0], view.sections[0].place)
    assert re.fullmatch(r"Walk \d+ m to aisle 2: Bread on your left", first), first
    second = step_text(view.sections[1], steps[1], view.sections[1].place)
    assert second.endswith("Milk on your left (chilled)"), second
    assert re.match(r"(Turn (left|right|around) and walk|Walk straight on) \d+ m to aisle 7", second), second
    assert re.search(r" \d+ m to checkout \d and pay$", step_text(None, steps[-1], view.end))


def test_the_map_degrades_to_words_without_a_matching_layout(layout: Layout) -> None:
    from msgspec.structs import replace

    view = visit_from_route(real_route(["milk"]))
    no_layout = VisitMap(None)
    assert "no store map" in str(no_layout.draw(60, 20))
    broken = VisitMap(layout)
    broken.show = lambda *_: None  # type: ignore[method-assign] # no app to draw into: draw() directly
    broken._visit = replace(view, path=["nowhere", "else"], start="nowhere")
    assert "does not match" in str(broken.draw(60, 20))
    assert route_steps(layout, replace(view, path=["nowhere"])) is None
