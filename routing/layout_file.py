"""Layout files: reading the TOML layout of one store into a validated `Layout`.

A layout is one TOML file per store (format in docs/routing.md). Loading validates the whole file and
raises one `LayoutError` listing every problem with its location, because a store's IT person fixes a
file faster from one complete report than from a fix-one-rerun loop.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from routing._toml_lines import scan_locations
from routing.errors import LayoutError, LayoutProblem
from routing.layout import (
    Aisle,
    CategoryRule,
    Edge,
    Layout,
    Node,
    NodeKind,
    Placement,
    Section,
    Storage,
    Zone,
    normalize_name,
)
from routing.layout_checks import (
    AISLE_KEYS,
    EDGE_KEYS,
    NODE_KEYS,
    RULE_KEYS,
    SECTION_KEYS,
    STORE_KEYS,
    TOP_LEVEL_KEYS,
    ZONE_KEYS,
    LayoutValidator,
    repeated_values,
    type_name,
)

__all__ = ["MAX_NESTING", "load_layout", "parse_layout"]

# Arrays and tables inside each other: a layout needs 4 (`[[sections]]` -> its `categories` array), so
# anything deeper is not a layout. tomllib parses nesting by recursion and runs out of stack somewhere
# around 400 to 1000 levels, depending on the caller: both cases get the same one-line problem.
MAX_NESTING: Final = 16
_TOO_DEEP = f"not a layout: arrays and tables nested more than {MAX_NESTING} levels deep"


def load_layout(path: str | Path) -> Layout:
    """Read and validate a layout file; `LayoutError` lists every problem found."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = LayoutProblem(source, "", f"cannot read the layout file: {exc}")
        raise LayoutError(source, (problem,)) from exc
    return parse_layout(text, source)


def parse_layout(text: str, source: str = "layout.toml") -> Layout:
    """Validate the TOML text of a layout; `source` names the file in problem reports."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = LayoutProblem(source, "", f"not valid TOML: {exc}")
        raise LayoutError(source, (problem,)) from exc
    except RecursionError:
        raise LayoutError(source, (LayoutProblem(source, "", _TOO_DEEP),)) from None
    if _nesting_exceeds(document, MAX_NESTING):
        raise LayoutError(source, (LayoutProblem(source, "", _TOO_DEEP),))
    reader = _LayoutReader(source, scan_locations(text))
    layout = reader.read(document)
    if reader.problems or layout is None:
        raise LayoutError(source, reader.sorted_problems())
    return layout


def _nesting_exceeds(document: Mapping[str, object], limit: int) -> bool:
    """Whether arrays and tables nest more than `limit` deep (walked without recursion)."""
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return False


class _LayoutReader(LayoutValidator):
    """Reads a parsed TOML document into a `Layout`; the checks and their messages are inherited."""

    def read(self, document: Mapping[str, object]) -> Layout | None:
        self.unknown_keys(document, "", TOP_LEVEL_KEYS)
        store_id, store_name = self.read_store(document)
        zones = self.read_zones(document)
        nodes = self.read_nodes(document, {zone.id for zone in zones})
        node_ids = {node.id: node for node in nodes}
        aisles = self.read_aisles(document, node_ids)
        edges = self.read_edges(document, node_ids, aisles)
        sections = self.read_sections(document, node_ids)
        rules = self.read_category_rules(document, sections)
        self.check_categories(sections, rules)
        self.check_names(sections, rules)
        self.check_reachability(nodes, edges, sections)
        if self.problems:
            return None
        return Layout(
            source=self.source,
            store_id=store_id,
            store_name=store_name,
            zones=tuple(zones),
            nodes=tuple(nodes),
            edges=tuple(edges),
            aisles=tuple(aisle for aisle, _ in aisles),
            sections=tuple(section for section, _ in sections),
            category_rules=tuple(rules),
        )

    def read_store(self, document: Mapping[str, object]) -> tuple[str, str]:
        default = Path(self.source).stem
        store = document.get("store", {})
        if not isinstance(store, dict):
            self.problem("store", f"expected a table, got {type_name(store)}")
            return default, default
        self.unknown_keys(store, "store", STORE_KEYS)
        store_id = self.text(store, "store", "id", required=False) or default
        name = self.text(store, "store", "name", required=False) or store_id
        return store_id, name

    def read_zones(self, document: Mapping[str, object]) -> list[Zone]:
        zones: list[Zone] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "zones"):
            self.unknown_keys(entry, location, ZONE_KEYS)
            zone_id = self.identifier(entry, location, seen, "zone")
            name = self.text(entry, location, "name", required=False)
            if zone_id is not None:
                zones.append(Zone(zone_id, name or zone_id))
        return zones

    def read_nodes(self, document: Mapping[str, object], zone_ids: set[str]) -> list[Node]:
        nodes: list[Node] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "nodes"):
            self.unknown_keys(entry, location, NODE_KEYS)
            if isinstance(entry.get("id"), str):
                self.declared_node_ids.add(str(entry["id"]))
            node_id = self.identifier(entry, location, seen, "node")
            x = self.number(entry, location, "x", required=True)
            y = self.number(entry, location, "y", required=True)
            kind = NodeKind.WALKWAY
            kind_name = self.text(entry, location, "kind", required=False)
            if kind_name is not None:
                try:
                    kind = NodeKind(kind_name)
                except ValueError:
                    known = ", ".join(k.value for k in NodeKind)
                    self.problem(
                        f"{location}.kind", f"unknown node kind {kind_name!r} (known kinds: {known})"
                    )
            zone = self.text(entry, location, "zone", required=False)
            if zone is not None and zone not in zone_ids:
                self.problem(f"{location}.zone", f"unknown zone {zone!r} (declare it under [[zones]])")
            name = self.text(entry, location, "name", required=False)
            if node_id is not None and x is not None and y is not None:
                nodes.append(Node(node_id, x, y, kind, zone, name))
        for kind, why in (
            (NodeKind.ENTRANCE, "a route needs somewhere to start"),
            (NodeKind.CHECKOUT, "a route needs somewhere to end"),
        ):
            if nodes and not any(node.kind is kind for node in nodes):
                self.problem("nodes", f"no node has kind {kind.value!r}; {why}")
        if not nodes and not self.problems:
            self.problem("nodes", "the layout has no nodes")
        return nodes

    def read_aisles(
        self, document: Mapping[str, object], nodes: Mapping[str, Node]
    ) -> list[tuple[Aisle, str]]:
        aisles: list[tuple[Aisle, str]] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "aisles"):
            self.unknown_keys(entry, location, AISLE_KEYS)
            aisle_id = self.identifier(entry, location, seen, "aisle")
            name = self.text(entry, location, "name", required=False)
            tags = self.tags(entry, location)
            members = self.text_list(entry, location, "nodes", required=True)
            valid = True
            for member_location, node_id in members:
                if node_id not in nodes:
                    if node_id not in self.declared_node_ids:
                        self.problem(member_location, f"unknown node {node_id!r}")
                    valid = False
            if "nodes" in entry and len(members) < 2:
                self.problem(f"{location}.nodes", "an aisle needs at least two nodes")
                valid = False
            repeated = repeated_values(members)
            for member_location, node_id in members:
                if node_id in repeated:
                    self.problem(member_location, f"node {node_id!r} appears more than once in this aisle")
                    repeated.discard(node_id)
                    valid = False
            if aisle_id is not None and valid:
                aisle = Aisle(aisle_id, name or aisle_id, tuple(node_id for _, node_id in members), tags)
                aisles.append((aisle, location))
        return aisles

    def read_edges(
        self,
        document: Mapping[str, object],
        nodes: Mapping[str, Node],
        aisles: list[tuple[Aisle, str]],
    ) -> list[Edge]:
        edges: list[Edge] = []
        for location, entry in self.entries(document, "edges"):
            self.unknown_keys(entry, location, EDGE_KEYS)
            source = self.node_ref(entry, location, "from", nodes)
            target = self.node_ref(entry, location, "to", nodes)
            length = self.number(entry, location, "length", required=False)
            tags = self.tags(entry, location)
            name = self.text(entry, location, "name", required=False)
            if source is None or target is None:
                continue
            if source == target:
                self.problem(f"{location}.to", f"edge from {source!r} to itself")
                continue
            if length is not None and length <= 0:
                self.problem(f"{location}.length", f"length must be positive, got {length:g}")
                continue
            edge_length = self.edge_length(nodes[source], nodes[target], length, location)
            if edge_length is not None:
                edges.append(Edge(source, target, edge_length, tags, name, location))
        for aisle, location in aisles:
            for index, (source, target) in enumerate(zip(aisle.nodes, aisle.nodes[1:], strict=False)):
                member = f"{location}.nodes[{index + 1}]"
                edge_length = self.edge_length(nodes[source], nodes[target], None, member)
                if edge_length is not None:
                    edges.append(Edge(source, target, edge_length, aisle.tags, aisle.name, location))
        self.check_duplicate_edges(edges)
        return edges

    def edge_length(self, source: Node, target: Node, length: float | None, location: str) -> float | None:
        if length is not None:
            return length
        straight = math.hypot(target.x - source.x, target.y - source.y)
        if straight <= 0:
            self.problem(
                location,
                f"non-positive length: nodes {source.id!r} and {target.id!r} share coordinates "
                f"({source.x:g}, {source.y:g}); give the edge a positive 'length'",
            )
            return None
        return straight

    def read_sections(
        self, document: Mapping[str, object], nodes: Mapping[str, Node]
    ) -> list[tuple[Section, str]]:
        sections: list[tuple[Section, str]] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "sections"):
            self.unknown_keys(entry, location, SECTION_KEYS)
            section_id = self.identifier(entry, location, seen, "section")
            node_id = self.node_ref(entry, location, "node", nodes)
            categories = self.text_list(entry, location, "categories", required=True)
            if "categories" in entry and not categories and isinstance(entry["categories"], list):
                self.problem(f"{location}.categories", "a section needs at least one category")
            names: list[str] = []
            for category_location, category in categories:
                if normalize_name(category) != category:
                    self.problem(
                        category_location,
                        f"category {category!r} must be lower-case words joined by hyphens "
                        f"(e.g. {normalize_name(category)!r})",
                    )
                elif category in names:
                    self.problem(category_location, f"category {category!r} is listed twice")
                else:
                    names.append(category)
            storage = Storage.AMBIENT
            storage_name = self.text(entry, location, "storage", required=False)
            if storage_name is not None:
                try:
                    storage = Storage(storage_name)
                except ValueError:
                    known = ", ".join(s.value for s in Storage)
                    self.problem(f"{location}.storage", f"unknown storage {storage_name!r} (known: {known})")
            x = self.number(entry, location, "x", required=False)
            y = self.number(entry, location, "y", required=False)
            if (x is None) != (y is None) and not self.has_problem_under(location):
                self.problem(location, "give both 'x' and 'y' for the shelf position, or neither")
            name = self.text(entry, location, "name", required=False)
            products = tuple(
                product for _, product in self.text_list(entry, location, "products", required=False)
            )
            if section_id is not None and node_id is not None and names:
                position = (x, y) if x is not None and y is not None else None
                section = Section(section_id, node_id, tuple(names), storage, position, name, products)
                sections.append((section, location))
        return sections

    def read_category_rules(
        self, document: Mapping[str, object], sections: list[tuple[Section, str]]
    ) -> list[CategoryRule]:
        table = document.get("categories", {})
        if not isinstance(table, dict):
            self.problem("categories", f"expected a table of category rules, got {type_name(table)}")
            return []
        sold = {category for section, _ in sections for category in section.categories}
        rules: list[CategoryRule] = []
        for name, entry in table.items():
            location = f"categories.{name}"
            if not isinstance(entry, dict):
                self.problem(location, f"expected a table, got {type_name(entry)}")
                continue
            self.unknown_keys(entry, location, RULE_KEYS)
            if name not in sold:
                self.problem(location, f"no section sells category {name!r}")
            placement = Placement.SINGLE
            placement_name = self.text(entry, location, "placement", required=False)
            if placement_name is not None:
                try:
                    placement = Placement(placement_name)
                except ValueError:
                    known = ", ".join(p.value for p in Placement)
                    self.problem(
                        f"{location}.placement", f"unknown placement {placement_name!r} (known: {known})"
                    )
            aliases = tuple(alias for _, alias in self.text_list(entry, location, "aliases", required=False))
            rules.append(CategoryRule(name, placement, aliases))
        return rules
