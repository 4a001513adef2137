"""`plan_route`: the shortest walk through a store that collects a shopping list.

Steps: resolve list entries to categories and their sections; drop (and report) what cannot be
reached under the options; group the rest into stops; cost every pair of candidate places with
shortest paths on the cached cost graph; order the stops (exactly with Held-Karp for up to
`EXACT_MAX_GROUPS` stops, near-optimally beyond); then expand the order into the node path,
metres, minutes and directions.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from routing.directions import Leg, Side, StopText, describe_walk, shelf_side
from routing.errors import InvalidArgumentError, NoRouteError
from routing.graph import CostGraph, cost_graph
from routing.layout import Layout, NodeKind, Section, Storage, normalize_name
from routing.ordering import EXACT_MAX_GROUPS, OrderingProblem, Strategy, solve

__all__ = ["Route", "Stop", "UnreachableItem", "plan_route"]

DEFAULT_WALKING_SPEED_M_S: Final = 1.0
DEFAULT_PICK_SECONDS: Final = 20.0


@dataclass(frozen=True, slots=True)
class Stop:
    """A section to stop at and the shopping-list entries picked there."""

    section: str
    node: str
    items: tuple[str, ...]  # as written on the list
    categories: tuple[str, ...]
    storage: Storage
    place: str  # "Aisle 3", for people
    side: Side | None  # side of the aisle the shelf is on, walking the route


@dataclass(frozen=True, slots=True)
class UnreachableItem:
    """A list entry the route does not collect, and why."""

    item: str
    reason: str
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    start: str
    end: str
    stops: tuple[Stop, ...]
    path: tuple[str, ...]  # node ids from start to end, consecutive nodes joined by an edge
    distance_m: float
    minutes: float  # walking plus picking
    directions: tuple[str, ...]
    unreachable: tuple[UnreachableItem, ...]
    optimal: bool  # the stop order is proven shortest (exact solver)
    solver: str  # "held-karp", "lkh-3", "local-search"

    def to_dict(self) -> dict[str, object]:
        """The JSON shape shared by the CLI and the HTTP API."""
        return {
            "start": self.start,
            "end": self.end,
            "stops": [
                {
                    "node": stop.node,
                    "section": stop.section,
                    "items": list(stop.items),
                    "storage": stop.storage.value,
                    "side": stop.side,
                }
                for stop in self.stops
            ],
            "path": list(self.path),
            "distance_m": round(self.distance_m, 1),
            "minutes": round(self.minutes, 1),
            "directions": list(self.directions),
            "unreachable": [{"item": entry.item, "reason": entry.reason} for entry in self.unreachable],
            "optimal": self.optimal,
            "solver": self.solver,
        }


@dataclass(frozen=True, slots=True)
class _Wanted:
    """A list entry resolved to a category and the sections it can be picked from."""

    item: str
    category: str
    sections: tuple[Section, ...]
    position: int  # on the shopping list, so a stop lists its items in the shopper's order


Place = tuple[str, Storage]  # (node, storage): what a stop costs and where it may sit in the order


def plan_route(
    layout: Layout,
    items: Sequence[str],
    start: str | None = None,
    end: str | None = None,
    accessible: bool = False,
    precedence: bool = True,
    congestion: Mapping[str, float] | None = None,
    *,
    walking_speed_m_s: float = DEFAULT_WALKING_SPEED_M_S,
    pick_seconds: float = DEFAULT_PICK_SECONDS,
    congestion_weight: float = 1.0,
    strategy: Strategy = "auto",
    exact_max_stops: int = EXACT_MAX_GROUPS,
    max_seconds: float = 5.0,
) -> Route:
    """Plan the shortest walk from `start` collecting `items`, ending at `end`.

    `items` are categories, aliases or product names as on the shopping list. `start` defaults to the
    layout's first entrance; `end` to whichever checkout makes the walk shortest. With `accessible`,
    stairs and narrow edges are avoided; staff-only edges are never used. With `precedence`, stops go
    ambient, then chilled, then frozen. `congestion` maps zone ids to occupancy ratios (0 = empty,
    1 = at capacity); walking through a zone costs `1 + congestion_weight * occupancy` times its
    length when choosing the route (distances and minutes stay real metres).

    Entries that cannot be collected are listed in `Route.unreachable` with the reason. Raises
    `UnknownNodeError` for an unknown start or end, `NoRouteError` when no walk exists at all.
    """
    if not (math.isfinite(walking_speed_m_s) and walking_speed_m_s > 0):
        raise InvalidArgumentError(f"walking_speed_m_s must be positive, got {walking_speed_m_s}")
    if not (math.isfinite(pick_seconds) and pick_seconds >= 0):
        raise InvalidArgumentError(f"pick_seconds must be zero or more, got {pick_seconds}")
    if isinstance(items, str):
        raise InvalidArgumentError("items must be a sequence of list entries, not one string")
    start_node = _start_node(layout, start)
    end_nodes = [layout.node(end, "end").id] if end is not None else _checkouts(layout)
    graph = cost_graph(
        layout, accessible=accessible, congestion=congestion, congestion_weight=congestion_weight
    )

    end_cost_by_node = _cost_to_nearest(graph, layout, end_nodes)
    if not math.isfinite(end_cost_by_node[start_node]):
        raise NoRouteError(
            f"no walk from {start_node!r} to {_either(end_nodes)}"
            + (" avoiding stairs and narrow aisles" if accessible else "")
        )
    wanted, unreachable = _resolve_items(layout, graph, items, start_node, end_cost_by_node)

    # A stop is a group of list entries that can be picked at the same set of places.
    groups: dict[frozenset[Place], list[_Wanted]] = {}
    for entry in wanted:
        places = frozenset((section.node, section.storage) for section in entry.sections)
        groups.setdefault(places, []).append(entry)
    candidates: list[Place] = []
    candidate_group: list[int] = []
    for group_index, places in enumerate(groups):
        for place in sorted(places, key=lambda p: (p[1].rank, p[0])):
            candidates.append(place)
            candidate_group.append(group_index)
    candidate_nodes = [node for node, _ in candidates]
    problem = OrderingProblem(
        start_cost=graph.cost_matrix([start_node], candidate_nodes)[0],
        cost=graph.cost_matrix(candidate_nodes, candidate_nodes),
        end_cost=np.array([end_cost_by_node[node] for node in candidate_nodes], dtype=np.float64),
        group=np.array(candidate_group, dtype=np.int64),
        rank=np.array([storage.rank if precedence else 0 for _, storage in candidates], dtype=np.int64),
    )
    solution = solve(problem, strategy, exact_max_groups=exact_max_stops, max_seconds=max_seconds)
    if not math.isfinite(solution.cost):
        constraint = " in ambient -> chilled -> frozen order" if precedence else ""
        raise NoRouteError(
            f"no walk visits every stop{constraint}: one-way edges leave no order that works"
            + ("; try without precedence" if precedence else "")
        )

    group_entries = list(groups.values())
    stop_plan: list[tuple[Section, list[_Wanted]]] = []
    for candidate in solution.order:
        node, storage = candidates[candidate]
        for entry in group_entries[candidate_group[candidate]]:
            section = next(s for s in entry.sections if s.node == node and s.storage is storage)
            if stop_plan and stop_plan[-1][0] is section:
                stop_plan[-1][1].append(entry)
            else:
                stop_plan.append((section, [entry]))
    # Shelves picked at one spot are listed in layout order, so directions read the same every time.
    stop_plan = _sort_within_spots(layout, stop_plan)

    stop_nodes = [section.node for section, _ in stop_plan]
    last_node = stop_nodes[-1] if stop_nodes else start_node
    end_node = min(end_nodes, key=lambda candidate_end: graph.cost(last_node, candidate_end))
    waypoints = [start_node, *stop_nodes, end_node]
    legs = [Leg(tuple(graph.arcs_along(graph.path(a, b)))) for a, b in itertools.pairwise(waypoints)]
    path = [start_node]
    for leg in legs:
        path.extend(arc.target for arc in leg.arcs)
    distance_m = sum(arc.length_m for leg in legs for arc in leg.arcs)

    stops: list[Stop] = []
    for index, (section, entries) in enumerate(stop_plan):
        side = _side(layout, section, legs, index)
        stops.append(
            Stop(
                section=section.id,
                node=section.node,
                items=tuple(entry.item for entry in sorted(entries, key=lambda e: e.position)),
                categories=tuple(
                    dict.fromkeys(e.category for e in sorted(entries, key=lambda e: e.position))
                ),
                storage=section.storage,
                place=layout.place_name(section.node),
                side=side,
            )
        )
    picked = sum(len(stop.items) for stop in stops)
    minutes = (distance_m / walking_speed_m_s + picked * pick_seconds) / 60.0
    directions = describe_walk(
        layout,
        layout.node(start_node).label,
        layout.node(end_node).label,
        legs,
        [StopText(stop.place, stop.side, stop.items) for stop in stops],
    )
    return Route(
        start=start_node,
        end=end_node,
        stops=tuple(stops),
        path=tuple(path),
        distance_m=distance_m,
        minutes=minutes,
        directions=directions,
        unreachable=tuple(unreachable),
        optimal=solution.optimal,
        solver=solution.method,
    )


def _start_node(layout: Layout, start: str | None) -> str:
    if start is not None:
        return layout.node(start, "start").id
    return layout.nodes_of_kind(NodeKind.ENTRANCE)[0].id


def _checkouts(layout: Layout) -> list[str]:
    return [node.id for node in layout.nodes_of_kind(NodeKind.CHECKOUT)]


def _cost_to_nearest(graph: CostGraph, layout: Layout, targets: Sequence[str]) -> dict[str, float]:
    """Per node, the cost of walking to the nearest of `targets` (`inf` if none can be reached)."""
    best = dict.fromkeys((node.id for node in layout.nodes), math.inf)
    for target in targets:
        for node, cost in graph.costs_to(target).items():
            best[node] = min(best[node], cost)
    return best


def _either(nodes: Sequence[str]) -> str:
    return repr(nodes[0]) if len(nodes) == 1 else "any checkout"


def _resolve_items(
    layout: Layout,
    graph: CostGraph,
    items: Sequence[str],
    start_node: str,
    end_cost_by_node: Mapping[str, float],
) -> tuple[list[_Wanted], list[UnreachableItem]]:
    reachable = graph.reachable_from(start_node)
    wanted: list[_Wanted] = []
    unreachable: list[UnreachableItem] = []
    seen: set[str] = set()
    for position, item in enumerate(items):
        key = normalize_name(item)
        if key in seen:
            continue  # "milk" twice on a list is one stop, not two
        seen.add(key)
        category = layout.resolve_item(item)
        if category is None:
            unreachable.append(UnreachableItem(item, _unknown_item_reason(layout, item)))
            continue
        sections = layout.sections_for(category)
        usable = tuple(s for s in sections if s.node in reachable and math.isfinite(end_cost_by_node[s.node]))
        if usable:
            wanted.append(_Wanted(item, category, usable, position))
        else:
            unreachable.append(
                UnreachableItem(item, _unreachable_reason(graph, sections[0], start_node), category)
            )
    return wanted, unreachable


def _unknown_item_reason(layout: Layout, item: str) -> str:
    reason = f"unknown item {item!r}: no category, alias or product of that name in this store"
    close = difflib.get_close_matches(normalize_name(item), layout.known_item_names(), n=1, cutoff=0.75)
    return f"{reason} (did you mean {close[0]!r}?)" if close else reason


def _unreachable_reason(graph: CostGraph, section: Section, start_node: str) -> str:
    where = f"section {section.id!r} (node {section.node!r})"
    if graph.accessible:
        full = cost_graph(graph.layout, congestion=None)
        if section.node in full.reachable_from(start_node):
            return f"{where} cannot be reached without stairs or narrow aisles"
    if section.node not in graph.reachable_from(start_node):
        return f"{where} cannot be reached from {start_node!r}"
    return f"no checkout can be reached from {where}"


def _sort_within_spots(
    layout: Layout, plan: list[tuple[Section, list[_Wanted]]]
) -> list[tuple[Section, list[_Wanted]]]:
    """Stops at the same node in a row are listed in layout order (a stable, readable order)."""
    order = {section.id: index for index, section in enumerate(layout.sections)}
    result: list[tuple[Section, list[_Wanted]]] = []
    run: list[tuple[Section, list[_Wanted]]] = []
    for entry in plan:
        if run and (run[-1][0].node != entry[0].node or run[-1][0].storage is not entry[0].storage):
            result.extend(sorted(run, key=lambda pair: order[pair[0].id]))
            run = []
        run.append(entry)
    result.extend(sorted(run, key=lambda pair: order[pair[0].id]))
    return result


def _side(layout: Layout, section: Section, legs: Sequence[Leg], index: int) -> Side | None:
    """Side of the shelf for someone arriving at the stop (or leaving it, if they start there)."""
    if section.position is None:
        return None
    node = layout.node(section.node)
    heading = None
    for leg in reversed(legs[: index + 1]):
        if leg.arcs:
            arc = leg.arcs[-1]
            a, b = layout.node(arc.source), layout.node(arc.target)
            heading = (b.x - a.x, b.y - a.y)
            break
    if heading is None:
        for leg in legs[index + 1 :]:
            if leg.arcs:
                arc = leg.arcs[0]
                a, b = layout.node(arc.source), layout.node(arc.target)
                heading = (b.x - a.x, b.y - a.y)
                break
    return shelf_side(heading, (section.position[0] - node.x, section.position[1] - node.y))
