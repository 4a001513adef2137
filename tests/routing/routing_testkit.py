"""Helpers shared by the routing tests: small layouts written as TOML, random ones, and a brute force.

Imported by the test modules as `routing_testkit` (pytest puts this folder on sys.path); the name is
specific so it cannot collide with another package's helpers.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from routing import Layout, NodeKind, Route, Storage, parse_layout
from routing.layout import INACCESSIBLE_TAGS, EdgeTag


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(value)


def toml_tables(name: str, rows: Iterable[Mapping[str, object]]) -> str:
    """`[[name]]` tables, one per row (the style with the most precise line numbers)."""
    out = []
    for row in rows:
        out.append(f"[[{name}]]")
        out.extend(f"{key} = {toml_value(value)}" for key, value in row.items())
        out.append("")
    return "\n".join(out)


def corridor_toml(*, extra: str = "", sections: Sequence[Mapping[str, object]] | None = None) -> str:
    """A valid little store: entrance -> a - b - c - d -> checkout, shelves at b and c.

    entrance(0,0) -> a(0,2) - b(4,2) - c(8,2) - d(12,2) -> checkout(12,0)
    """
    nodes: list[dict[str, object]] = [
        {"id": "entrance", "x": 0, "y": 0, "kind": "entrance"},
        {"id": "a", "x": 0, "y": 2},
        {"id": "b", "x": 4, "y": 2, "kind": "aisle"},
        {"id": "c", "x": 8, "y": 2, "kind": "aisle"},
        {"id": "d", "x": 12, "y": 2},
        {"id": "checkout", "x": 12, "y": 0, "kind": "checkout"},
    ]
    edges: list[dict[str, object]] = [
        {"from": "entrance", "to": "a", "tags": ["one_way"]},
        {"from": "a", "to": "b"},
        {"from": "b", "to": "c"},
        {"from": "c", "to": "d"},
        {"from": "d", "to": "checkout", "tags": ["one_way"]},
    ]
    if sections is None:
        sections = [
            {"id": "s-bread", "node": "b", "categories": ["bread"], "storage": "ambient"},
            {"id": "s-milk", "node": "c", "categories": ["milk"], "storage": "chilled"},
        ]
    return "\n".join(
        [toml_tables("nodes", nodes), toml_tables("edges", edges), toml_tables("sections", sections), extra]
    )


# -- random grid stores -----------------------------------------------------------------------


@dataclass(frozen=True)
class GridStore:
    layout: Layout
    categories: tuple[str, ...]


def random_grid_store(seed: int, *, rows: int = 3, cols: int = 4, n_categories: int = 8) -> GridStore:
    """A random store on a grid: a two-way untagged snake through every cell keeps it connected (also
    for accessible routes), and random extra edges add one-way shortcuts, stairs, narrow passages
    and staff-only doors with lengths that may differ from the straight line."""
    tables = random_grid_tables(seed, rows=rows, cols=cols, n_categories=n_categories)
    # Each section sells one category, in category order: cat-0, cat-1, ...
    categories = list(dict.fromkeys(str(section["categories"][0]) for section in tables["sections"]))  # type: ignore[index]
    return GridStore(parse_layout(grid_tables_toml(tables), f"grid-{seed}.toml"), tuple(categories))


def grid_tables_toml(tables: Mapping[str, Sequence[Mapping[str, object]]]) -> str:
    """The TOML text of `random_grid_tables`' tables (rules as `[categories.<name>]`)."""
    rules = "\n".join(f'[categories.{rule["name"]}]\nplacement = "shortest"\n' for rule in tables["rules"])
    parts = [toml_tables(name, tables[name]) for name in ("nodes", "edges", "sections")]
    return "\n".join([*parts, rules])


def random_grid_tables(
    seed: int, *, rows: int = 3, cols: int = 4, n_categories: int = 8
) -> dict[str, list[dict[str, object]]]:
    """The nodes, edges, sections and rules of `random_grid_store`, as tables (to mutate in tests)."""
    rng = random.Random(seed)
    cell = {(r, c): f"n{r}{c}" for r in range(rows) for c in range(cols)}
    nodes: list[dict[str, object]] = [
        {"id": node_id, "x": c * 3.0 + rng.uniform(-0.4, 0.4), "y": r * 3.0 + rng.uniform(-0.4, 0.4)}
        for (r, c), node_id in cell.items()
    ]
    nodes.append({"id": "entrance", "x": -3.0, "y": 0.0, "kind": "entrance"})
    nodes.append({"id": "kiosk", "x": -3.0, "y": 3.0, "kind": "kiosk"})
    nodes.append({"id": "till-1", "x": (cols - 1) * 3.0 + 3, "y": -3.0, "kind": "checkout"})
    nodes.append({"id": "till-2", "x": 0.0, "y": -3.0, "kind": "checkout"})
    snake = [cell[(r, c if r % 2 == 0 else cols - 1 - c)] for r in range(rows) for c in range(cols)]
    edges: list[dict[str, object]] = [{"from": a, "to": b} for a, b in itertools.pairwise(snake)]
    linked = {frozenset(pair) for pair in itertools.pairwise(snake)}
    for (r, c), node_id in cell.items():
        for neighbour in ((r + 1, c), (r, c + 1)):
            if neighbour not in cell or frozenset((node_id, cell[neighbour])) in linked:
                continue
            if rng.random() < 0.55:
                tag = rng.choice(["", "", "one_way", "one_way", "stairs", "narrow", "staff_only"])
                a, b = (node_id, cell[neighbour]) if rng.random() < 0.5 else (cell[neighbour], node_id)
                edge: dict[str, object] = {"from": a, "to": b}
                if tag:
                    edge["tags"] = [tag]
                if rng.random() < 0.4:
                    edge["length"] = round(rng.uniform(0.5, 6.0), 2)
                edges.append(edge)
    edges.append({"from": "entrance", "to": cell[(0, 0)], "tags": ["one_way"]})
    edges.append({"from": "kiosk", "to": cell[(min(1, rows - 1), 0)]})
    edges.append({"from": cell[(0, cols - 1)], "to": "till-1", "tags": ["one_way"]})
    edges.append({"from": cell[(0, 0)], "to": "till-2", "tags": ["one_way"], "length": 9.0})
    categories = [f"cat-{k}" for k in range(n_categories)]
    sections: list[dict[str, object]] = []
    multi = []
    for k, category in enumerate(categories):
        places = 2 if rng.random() < 0.35 else 1
        if places > 1:
            multi.append(category)
        for place in range(places):
            node_id = rng.choice(list(cell.values()))
            storage = rng.choice(["ambient", "ambient", "chilled", "frozen"])
            sections.append(
                {"id": f"s{k}-{place}", "node": node_id, "categories": [category], "storage": storage}
            )
    rules: list[dict[str, object]] = [{"name": name} for name in multi]
    return {"nodes": nodes, "edges": edges, "sections": sections, "rules": rules}


# -- an independent reference ---------------------------------------------------------------------


def reference_graph(layout: Layout, *, accessible: bool) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(node.id for node in layout.nodes)
    for edge in layout.edges:
        if EdgeTag.STAFF_ONLY in edge.tags or (accessible and edge.tags & INACCESSIBLE_TAGS):
            continue
        graph.add_edge(edge.source, edge.target, weight=edge.length_m)
        if EdgeTag.ONE_WAY not in edge.tags:
            graph.add_edge(edge.target, edge.source, weight=edge.length_m)
    return graph


def brute_force_distance(
    layout: Layout,
    categories: Sequence[str],
    *,
    start: str,
    accessible: bool = False,
    precedence: bool = True,
    end: str | None = None,
) -> float:
    """Shortest walk over every order and every choice of section, by enumeration."""
    graph = reference_graph(layout, accessible=accessible)
    distance = dict(nx.all_pairs_dijkstra_path_length(graph, weight="weight"))
    ends = [end] if end else [node.id for node in layout.nodes if node.kind is NodeKind.CHECKOUT]

    def d(a: str, b: str) -> float:
        return float(distance[a].get(b, math.inf))

    def finish(node: str) -> float:
        return min(d(node, e) for e in ends)

    options = []
    for category in categories:
        places = {(s.node, s.storage) for s in layout.sections_for(category)}
        places = {p for p in places if d(start, p[0]) < math.inf and finish(p[0]) < math.inf}
        if places:
            options.append(sorted(places, key=lambda p: (p[0], p[1].rank)))
    best = math.inf
    for choice in itertools.product(*options):
        for order in itertools.permutations(choice):
            if precedence and any(a[1].rank > b[1].rank for a, b in itertools.pairwise(order)):
                continue
            walk = [start, *(node for node, _ in order)]
            total = sum(d(a, b) for a, b in itertools.pairwise(walk)) + finish(walk[-1])
            best = min(best, total)
    return best if options else finish(start)


def assert_route_is_consistent(layout: Layout, route: Route, *, accessible: bool, precedence: bool) -> None:
    """The path is a real walk under the options, and the stops lie on it in order."""
    allowed = reference_graph(layout, accessible=accessible)
    assert route.path[0] == route.start
    assert route.path[-1] == route.end
    total = 0.0
    for a, b in itertools.pairwise(route.path):
        assert allowed.has_edge(a, b), f"route walks {a} -> {b}, which these options forbid"
        total += allowed.edges[a, b]["weight"]
    assert math.isclose(total, route.distance_m, rel_tol=1e-9, abs_tol=1e-9)
    position = 0
    for stop in route.stops:
        position = route.path.index(stop.node, position)
    if precedence:
        ranks = [stop.storage.rank for stop in route.stops]
        assert ranks == sorted(ranks), f"stops out of ambient -> chilled -> frozen order: {ranks}"
    assert all(isinstance(stop.storage, Storage) for stop in route.stops)
