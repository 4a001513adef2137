"""Layout loading: every kind of problem is reported, with where it is in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing import LayoutError, NodeKind, Storage, load_layout, parse_layout
from tests.routing.routing_testkit import corridor_toml, toml_tables


def problems(text: str, source: str = "layout.toml") -> list[str]:
    with pytest.raises(LayoutError) as caught:
        parse_layout(text, source)
    assert caught.value.problems, "a LayoutError must carry its problems"
    return [str(problem) for problem in caught.value.problems]


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


def test_the_corridor_fixture_is_valid() -> None:
    layout = parse_layout(corridor_toml())
    assert [node.id for node in layout.nodes_of_kind(NodeKind.ENTRANCE)] == ["entrance"]
    assert layout.sections_for("milk")[0].storage is Storage.CHILLED


def test_unknown_node_in_an_edge_names_the_edge_index_and_the_line() -> None:
    # The example from the issue: the 13th edge points at a node that does not exist.
    nodes = [
        {"id": "entrance", "x": 0, "y": 0, "kind": "entrance"},
        {"id": "checkout", "x": 30, "y": 0, "kind": "checkout"},
    ]
    nodes += [{"id": f"n{i}", "x": 2.0 * i, "y": 2.0} for i in range(12)]
    edges = [{"from": "entrance", "to": "n0", "tags": ["one_way"]}]
    edges += [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(11)]
    edges += [{"from": "n11", "to": "A9-s"}, {"from": "n11", "to": "checkout"}]
    sections = [{"id": "s", "node": "n3", "categories": ["bread"]}]
    text = "\n".join(
        [toml_tables("nodes", nodes), toml_tables("edges", edges), toml_tables("sections", sections)]
    )
    found = only_problem(text)
    line = line_of(text, 'to = "A9-s"')
    assert found == f"layout.toml: edges[12].to: unknown node 'A9-s' (line {line})"


def test_the_file_name_given_is_the_one_reported(tmp_path: Path) -> None:
    path = tmp_path / "store-17.toml"
    path.write_text(corridor_toml().replace('to = "b"', 'to = "bb"'), encoding="utf-8")
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert str(caught.value.problems[0]).startswith(f"{path}: edges[1].to: unknown node 'bb'")
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_layout_error(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="cannot read the layout file"):
        load_layout(tmp_path / "nope.toml")


def test_invalid_toml_reports_line_and_column() -> None:
    found = only_problem('[[nodes]]\nid = "a"\nx = = 1\n')
    assert found.startswith("layout.toml: not valid TOML:")
    assert "line 3" in found


def test_unknown_top_level_key() -> None:
    found = only_problem(corridor_toml(extra="[shelves]\nx = 1\n"))
    assert "layout.toml: shelves: unknown key 'shelves'" in found


def test_unknown_key_in_a_table_catches_typos() -> None:
    text = corridor_toml().replace('kind = "aisle"', 'kind = "aisle"\nzome = "grocery"', 1)
    found = only_problem(text)
    assert found.startswith(
        "layout.toml: nodes[2].zome: unknown key 'zome' (expected one of: id, kind, name, x, y, zone)"
    )
    assert found.endswith(f"(line {line_of(text, 'zome')})")


def test_a_top_level_array_after_a_table_header_gets_a_hint() -> None:
    text = '[store]\nid = "x"\nnodes = [{ id = "a", x = 0, y = 0 }]\n'
    found = problems(text)
    assert any(
        p.startswith("layout.toml: store.nodes: unknown key 'nodes'")
        and "before the first [table] header" in p
        for p in found
    ), found


def test_missing_required_key() -> None:
    text = corridor_toml().replace("x = 4\n", "", 1)
    assert only_problem(text).startswith("layout.toml: nodes[2]: missing required key 'x'")


def test_wrong_type() -> None:
    text = corridor_toml().replace("x = 4\n", 'x = "four"\n', 1)
    assert only_problem(text).startswith("layout.toml: nodes[2].x: expected a number, got string 'four'")


def test_a_boolean_is_not_a_number() -> None:
    text = corridor_toml().replace("x = 4\n", "x = true\n", 1)
    assert only_problem(text).startswith("layout.toml: nodes[2].x: expected a number, got boolean true")


def test_duplicate_node_id() -> None:
    text = corridor_toml().replace('id = "c"', 'id = "b"', 1)
    found = problems(text)
    assert found[0].startswith("layout.toml: nodes[3].id: duplicate node id 'b' (first defined at nodes[2])")


def test_unknown_node_kind() -> None:
    text = corridor_toml().replace('kind = "aisle"', 'kind = "lift"', 1)
    assert only_problem(text).startswith("layout.toml: nodes[2].kind: unknown node kind 'lift'")


def test_unknown_zone() -> None:
    text = corridor_toml().replace('kind = "aisle"', 'kind = "aisle"\nzone = "bakery"', 1)
    assert only_problem(text).startswith("layout.toml: nodes[2].zone: unknown zone 'bakery'")


def test_declared_zone_is_accepted() -> None:
    text = corridor_toml(extra='[[zones]]\nid = "bakery"\n').replace(
        'kind = "aisle"', 'kind = "aisle"\nzone = "bakery"', 1
    )
    assert parse_layout(text).node("b").zone == "bakery"


def test_edge_from_a_node_to_itself() -> None:
    text = corridor_toml().replace('from = "b"\nto = "c"', 'from = "b"\nto = "b"')
    found = problems(text)
    assert found[0].startswith("layout.toml: edges[2].to: edge from 'b' to itself")


@pytest.mark.parametrize("length", ["0", "-3.5"])
def test_non_positive_length(length: str) -> None:
    text = corridor_toml().replace('from = "b"\nto = "c"', f'from = "b"\nto = "c"\nlength = {length}')
    found = problems(text)
    assert found[0].startswith(
        f"layout.toml: edges[2].length: length must be positive, got {float(length):g}"
    )
    assert found[0].endswith(f"(line {line_of(text, f'length = {length}')})")


def test_zero_length_from_shared_coordinates() -> None:
    text = corridor_toml().replace("x = 8\ny = 2", "x = 4\ny = 2", 1)
    found = only_problem(text)
    assert found.startswith(
        "layout.toml: edges[2]: non-positive length: nodes 'b' and 'c' share coordinates (4, 2)"
    )


def test_unknown_tag() -> None:
    text = corridor_toml().replace(
        'from = "b"\nto = "c"', 'from = "b"\nto = "c"\ntags = ["narrow", "slippery"]'
    )
    assert only_problem(text).startswith("layout.toml: edges[2].tags[1]: unknown tag 'slippery'")


def test_duplicate_edge() -> None:
    text = corridor_toml(extra=toml_tables("edges", [{"from": "c", "to": "b"}]))
    assert only_problem(text).startswith(
        "layout.toml: edges[5]: duplicate edge between 'c' and 'b' (already declared at edges[2])"
    )


def test_opposite_one_way_edges_are_not_duplicates() -> None:
    one_ways = [{"from": "b", "to": "d", "tags": ["one_way"]}, {"from": "d", "to": "b", "tags": ["one_way"]}]
    assert len(parse_layout(corridor_toml(extra=toml_tables("edges", one_ways))).edges) == 7


def test_aisle_with_an_unknown_node() -> None:
    aisle = {"id": "A1", "name": "aisle 1", "nodes": ["a", "b", "zz"]}
    assert only_problem(corridor_toml(extra=toml_tables("aisles", [aisle]))).startswith(
        "layout.toml: aisles[0].nodes[2]: unknown node 'zz'"
    )


def test_aisle_needs_two_nodes_and_no_repeats() -> None:
    aisles = [{"id": "A1", "nodes": ["a"]}, {"id": "A2", "nodes": ["a", "d", "a"]}]
    found = problems(corridor_toml(extra=toml_tables("aisles", aisles)))
    assert found[0].startswith("layout.toml: aisles[0].nodes: an aisle needs at least two nodes")
    assert found[1].startswith(
        "layout.toml: aisles[1].nodes[0]: node 'a' appears more than once in this aisle"
    )


def test_aisle_edges_are_checked_for_zero_length_too() -> None:
    extra = toml_tables("nodes", [{"id": "b2", "x": 4, "y": 2}]) + toml_tables(
        "aisles", [{"id": "A", "nodes": ["b", "b2"]}]
    )
    assert only_problem(corridor_toml(extra=extra)).startswith(
        "layout.toml: aisles[0].nodes[1]: non-positive length: nodes 'b' and 'b2' share coordinates"
    )


def test_section_with_an_unknown_node() -> None:
    sections = [{"id": "s", "node": "nowhere", "categories": ["bread"]}]
    assert only_problem(corridor_toml(sections=sections)).startswith(
        "layout.toml: sections[0].node: unknown node 'nowhere'"
    )


def test_section_storage_must_be_known() -> None:
    sections = [{"id": "s", "node": "b", "categories": ["bread"], "storage": "warm"}]
    assert only_problem(corridor_toml(sections=sections)).startswith(
        "layout.toml: sections[0].storage: unknown storage 'warm' (known: ambient, chilled, frozen)"
    )


def test_section_categories_are_required_and_non_empty() -> None:
    sections: list[dict[str, object]] = [
        {"id": "s1", "node": "b"},
        {"id": "s2", "node": "c", "categories": []},
    ]
    found = problems(corridor_toml(sections=sections))
    assert found[0].startswith("layout.toml: sections[0]: missing required key 'categories'")
    assert found[1].startswith("layout.toml: sections[1].categories: a section needs at least one category")


def test_category_names_are_canonical() -> None:
    sections = [{"id": "s", "node": "b", "categories": ["Ice Cream"]}]
    assert only_problem(corridor_toml(sections=sections)).startswith(
        "layout.toml: sections[0].categories[0]: category 'Ice Cream' must be lower-case words joined by "
        "hyphens (e.g. 'ice-cream')"
    )


def test_category_listed_twice_in_one_section() -> None:
    sections = [{"id": "s", "node": "b", "categories": ["bread", "bread"]}]
    assert only_problem(corridor_toml(sections=sections)).startswith(
        "layout.toml: sections[0].categories[1]: category 'bread' is listed twice"
    )


def test_shelf_position_needs_both_coordinates() -> None:
    sections = [{"id": "s", "node": "b", "categories": ["bread"], "x": 3}]
    assert only_problem(corridor_toml(sections=sections)).startswith(
        "layout.toml: sections[0]: give both 'x' and 'y' for the shelf position, or neither"
    )


def test_duplicate_section_id() -> None:
    sections = [
        {"id": "s", "node": "b", "categories": ["bread"]},
        {"id": "s", "node": "c", "categories": ["milk"]},
    ]
    assert only_problem(corridor_toml(sections=sections)).startswith(
        "layout.toml: sections[1].id: duplicate section id 's' (first defined at sections[0])"
    )


def test_category_in_two_places_without_a_rule() -> None:
    sections = [
        {"id": "s1", "node": "b", "categories": ["milk"]},
        {"id": "s2", "node": "c", "categories": ["milk"]},
    ]
    text = corridor_toml(sections=sections)
    found = only_problem(text)
    assert found.startswith(
        "layout.toml: sections[1].categories[0]: category 'milk' is also sold in section 's1' (sections[0]) "
        'without a rule; add [categories.milk] with placement = "shortest"'
    )
    assert found.endswith(f"(line {line_of(text, 'milk', 2)})")


def test_category_in_two_places_with_a_rule_loads() -> None:
    sections = [
        {"id": "s1", "node": "b", "categories": ["milk"]},
        {"id": "s2", "node": "c", "categories": ["milk"]},
    ]
    layout = parse_layout(
        corridor_toml(sections=sections, extra='[categories.milk]\nplacement = "shortest"\n')
    )
    assert [section.id for section in layout.sections_for("milk")] == ["s1", "s2"]


def test_rule_for_a_category_nobody_sells_and_unknown_placement() -> None:
    found = problems(corridor_toml(extra='[categories.caviar]\nplacement = "cheapest"\n'))
    assert found[0].startswith("layout.toml: categories.caviar: no section sells category 'caviar'")
    assert found[1].startswith("layout.toml: categories.caviar.placement: unknown placement 'cheapest'")


def test_alias_that_names_another_category() -> None:
    text = corridor_toml(extra='[categories.bread]\naliases = ["loaf", "milk"]\n')
    assert only_problem(text).startswith(
        "layout.toml: categories.bread.aliases[1]: 'milk' is the name of category 'milk', so it cannot mean 'bread'"
    )


def test_name_meaning_two_categories() -> None:
    text = corridor_toml(
        extra='[categories.bread]\naliases = ["breakfast"]\n[categories.milk]\naliases = ["Breakfast"]\n'
    )
    assert only_problem(text).startswith(
        "layout.toml: categories.milk.aliases[0]: 'Breakfast' would mean both 'bread' (categories.bread.aliases[0]) "
        "and 'milk'"
    )


def test_disconnected_section_not_reachable_from_the_entrance() -> None:
    extra = toml_tables("nodes", [{"id": "island", "x": 20, "y": 20}])
    sections = [
        {"id": "s-bread", "node": "b", "categories": ["bread"]},
        {"id": "lost", "node": "island", "categories": ["tea"]},
    ]
    assert only_problem(corridor_toml(extra=extra, sections=sections)).startswith(
        "layout.toml: sections[1].node: disconnected section 'lost': node 'island' cannot be reached from any "
        "entrance without staff-only edges"
    )


def test_a_staff_only_door_does_not_connect_a_section() -> None:
    extra = toml_tables("nodes", [{"id": "back", "x": 4, "y": 6}]) + toml_tables(
        "edges", [{"from": "b", "to": "back", "tags": ["staff_only"]}]
    )
    sections = [{"id": "s", "node": "back", "categories": ["tea"]}]
    assert "disconnected section 's'" in only_problem(corridor_toml(extra=extra, sections=sections))


def test_disconnected_section_with_no_way_to_a_checkout() -> None:
    extra = toml_tables("nodes", [{"id": "pit", "x": 4, "y": 6}]) + toml_tables(
        "edges", [{"from": "b", "to": "pit", "tags": ["one_way"]}]
    )
    sections = [{"id": "trap", "node": "pit", "categories": ["tea"]}]
    assert only_problem(corridor_toml(extra=extra, sections=sections)).startswith(
        "layout.toml: sections[0].node: disconnected section 'trap': no checkout can be reached from node 'pit'"
    )


def test_kiosk_that_cannot_reach_a_checkout() -> None:
    extra = toml_tables("nodes", [{"id": "kiosk-9", "x": 20, "y": 20, "kind": "kiosk"}])
    assert only_problem(corridor_toml(extra=extra)).startswith(
        "layout.toml: nodes[6]: no checkout can be reached from kiosk 'kiosk-9'"
    )


def test_a_layout_needs_an_entrance_and_a_checkout() -> None:
    text = (
        corridor_toml()
        .replace('kind = "entrance"', 'kind = "walkway"')
        .replace('kind = "checkout"', 'kind = "walkway"')
    )
    found = problems(text)
    assert any(p.startswith("layout.toml: nodes: no node has kind 'entrance'") for p in found)
    assert any(p.startswith("layout.toml: nodes: no node has kind 'checkout'") for p in found)


def test_every_problem_is_reported_in_file_order() -> None:
    text = (
        corridor_toml()
        .replace('to = "b"', 'to = "bb"', 1)
        .replace("x = 8\n", 'x = "eight"\n', 1)
        .replace('storage = "chilled"', 'storage = "lukewarm"')
    )
    found = problems(text)
    assert [p.split(":")[1].strip() for p in found] == ["nodes[3].x", "edges[1].to", "sections[1].storage"]
    lines = [int(p.rsplit("(line ", 1)[1].rstrip(")")) for p in found]
    assert lines == sorted(lines)
    with pytest.raises(LayoutError, match=r"3 problems in store layout layout\.toml"):
        parse_layout(text)


def test_inline_table_style_gets_line_numbers_too() -> None:
    text = (
        "nodes = [\n"
        '  { id = "entrance", x = 0, y = 0, kind = "entrance" },\n'
        '  { id = "a", x = 0, y = 2 },\n'
        '  { id = "checkout", x = 2, y = 0, kind = "checkout" },\n'
        "]\n"
        "edges = [\n"
        '  { from = "entrance", to = "a" },\n'
        '  { from = "a", to = "checkout", tags = ["one-way"] },\n'
        "]\n"
    )
    assert (
        only_problem(text)
        == "layout.toml: edges[1].tags[0]: unknown tag 'one-way' (known tags: stairs, narrow, one_way, staff_only) (line 8)"
    )
