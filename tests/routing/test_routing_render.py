"""Maps: text snapshots of the three layouts, box size guarantees, and the SVG.

Snapshots live in tests/routing/snapshots/. After an intended change to the drawing, regenerate them
with

    STOREEDGE_UPDATE_SNAPSHOTS=1 python -m pytest tests/routing/test_routing_render.py

and review the diff before committing.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from routing import InvalidArgumentError, Layout, Route, plan_route, render_ascii, render_svg

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("STOREEDGE_UPDATE_SNAPSHOTS") == "1"
DEMO_ITEMS = ["milk", "bread", "ice cream", "pasta", "rice", "cat food"]


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {name}; run with STOREEDGE_UPDATE_SNAPSHOTS=1 to create it"
    assert text == path.read_text(encoding="utf-8"), (
        f"map differs from {path}; if the change is intended, regenerate with STOREEDGE_UPDATE_SNAPSHOTS=1"
    )


@pytest.fixture(scope="module")
def demo_route(demo_layout: Layout) -> Route:
    return plan_route(demo_layout, DEMO_ITEMS)


def test_demo_store_map(demo_layout: Layout) -> None:
    assert_snapshot("demo_map.txt", render_ascii(demo_layout))


def test_demo_store_route(demo_layout: Layout, demo_route: Route) -> None:
    assert_snapshot("demo_route.txt", render_ascii(demo_layout, demo_route))


def test_demo_store_route_in_plain_ascii(demo_layout: Layout, demo_route: Route) -> None:
    text = render_ascii(demo_layout, demo_route, unicode=False)
    assert text.isascii()
    assert_snapshot("demo_route_ascii.txt", text)


def test_convenience_store_accessible_route(convenience_layout: Layout) -> None:
    route = plan_route(convenience_layout, ["milk", "cola", "ice cream", "pasta", "fruit"], accessible=True)
    assert_snapshot(
        "convenience_route_60x20.txt", render_ascii(convenience_layout, route, width=60, height=20)
    )


def test_hypermarket_route(hypermarket_layout: Layout) -> None:
    route = plan_route(
        hypermarket_layout, ["bananas", "pasta", "shampoo", "televisions", "milk", "ice-cream"]
    )
    assert_snapshot(
        "hypermarket_route_100x40.txt", render_ascii(hypermarket_layout, route, width=100, height=40)
    )


@pytest.mark.parametrize(("width", "height"), [(20, 6), (40, 12), (80, 24), (132, 50)])
def test_the_map_fits_the_box_exactly(
    demo_layout: Layout, demo_route: Route, width: int, height: int
) -> None:
    lines = render_ascii(demo_layout, demo_route, width=width, height=height).splitlines()
    assert len(lines) == height
    assert max(len(line) for line in lines) <= width
    assert all(line == line.rstrip() for line in lines)


def test_stops_are_numbered_on_the_map(demo_layout: Layout, demo_route: Route) -> None:
    body = "\n".join(render_ascii(demo_layout, demo_route, legend=False).splitlines())
    for number in range(1, len(demo_route.stops) + 1):
        assert str(number) in body
    assert "━" in body or "┃" in body


def test_a_box_too_small_is_refused(demo_layout: Layout) -> None:
    with pytest.raises(InvalidArgumentError, match="at least 20x6"):
        render_ascii(demo_layout, width=19)


def test_svg_is_well_formed_with_route_and_numbered_stops(demo_layout: Layout, demo_route: Route) -> None:
    svg = render_svg(demo_layout, demo_route)
    root = ET.fromstring(svg)
    namespace = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{namespace}svg"
    assert len(root.findall(f".//{namespace}polyline")) == 1
    labels = [text.text for text in root.iter(f"{namespace}text")]
    for number in range(1, len(demo_route.stops) + 1):
        assert str(number) in labels
    assert len(root.findall(f".//{namespace}rect")) == 1 + len(demo_layout.sections)
    assert render_svg(demo_layout) == render_svg(demo_layout), "output must be deterministic for docs"
