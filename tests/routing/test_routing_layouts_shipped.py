"""The layouts that ship: the demo store matches its planogram; all three load and are walkable."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from routing import (
    BUNDLED_LAYOUTS,
    EdgeTag,
    Layout,
    NodeKind,
    demo_layout_path,
    load_bundled_layout,
    load_layout,
)
from routing.graph import cost_graph
from routing.layouts.generate_hypermarket import build_hypermarket_toml
from tests.routing.conftest import DEMO_LAYOUT_PATH, REPO_ROOT

PLANOGRAM = REPO_ROOT / "simulators" / "demo_store" / "planogram.toml"
ROUTING_PACKAGE = REPO_ROOT / "routing"


@pytest.fixture(scope="module")
def planogram() -> dict[str, list[dict[str, object]]]:
    with PLANOGRAM.open("rb") as handle:
        return tomllib.load(handle)


def test_every_planogram_shelf_is_a_section_with_the_same_category_and_storage(
    demo_layout: Layout, planogram: dict[str, list[dict[str, object]]]
) -> None:
    shelves = {str(shelf["id"]): shelf for shelf in planogram["shelves"]}
    sections = {section.id: section for section in demo_layout.sections}
    assert set(sections) == set(shelves)
    for shelf_id, shelf in shelves.items():
        section = sections[shelf_id]
        assert section.categories == (shelf["category"],), shelf_id
        assert section.storage.value == shelf["storage"], shelf_id
        assert section.products == (shelf["product"],), shelf_id
        assert demo_layout.resolve_item(str(shelf["product"])) == shelf["category"]


def test_demo_zones_are_planogram_zones(
    demo_layout: Layout, planogram: dict[str, list[dict[str, object]]]
) -> None:
    planogram_zones = {str(zone["id"]) for zone in planogram["zones"]}
    assert {zone.id for zone in demo_layout.zones} <= planogram_zones
    assert {node.zone for node in demo_layout.nodes if node.zone} <= planogram_zones
    # Each aisle's shelves sit in the planogram zone of their shelf, so congestion there applies to them.
    for shelf in planogram["shelves"]:
        section = demo_layout.section(str(shelf["id"]))
        assert demo_layout.node(section.node).zone == shelf["zone"]


def test_demo_store_has_the_required_places_and_tags(demo_layout: Layout) -> None:
    def ids(kind: NodeKind) -> list[str]:
        return [node.id for node in demo_layout.nodes_of_kind(kind)]

    assert ids(NodeKind.ENTRANCE) == ["entrance"]
    assert ids(NodeKind.KIOSK) == ["kiosk-1", "kiosk-2"]
    assert ids(NodeKind.CHECKOUT) == ["checkout-1", "checkout-2", "checkout-3", "checkout-4"]
    assert ids(NodeKind.EXIT) == ["exit"]
    tags = [edge.tags for edge in demo_layout.edges]
    assert any(EdgeTag.ONE_WAY in t for t in tags)
    narrow_corridors = {edge.corridor for edge in demo_layout.edges if EdgeTag.NARROW in edge.tags}
    assert narrow_corridors == {"the cut-through"}
    assert [aisle.name for aisle in demo_layout.aisles[:8]] == [f"aisle {i}" for i in range(1, 9)]


@pytest.mark.parametrize("name", BUNDLED_LAYOUTS)
def test_bundled_layouts_load(name: str) -> None:
    layout = load_bundled_layout(name)
    assert layout.sections
    assert layout.nodes_of_kind(NodeKind.CHECKOUT)


def test_the_hypermarket_is_big(hypermarket_layout: Layout) -> None:
    assert len(hypermarket_layout.nodes) >= 1000
    numbered = {aisle.name for aisle in hypermarket_layout.aisles if aisle.name.startswith("aisle ")}
    assert len(numbered) == 60
    assert any(EdgeTag.STAIRS in edge.tags for edge in hypermarket_layout.edges)
    assert any(EdgeTag.STAFF_ONLY in edge.tags for edge in hypermarket_layout.edges)
    assert sum(len(hypermarket_layout.sections_for(c)) > 1 for c in hypermarket_layout.categories) > 100


def test_the_committed_hypermarket_is_what_the_generator_writes() -> None:
    committed = (ROUTING_PACKAGE / "layouts" / "hypermarket.toml").read_text(encoding="utf-8")
    assert build_hypermarket_toml() == committed, (
        "routing/layouts/hypermarket.toml is stale: run python -m routing.layouts.generate_hypermarket"
    )


@pytest.mark.parametrize("which", ["demo", *BUNDLED_LAYOUTS])
def test_every_section_is_reachable_on_an_accessible_route_from_every_start(which: str) -> None:
    # Stairs and narrow passages are allowed only where there is an accessible way round.
    layout = load_layout(DEMO_LAYOUT_PATH) if which == "demo" else load_bundled_layout(which)
    graph = cost_graph(layout, accessible=True)
    starts = layout.nodes_of_kind(NodeKind.ENTRANCE) + layout.nodes_of_kind(NodeKind.KIOSK)
    for start in starts:
        reachable = graph.reachable_from(start.id)
        assert {section.node for section in layout.sections} <= set(reachable), start.id


def test_demo_layout_path_finds_the_shipped_file() -> None:
    assert demo_layout_path().resolve() == DEMO_LAYOUT_PATH.resolve()


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_routing_imports_nothing_from_the_daemon_or_the_benchmarks() -> None:
    forbidden = {"edge", "sensors", "sync", "models", "kiosk", "simulators", "ortools"}
    for path in sorted(ROUTING_PACKAGE.rglob("*.py")):
        for module in _imported_modules(path):
            assert module.split(".")[0] not in forbidden, f"{path.relative_to(REPO_ROOT)} imports {module}"
