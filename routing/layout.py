"""Store layouts: the walkable graph of one store, its shelves and what they sell.

Coordinates are metres on the floor plan, x towards the east wall and y towards the back wall, so
"left" and "right" in directions follow from the coordinates. A `Layout` is built from a layout file by
`routing.layout_file`, which validates it with `routing.layout_checks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from routing.errors import UnknownNodeError

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
    "normalize_name",
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
    """A validated store layout. Build one with `load_layout` or `parse_layout` (`routing.layout_file`).

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
