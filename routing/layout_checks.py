"""Validating a layout file: the checks on its values and the message each problem is reported with.

`LayoutValidator` collects problems instead of stopping at the first one, each with its location
(`nodes[3].x`) and line: typed access to the fields of an entry, and the checks on the whole layout
(duplicate edges, categories sold in two places, names meaning two categories, reachability).
`routing.layout_file` reads the document through it.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

from routing._toml_lines import line_for
from routing.errors import LayoutProblem
from routing.layout import CategoryRule, Edge, EdgeTag, Node, NodeKind, Placement, Section, normalize_name

__all__ = [
    "AISLE_KEYS",
    "EDGE_KEYS",
    "MAX_METRES",
    "NODE_KEYS",
    "RULE_KEYS",
    "SECTION_KEYS",
    "STORE_KEYS",
    "TOP_LEVEL_KEYS",
    "ZONE_KEYS",
    "LayoutValidator",
    "repeated_values",
    "type_name",
]

# The keys each table of the file may have; any other key is reported as unknown.
NODE_KEYS: Final = frozenset({"id", "x", "y", "kind", "zone", "name"})
EDGE_KEYS: Final = frozenset({"from", "to", "length", "tags", "name"})
AISLE_KEYS: Final = frozenset({"id", "name", "nodes", "tags"})
SECTION_KEYS: Final = frozenset({"id", "node", "categories", "storage", "x", "y", "name", "products"})
ZONE_KEYS: Final = frozenset({"id", "name"})
STORE_KEYS: Final = frozenset({"id", "name"})
RULE_KEYS: Final = frozenset({"placement", "aliases"})
TOP_LEVEL_KEYS: Final = frozenset({"store", "zones", "nodes", "edges", "aisles", "sections", "categories"})
#: Every number in a layout is metres (coordinates, lengths). Beyond this they are a mistake (a unit
#: slip, a placeholder such as 1e308), and keeping them bounded keeps every straight-line length and
#: every sum of lengths finite: nodes at x = +-1e308 would otherwise make an infinite edge.
#: A billion metres still admits projected map coordinates (UTM northings are below 1e7).
MAX_METRES: Final = 1e9


class LayoutValidator:
    """Checks the values of a parsed layout document, collecting problems instead of stopping at one."""

    def __init__(self, source: str, locations: dict[str, int]) -> None:
        self.source = source
        self.locations = locations
        self.problems: list[LayoutProblem] = []
        # Ids of nodes declared at all, valid or not: a reference to a node whose own entry has a
        # problem is not reported again as "unknown node".
        self.declared_node_ids: set[str] = set()
        # Every location with a problem at it or below it (`sections[3].x` also notes `sections[3]`
        # and `sections`), so `has_problem_under` is one lookup instead of a scan of every problem
        # (which made a layout with thousands of broken sections take quadratic time).
        self._locations_with_problems: set[str] = set()

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
        self._locations_with_problems.add(location)
        dot = location.find(".")
        while dot != -1:
            self._locations_with_problems.add(location[:dot])
            dot = location.find(".", dot + 1)

    # -- typed field access -------------------------------------------------------------------

    def entries(self, document: Mapping[str, object], key: str) -> Iterator[tuple[str, dict[str, object]]]:
        """The tables of the array `key`, each with its location (`nodes[3]`)."""
        value = document.get(key, [])
        if not isinstance(value, list):
            self.problem(key, f"expected an array of tables ([[{key}]]), got {type_name(value)}")
            return
        for index, entry in enumerate(value):
            location = f"{key}[{index}]"
            if isinstance(entry, dict):
                yield location, entry
            else:
                self.problem(location, f"expected a table, got {type_name(entry)}")

    def unknown_keys(self, entry: Mapping[str, object], location: str, allowed: frozenset[str]) -> None:
        for key in entry:
            if key in allowed:
                continue
            expected = ", ".join(sorted(allowed))
            message = f"unknown key {key!r} (expected one of: {expected})"
            if location and key in TOP_LEVEL_KEYS:
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
        if abs(value) > MAX_METRES:
            # Reported, but the value is still returned: the node (or shelf, or edge) exists, so
            # references to it are fine, and the file gets this one problem rather than a cascade
            # ("no entrance") from a node left out. The layout is refused all the same.
            owner = entry.get("id")
            whose = f" of {owner!r}" if isinstance(owner, str) else ""
            self.problem(
                f"{location}.{key}",
                f"{key}{whose} = {value:g} is out of range: a layout is in metres, and no coordinate "
                f"or length may exceed {MAX_METRES:g} in size",
            )
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

    def node_ref(
        self, entry: Mapping[str, object], location: str, key: str, nodes: Mapping[str, Node]
    ) -> str | None:
        node_id = self.text(entry, location, key, required=True)
        if node_id is not None and node_id not in nodes:
            if node_id not in self.declared_node_ids:
                self.problem(f"{location}.{key}", f"unknown node {node_id!r}")
            return None
        return node_id

    def has_problem_under(self, location: str) -> bool:
        """Whether a problem was reported at `location` or inside it (`location.key...`)."""
        return location in self._locations_with_problems

    # -- checks on the whole layout -----------------------------------------------------------

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


def repeated_values(items: Sequence[tuple[str, str]]) -> set[str]:
    """The values that occur more than once among (location, value) pairs, in one pass."""
    counts = Counter(value for _, value in items)
    return {value for value, count in counts.items() if count > 1}


def type_name(value: object) -> str:
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
    return type_name(value)
