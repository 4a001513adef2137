"""Layout validation at hypermarket scale: same results as the old quadratic checks, and bounded metres.

The differential tests keep the old code here (a reader whose `has_problem_under` scans every problem,
as it did before it became a set lookup) and compare every problem and every loaded value with the
current reader, on the shipped layouts and on random layouts with random mistakes.
"""

from __future__ import annotations

import copy
import random
import tomllib
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import LayoutError, Storage, layout_file, parse_layout
from routing._toml_lines import scan_locations
from routing.layout_checks import MAX_METRES, repeated_values
from routing.layout_file import _LayoutReader
from routing.layouts import BUNDLED_LAYOUTS, demo_layout_path
from routing.layouts import __file__ as layouts_init
from tests.routing.routing_testkit import corridor_toml, grid_tables_toml, random_grid_tables, toml_tables


class _QuadraticReader(_LayoutReader):
    """The reader as it was: `has_problem_under` looks through every problem reported so far."""

    def has_problem_under(self, location: str) -> bool:
        return any(p.location == location or p.location.startswith(location + ".") for p in self.problems)


def _read(reader_type: type[_LayoutReader], text: str, source: str) -> tuple[object, ...]:
    reader = reader_type(source, scan_locations(text))
    layout = reader.read(tomllib.loads(text))
    if layout is None:
        return ("problems", reader.sorted_problems())
    return (
        "layout",
        layout.zones,
        layout.nodes,
        layout.edges,
        layout.aisles,
        layout.sections,
        layout.category_rules,
        layout.store_id,
        layout.store_name,
    )


def _assert_same_as_quadratic(text: str, source: str) -> tuple[object, ...]:
    current = _read(_LayoutReader, text, source)
    assert current == _read(_QuadraticReader, text, source)
    return current


def test_shipped_layouts_load_exactly_as_before() -> None:
    paths = [demo_layout_path(), *(Path(layouts_init).parent / f"{name}.toml" for name in BUNDLED_LAYOUTS)]
    for path in paths:
        result = _assert_same_as_quadratic(path.read_text(encoding="utf-8"), str(path))
        assert result[0] == "layout", path


def _mutate(tables: dict[str, list[dict[str, object]]], rng: random.Random) -> None:
    """One mistake of the kind a hand-edited layout has."""
    nodes, edges, sections, rules = tables["nodes"], tables["edges"], tables["sections"], tables["rules"]
    kind = rng.choice(
        [
            "x-without-y",
            "y-without-x",
            "text-coordinate",
            "duplicate-node",
            "unknown-edge-node",
            "unknown-section-node",
            "duplicate-section",
            "unknown-key",
            "bad-category",
            "drop-rule",
            "same-coordinates",
            "bad-storage",
            "cut-off",
        ]
    )
    section = rng.choice(sections)
    if kind == "x-without-y":
        section["x"] = 1.5
    elif kind == "y-without-x":
        section["y"] = 2.5
    elif kind == "text-coordinate":
        rng.choice(nodes)["x"] = "eight"
    elif kind == "duplicate-node":
        nodes.append(copy.deepcopy(rng.choice(nodes)))
    elif kind == "unknown-edge-node":
        rng.choice(edges)["to"] = "nowhere"
    elif kind == "unknown-section-node":
        section["node"] = "nowhere"
    elif kind == "duplicate-section":
        sections.append(copy.deepcopy(section))
    elif kind == "unknown-key":
        section["zome"] = "grocery"
    elif kind == "bad-category":
        section["categories"] = ["Ice Cream"]
    elif kind == "drop-rule" and rules:
        rules.pop(rng.randrange(len(rules)))
    elif kind == "same-coordinates":
        edge = rng.choice(edges)
        edge.pop("length", None)
        source = next((node for node in nodes if node["id"] == edge["from"]), None)
        target = next((node for node in nodes if node["id"] == edge["to"]), None)
        if source is not None and target is not None:  # an earlier mistake may have cut the edge's end
            target["x"], target["y"] = source["x"], source["y"]
    elif kind == "bad-storage":
        section["storage"] = "warm"
    elif kind == "cut-off":
        edges.pop(rng.randrange(len(edges)))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_random_layouts_with_random_mistakes_validate_exactly_as_before(seed: int, mistakes: int) -> None:
    rng = random.Random(seed)
    tables = random_grid_tables(seed, rows=rng.randint(2, 4), cols=rng.randint(2, 5), n_categories=8)
    for _ in range(mistakes):
        _mutate(tables, rng)
    _assert_same_as_quadratic(grid_tables_toml(tables), f"grid-{seed}.toml")


def test_thousands_of_sections_with_x_but_no_y_are_each_reported_once() -> None:
    sections: list[Mapping[str, object]] = [
        {"id": f"s{i}", "node": "b", "categories": [f"c{i}"], "x": 3.0} for i in range(2_000)
    ]
    text = corridor_toml(sections=sections)
    result = _assert_same_as_quadratic(text, "big.toml")
    assert result[0] == "problems"
    problems = result[1]
    assert isinstance(problems, tuple)
    assert len(problems) == 2_000
    assert str(problems[0]).startswith(
        "big.toml: sections[0]: give both 'x' and 'y' for the shelf position, or neither"
    )


def test_a_long_aisle_with_repeated_members_reports_each_once_as_the_quadratic_count_did() -> None:
    # One aisle of 3,000 members, three of them listed again further on.
    members = [f"n{i}" for i in range(3_000)]
    members += ["n7", "n1500", "n7", "n2999"]
    nodes = [{"id": f"n{i}", "x": 100, "y": i + 1} for i in range(3_000)]
    text = corridor_toml(
        extra=toml_tables("nodes", nodes) + toml_tables("aisles", [{"id": "A", "nodes": members}])
    )
    result = _read(_LayoutReader, text, "aisle.toml")

    def quadratic(items: list[tuple[str, str]]) -> set[str]:
        return {value for _, value in items if sum(1 for _, other in items if other == value) > 1}

    with mock.patch.object(layout_file, "repeated_values", quadratic):
        assert _read(_LayoutReader, text, "aisle.toml") == result
    assert result[0] == "problems"
    problems = result[1]
    assert isinstance(problems, tuple)
    assert [str(problem).split(" (line")[0] for problem in problems] == [
        "aisle.toml: aisles[0].nodes[7]: node 'n7' appears more than once in this aisle",
        "aisle.toml: aisles[0].nodes[1500]: node 'n1500' appears more than once in this aisle",
        "aisle.toml: aisles[0].nodes[2999]: node 'n2999' appears more than once in this aisle",
    ]


@given(st.lists(st.tuples(st.just("loc"), st.sampled_from(["a", "b", "c", "d", "e"])), max_size=12))
def test_repeated_values_are_those_the_quadratic_count_found(members: list[tuple[str, str]]) -> None:
    quadratic = {node_id for _, node_id in members if sum(1 for _, n in members if n == node_id) > 1}
    assert repeated_values(members) == quadratic


def test_nodes_at_plus_minus_1e308_are_an_error_naming_the_file_and_each_node() -> None:
    # Their straight-line distance overflows to an infinite edge length, which used to be accepted.
    text = (
        corridor_toml()
        .replace("x = 0\ny = 0", "x = -1e308\ny = 0")
        .replace("x = 12\ny = 0", "x = 1e308\ny = 0")
    )
    with pytest.raises(LayoutError) as caught:
        parse_layout(text, "far.toml")
    found = [str(problem) for problem in caught.value.problems]
    lines = text.splitlines()
    west, east = lines.index("x = -1e308") + 1, lines.index("x = 1e308") + 1
    assert found == [
        "far.toml: nodes[0].x: x of 'entrance' = -1e+308 is out of range: a layout is in metres, "
        f"and no coordinate or length may exceed 1e+09 in size (line {west})",
        "far.toml: nodes[5].x: x of 'checkout' = 1e+308 is out of range: a layout is in metres, "
        f"and no coordinate or length may exceed 1e+09 in size (line {east})",
    ]


def test_lengths_and_shelf_positions_are_bounded_too_and_the_bound_itself_loads() -> None:
    far_edge = corridor_toml().replace('from = "b"\nto = "c"', 'from = "b"\nto = "c"\nlength = 1e300')
    with pytest.raises(LayoutError) as far:
        parse_layout(far_edge)
    assert [problem.location for problem in far.value.problems] == ["edges[2].length"]
    edge = f'from = "b"\nto = "c"\nlength = {MAX_METRES!r}'
    layout = parse_layout(corridor_toml().replace('from = "b"\nto = "c"', edge))
    assert max(edge.length_m for edge in layout.edges) == MAX_METRES
    shelf = [{"id": "s", "node": "b", "categories": ["bread"], "x": 4.0, "y": -2e9}]
    with pytest.raises(LayoutError) as away:
        parse_layout(corridor_toml(sections=shelf))
    assert [problem.location for problem in away.value.problems] == ["sections[0].y"]
    assert "y of 's' = -2e+09 is out of range" in away.value.problems[0].message
    assert parse_layout(corridor_toml()).sections_for("milk")[0].storage is Storage.CHILLED
