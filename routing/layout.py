"""Store layouts: the walkable graph of one store, its shelves and what they sell.

A layout is one TOML file per store (format in docs/routing.md). Coordinates are metres on the floor
plan, x towards the east wall and y towards the back wall, so "left" and "right" in directions follow
from the coordinates. Loading validates the whole file and raises one `LayoutError` listing every
problem with its location, because a store's IT person fixes a file faster from one complete report
than from a fix-one-rerun loop.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from routing._toml_lines import line_for, scan_locations
from routing.errors import LayoutError, LayoutProblem, UnknownNodeError

__all__ = [
    "Aisle",
    "CategoryRule",
    "Edge",
    "EdgeTag",
    "Layout",
    "Node",
    "NodeKind",
    "Placement",
    "Section",
    "Storage",
    "Zone",
    "load_layout",
    "normalize_name",
    "parse_layout",
]


class Storage(StrEnum):
    """How a section keeps its goods; also the precedence class of a stop (ambient first, frozen last)."""

    AMBIENT = "ambient"
    CHILLED = "chilled"
    FROZEN = "frozen"

    @property
    def rank(self) -> int:
        """Position in the pick order: frozen goods are collected last so they stay cold."""
        return _STORAGE_RANK[self]


_STORAGE_RANK: Final = {Storage.AMBIENT: 0, Storage.CHILLED: 1, Storage.FROZEN: 2}


class EdgeTag(StrEnum):
    STAIRS = "stairs"
    NARROW = "narrow"  # too narrow for a wheelchair or a pushchair
    ONE_WAY = "one_way"  # walkable only from `from` to `to` (entrance gates, tills)
    STAFF_ONLY = "staff_only"  # never part of a shopper's route


#: Tags that take an edge out of an accessible route.
INACCESSIBLE_TAGS: Final = frozenset({EdgeTag.STAIRS, EdgeTag.NARROW})


class NodeKind(StrEnum):
    ENTRANCE = "entrance"
    EXIT = "exit"
    CHECKOUT = "checkout"
    KIOSK = "kiosk"
    AISLE_END = "aisle_end"
    AISLE = "aisle"  # a point along an aisle, usually where shelves are picked from
    WALKWAY = "walkway"  # anything else a shopper walks through


class Placement(StrEnum):
    """What to do with a category sold in several places."""

    SINGLE = "single"  # the default: a category must be in one place
    SHORTEST = "shortest"  # any of its places will do; the planner picks the one giving the shortest walk


@dataclass(frozen=True, slots=True)
class Zone:
    """A footfall zone: congestion reported for it raises the cost of walking through it."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    x: float
    y: float
    kind: NodeKind
    zone: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """How directions name this node."""
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class Edge:
    """A walkable connection; two-way unless tagged `one_way`.

    `corridor` is the aisle or walkway name used in directions ("Aisle 3", "the back cross-aisle").
    `origin` is where the edge was declared (`edges[4]` or `aisles[2]`), for messages.
    """

    source: str
    target: str
    length_m: float
    tags: frozenset[EdgeTag]
    corridor: str | None
    origin: str

    @property
    def one_way(self) -> bool:
        return EdgeTag.ONE_WAY in self.tags

    @property
    def accessible(self) -> bool:
        return not (self.tags & INACCESSIBLE_TAGS)

    @property
    def staff_only(self) -> bool:
        return EdgeTag.STAFF_ONLY in self.tags


@dataclass(frozen=True, slots=True)
class Aisle:
    """A named corridor given as a node sequence; it expands to one edge per consecutive pair."""

    id: str
    name: str
    nodes: tuple[str, ...]
    tags: frozenset[EdgeTag]


@dataclass(frozen=True, slots=True)
class Section:
    """A shelf (or counter, or freezer) that shoppers pick from while standing at `node`.

    `position` is where the shelf itself is, if given; directions use it to say which side of the
    aisle to look at.
    """

    id: str
    node: str
    categories: tuple[str, ...]
    storage: Storage
    position: tuple[float, float] | None = None
    name: str | None = None
    products: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CategoryRule:
    name: str
    placement: Placement
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Layout:
    """A validated store layout. Build one with `load_layout` or `parse_layout`.

    Layouts compare by identity: the planner caches shortest-path data per layout object, and two
    loads of one file are two layouts.
    """

    source: str
    store_id: str
    store_name: str
    zones: tuple[Zone, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    aisles: tuple[Aisle, ...]
    sections: tuple[Section, ...]
    category_rules: tuple[CategoryRule, ...]
    _node_by_id: dict[str, Node] = field(init=False, repr=False)
    _section_by_id: dict[str, Section] = field(init=False, repr=False)
    _sections_by_category: dict[str, tuple[Section, ...]] = field(init=False, repr=False)
    _category_by_name: dict[str, str] = field(init=False, repr=False)
    _place_by_node: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_category: dict[str, list[Section]] = {}
        for section in self.sections:
            for category in section.categories:
                by_category.setdefault(category, []).append(section)
        names = {category: category for category in by_category}
        for rule in self.category_rules:
            for alias in rule.aliases:
                names.setdefault(normalize_name(alias), rule.name)
        for section in self.sections:
            for product in section.products:
                # A section selling several categories cannot tell which one a product is; its first.
                names.setdefault(normalize_name(product), section.categories[0])
        aisle_of: dict[str, str] = {}
        for aisle in self.aisles:
            for node_id in aisle.nodes:
                aisle_of.setdefault(node_id, aisle.name)
        # Inner aisle nodes belong to their aisle; ends are shared with the cross-aisle, so a node's
        # own name (if any) describes it better there.
        places: dict[str, str] = {}
        for node in self.nodes:
            if node.kind is NodeKind.AISLE and node.id in aisle_of:
                places[node.id] = aisle_of[node.id]
            elif node.name:
                places[node.id] = node.name
            else:
                places[node.id] = aisle_of.get(node.id, node.id)
        object.__setattr__(self, "_node_by_id", {node.id: node for node in self.nodes})
        object.__setattr__(self, "_section_by_id", {section.id: section for section in self.sections})
        object.__setattr__(
            self, "_sections_by_category", {key: tuple(value) for key, value in by_category.items()}
        )
        object.__setattr__(self, "_category_by_name", names)
        object.__setattr__(self, "_place_by_node", places)

    def node(self, node_id: str, role: str = "") -> Node:
        """The node with this id; `UnknownNodeError` (naming `role`, e.g. "start") if there is none."""
        try:
            return self._node_by_id[node_id]
        except KeyError:
            raise UnknownNodeError(node_id, role, self.source) from None

    def has_node(self, node_id: str) -> bool:
        return node_id in self._node_by_id

    def section(self, section_id: str) -> Section:
        return self._section_by_id[section_id]

    def nodes_of_kind(self, kind: NodeKind) -> tuple[Node, ...]:
        return tuple(node for node in self.nodes if node.kind is kind)

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category sold in the store, in file order."""
        return tuple(self._sections_by_category)

    def sections_for(self, category: str) -> tuple[Section, ...]:
        """The sections selling `category` (more than one only when its rule allows it)."""
        return self._sections_by_category.get(category, ())

    def resolve_item(self, item: str) -> str | None:
        """The category a shopping-list entry means: a category, an alias or a product name."""
        return self._category_by_name.get(normalize_name(item))

    def known_item_names(self) -> tuple[str, ...]:
        """Everything `resolve_item` understands, normalised (for "did you mean" suggestions)."""
        return tuple(self._category_by_name)

    def place_name(self, node_id: str) -> str:
        """Where a node is, in words: its aisle for points inside an aisle, else its name or id."""
        return self._place_by_node.get(node_id, node_id)


def normalize_name(text: str) -> str:
    """Lower-case words joined by single hyphens: 'Ice cream' and 'ice_cream' both mean 'ice-cream'."""
    return "-".join(part for part in re.split(r"[\s_\-]+", text.casefold()) if part)


_NODE_KEYS: Final = frozenset({"id", "x", "y", "kind", "zone", "name"})
_EDGE_KEYS: Final = frozenset({"from", "to", "length", "tags", "name"})
_AISLE_KEYS: Final = frozenset({"id", "name", "nodes", "tags"})
_SECTION_KEYS: Final = frozenset({"id", "node", "categories", "storage", "x", "y", "name", "products"})
_ZONE_KEYS: Final = frozenset({"id", "name"})
_STORE_KEYS: Final = frozenset({"id", "name"})
_RULE_KEYS: Final = frozenset({"placement", "aliases"})
_TOP_LEVEL_KEYS: Final = frozenset({"store", "zones", "nodes", "edges", "aisles", "sections", "categories"})


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
    reader = _LayoutReader(source, scan_locations(text))
    layout = reader.read(document)
    if reader.problems or layout is None:
        raise LayoutError(source, reader.sorted_problems())
    return layout


class _LayoutReader:
    """Reads a parsed TOML document into a `Layout`, collecting problems instead of stopping at one."""

    def __init__(self, source: str, locations: dict[str, int]) -> None:
        self.source = source
        self.locations = locations
        self.problems: list[LayoutProblem] = []
        # Ids of nodes declared at all, valid or not: a reference to a node whose own entry has a
        # problem is not reported again as "unknown node".
        self.declared_node_ids: set[str] = set()

    def sorted_problems(self) -> tuple[LayoutProblem, ...]:
        # File order reads best; problems without a line (whole-layout checks) go last.
        ordered = sorted(
            enumerate(self.problems),
            key=lambda pair: (pair[1].line is None, pair[1].line or 0, pair[0]),
        )
        return tuple(problem for _, problem in ordered)

    def problem(self, location: str, message: str) -> None:
        line = line_for(self.locations, location) if location else None
        self.problems.append(LayoutProblem(self.source, location, message, line))

    # -- typed field access -------------------------------------------------------------------

    def entries(self, document: Mapping[str, object], key: str) -> Iterator[tuple[str, dict[str, object]]]:
        """The tables of the array `key`, each with its location (`nodes[3]`)."""
        value = document.get(key, [])
        if not isinstance(value, list):
            self.problem(key, f"expected an array of tables ([[{key}]]), got {_type_name(value)}")
            return
        for index, entry in enumerate(value):
            location = f"{key}[{index}]"
            if isinstance(entry, dict):
                yield location, entry
            else:
                self.problem(location, f"expected a table, got {_type_name(entry)}")

    def unknown_keys(self, entry: Mapping[str, object], location: str, allowed: frozenset[str]) -> None:
        for key in entry:
            if key in allowed:
                continue
            expected = ", ".join(sorted(allowed))
            message = f"unknown key {key!r} (expected one of: {expected})"
            if location and key in _TOP_LEVEL_KEYS:
                # The classic TOML trap: `nodes = [...]` written below a [table] header belongs to it.
                message += f"; a top-level '{key} = ...' must come before the first [table] header"
            self.problem(f"{location}.{key}" if location else key, message)

    def text(self, entry: Mapping[str, object], location: str, key: str, *, required: bool) -> str | None:
        value = entry.get(key)
        if value is None:
            if required:
                self.problem(location, f"missing required key {key!r}")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{location}.{key}", f"expected a non-empty string, got {_describe(value)}")
            return None
        return value

    def number(self, entry: Mapping[str, object], location: str, key: str, *, required: bool) -> float | None:
        value = entry.get(key)
        if value is None:
            if required:
                self.problem(location, f"missing required key {key!r}")
            return None
        # bool is an int subclass in Python; `x = true` is a mistake, not 1 metre.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(f"{location}.{key}", f"expected a number, got {_describe(value)}")
            return None
        if not math.isfinite(value):
            self.problem(f"{location}.{key}", f"expected a finite number, got {value}")
            return None
        return float(value)

    def text_list(
        self, entry: Mapping[str, object], location: str, key: str, *, required: bool
    ) -> list[tuple[str, str]]:
        """The strings of a list, each with its own location (`sections[2].categories[1]`)."""
        value = entry.get(key)
        if value is None:
            if required:
                self.problem(location, f"missing required key {key!r}")
            return []
        if not isinstance(value, list):
            self.problem(f"{location}.{key}", f"expected an array of strings, got {_describe(value)}")
            return []
        items: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            item_location = f"{location}.{key}[{index}]"
            if isinstance(item, str) and item.strip():
                items.append((item_location, item))
            else:
                self.problem(item_location, f"expected a non-empty string, got {_describe(item)}")
        return items

    def tags(self, entry: Mapping[str, object], location: str) -> frozenset[EdgeTag]:
        tags: set[EdgeTag] = set()
        for tag_location, name in self.text_list(entry, location, "tags", required=False):
            try:
                tags.add(EdgeTag(name))
            except ValueError:
                known = ", ".join(tag.value for tag in EdgeTag)
                self.problem(tag_location, f"unknown tag {name!r} (known tags: {known})")
        return frozenset(tags)

    def identifier(
        self,
        entry: Mapping[str, object],
        location: str,
        seen: dict[str, str],
        what: str,
    ) -> str | None:
        """The entry's `id`, checked for uniqueness among `seen` (id -> location of first use)."""
        ident = self.text(entry, location, "id", required=True)
        if ident is None:
            return None
        if ident in seen:
            self.problem(f"{location}.id", f"duplicate {what} id {ident!r} (first defined at {seen[ident]})")
            return None
        seen[ident] = location
        return ident

    # -- the document -------------------------------------------------------------------------

    def read(self, document: Mapping[str, object]) -> Layout | None:
        self.unknown_keys(document, "", _TOP_LEVEL_KEYS)
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
            self.problem("store", f"expected a table, got {_type_name(store)}")
            return default, default
        self.unknown_keys(store, "store", _STORE_KEYS)
        store_id = self.text(store, "store", "id", required=False) or default
        name = self.text(store, "store", "name", required=False) or store_id
        return store_id, name

    def read_zones(self, document: Mapping[str, object]) -> list[Zone]:
        zones: list[Zone] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "zones"):
            self.unknown_keys(entry, location, _ZONE_KEYS)
            zone_id = self.identifier(entry, location, seen, "zone")
            name = self.text(entry, location, "name", required=False)
            if zone_id is not None:
                zones.append(Zone(zone_id, name or zone_id))
        return zones

    def read_nodes(self, document: Mapping[str, object], zone_ids: set[str]) -> list[Node]:
        nodes: list[Node] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "nodes"):
            self.unknown_keys(entry, location, _NODE_KEYS)
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

    def node_ref(
        self, entry: Mapping[str, object], location: str, key: str, nodes: Mapping[str, Node]
    ) -> str | None:
        node_id = self.text(entry, location, key, required=True)
        if node_id is not None and node_id not in nodes:
            if node_id not in self.declared_node_ids:
                self.problem(f"{location}.{key}", f"unknown node {node_id!r}")
            return None
        return node_id

    def read_aisles(
        self, document: Mapping[str, object], nodes: Mapping[str, Node]
    ) -> list[tuple[Aisle, str]]:
        aisles: list[tuple[Aisle, str]] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "aisles"):
            self.unknown_keys(entry, location, _AISLE_KEYS)
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
            repeated = {node_id for _, node_id in members if sum(1 for _, n in members if n == node_id) > 1}
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
            self.unknown_keys(entry, location, _EDGE_KEYS)
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

    def check_duplicate_edges(self, edges: list[Edge]) -> None:
        # Two declarations of one walkable direction would silently shadow each other in the graph.
        claimed: dict[tuple[str, str], Edge] = {}
        for edge in edges:
            arcs = [(edge.source, edge.target)]
            if not edge.one_way:
                arcs.append((edge.target, edge.source))
            for arc in arcs:
                first = claimed.get(arc)
                if first is not None:
                    self.problem(
                        edge.origin,
                        f"duplicate edge between {edge.source!r} and {edge.target!r} "
                        f"(already declared at {first.origin})",
                    )
                    break
            else:
                for arc in arcs:
                    claimed[arc] = edge

    def read_sections(
        self, document: Mapping[str, object], nodes: Mapping[str, Node]
    ) -> list[tuple[Section, str]]:
        sections: list[tuple[Section, str]] = []
        seen: dict[str, str] = {}
        for location, entry in self.entries(document, "sections"):
            self.unknown_keys(entry, location, _SECTION_KEYS)
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

    def has_problem_under(self, location: str) -> bool:
        return any(p.location == location or p.location.startswith(location + ".") for p in self.problems)

    def read_category_rules(
        self, document: Mapping[str, object], sections: list[tuple[Section, str]]
    ) -> list[CategoryRule]:
        table = document.get("categories", {})
        if not isinstance(table, dict):
            self.problem("categories", f"expected a table of category rules, got {_type_name(table)}")
            return []
        sold = {category for section, _ in sections for category in section.categories}
        rules: list[CategoryRule] = []
        for name, entry in table.items():
            location = f"categories.{name}"
            if not isinstance(entry, dict):
                self.problem(location, f"expected a table, got {_type_name(entry)}")
                continue
            self.unknown_keys(entry, location, _RULE_KEYS)
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

    def check_categories(self, sections: list[tuple[Section, str]], rules: list[CategoryRule]) -> None:
        multi_placed = {rule.name for rule in rules if rule.placement is Placement.SHORTEST}
        first_place: dict[str, tuple[Section, str]] = {}
        for section, location in sections:
            for index, category in enumerate(section.categories):
                if category not in first_place:
                    first_place[category] = (section, location)
                    continue
                if category in multi_placed:
                    continue
                first_section, first_location = first_place[category]
                self.problem(
                    f"{location}.categories[{index}]",
                    f"category {category!r} is also sold in section {first_section.id!r} ({first_location}) "
                    f'without a rule; add [categories.{category}] with placement = "shortest" '
                    "to let the planner choose",
                )

    def check_names(self, sections: list[tuple[Section, str]], rules: list[CategoryRule]) -> None:
        """Aliases and product names must each mean one category, and not shadow another category."""
        categories = {category for section, _ in sections for category in section.categories}
        meaning: dict[str, tuple[str, str]] = {}  # normalised name -> (category, location of the claim)

        def claim(name: str, category: str, location: str) -> None:
            key = normalize_name(name)
            if key in categories and key != category:
                self.problem(
                    location, f"{name!r} is the name of category {key!r}, so it cannot mean {category!r}"
                )
                return
            previous = meaning.get(key)
            if previous is not None and previous[0] != category:
                self.problem(
                    location,
                    f"{name!r} would mean both {previous[0]!r} ({previous[1]}) and {category!r}",
                )
                return
            meaning.setdefault(key, (category, location))

        for rule in rules:
            for index, alias in enumerate(rule.aliases):
                claim(alias, rule.name, f"categories.{rule.name}.aliases[{index}]")
        for section, location in sections:
            for index, product in enumerate(section.products):
                claim(product, section.categories[0], f"{location}.products[{index}]")

    def check_reachability(
        self, nodes: list[Node], edges: list[Edge], sections: list[tuple[Section, str]]
    ) -> None:
        """Every section, entrance and kiosk must lie on some entrance -> checkout walk."""
        if self.problems:
            # Unknown nodes or dropped edges would make every section look cut off; report the cause.
            return
        forward: dict[str, list[str]] = {node.id: [] for node in nodes}
        backward: dict[str, list[str]] = {node.id: [] for node in nodes}
        for edge in edges:
            if edge.staff_only:
                continue
            forward[edge.source].append(edge.target)
            backward[edge.target].append(edge.source)
            if not edge.one_way:
                forward[edge.target].append(edge.source)
                backward[edge.source].append(edge.target)
        entrances = [node.id for node in nodes if node.kind is NodeKind.ENTRANCE]
        checkouts = [node.id for node in nodes if node.kind is NodeKind.CHECKOUT]
        from_entrance = _reachable(entrances, forward)
        to_checkout = _reachable(checkouts, backward)
        for section, location in sections:
            if section.node not in from_entrance:
                self.problem(
                    f"{location}.node",
                    f"disconnected section {section.id!r}: node {section.node!r} cannot be reached "
                    "from any entrance without staff-only edges",
                )
            elif section.node not in to_checkout:
                self.problem(
                    f"{location}.node",
                    f"disconnected section {section.id!r}: no checkout can be reached from node {section.node!r}",
                )
        for index, node in enumerate(nodes):
            if node.kind in (NodeKind.ENTRANCE, NodeKind.KIOSK) and node.id not in to_checkout:
                self.problem(
                    f"nodes[{index}]", f"no checkout can be reached from {node.kind.value} {node.id!r}"
                )


def _reachable(starts: Iterable[str], adjacency: Mapping[str, list[str]]) -> set[str]:
    seen = set(starts)
    queue = deque(seen)
    while queue:
        for neighbour in adjacency[queue.popleft()]:
            if neighbour not in seen:
                seen.add(neighbour)
                queue.append(neighbour)
    return seen


def _type_name(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    return _type_name(value)
