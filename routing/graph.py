"""The walkable graph of a layout under one set of routing options, with cached shortest paths.

Edge costs are metres, multiplied by congestion where the footfall sensors report crowding. A
`CostGraph` is built once per (layout, accessible, congestion) and then answers shortest-path
queries from a per-source cache, so a kiosk planning list after list for one store runs Dijkstra
only from nodes it has not started from before.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from weakref import WeakKeyDictionary

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from routing.errors import InvalidArgumentError
from routing.layout import Edge, Layout

__all__ = ["Arc", "CostGraph", "cost_graph"]

#: Occupancy ratios are rounded to this many decimals before they key the cache: live readings
#: jitter, and a 0.5% change in crowding is not worth recomputing every shortest path.
_OCCUPANCY_DECIMALS: Final = 2
#: A zone reported at more than this many times its capacity is a sensor fault, not a crowd; capping
#: keeps one bad reading from making a zone effectively impassable.
_MAX_OCCUPANCY: Final = 5.0
#: How many option sets are cached per layout (accessible or not x a few congestion snapshots).
_CACHED_GRAPHS_PER_LAYOUT: Final = 8


@dataclass(frozen=True, slots=True)
class Arc:
    """One walkable direction of an edge."""

    source: str
    target: str
    length_m: float
    cost: float
    edge: Edge


CongestionKey = tuple[tuple[str, float], ...]


class CostGraph:
    """Directed walk graph for one option set; shortest paths are computed lazily and cached.

    Safe to share between threads: the daemon runs the planner in an executor.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        accessible: bool,
        congestion: CongestionKey,
        congestion_weight: float,
    ) -> None:
        self.layout = layout
        self.accessible = accessible
        self.congestion = congestion
        self.congestion_weight = congestion_weight
        occupancy = dict(congestion)
        multiplier = {
            node.id: 1.0 + congestion_weight * occupancy.get(node.zone, 0.0) if node.zone else 1.0
            for node in layout.nodes
        }
        graph = nx.DiGraph()
        graph.add_nodes_from(node.id for node in layout.nodes)
        for edge in layout.edges:
            if edge.staff_only or (accessible and not edge.accessible):
                continue
            # An edge between two zones is half in each.
            cost = edge.length_m * (multiplier[edge.source] + multiplier[edge.target]) / 2
            graph.add_edge(
                edge.source,
                edge.target,
                cost=cost,
                arc=Arc(edge.source, edge.target, edge.length_m, cost, edge),
            )
            if not edge.one_way:
                graph.add_edge(
                    edge.target,
                    edge.source,
                    cost=cost,
                    arc=Arc(edge.target, edge.source, edge.length_m, cost, edge),
                )
        self._graph = graph
        self._lock = threading.Lock()
        self._shortest: dict[str, tuple[dict[str, list[str]], dict[str, float]]] = {}
        self._shortest_to: dict[str, dict[str, float]] = {}

    def _from(self, source: str) -> tuple[dict[str, list[str]], dict[str, float]]:
        with self._lock:
            cached = self._shortest.get(source)
        if cached is not None:
            return cached
        predecessors, distances = nx.dijkstra_predecessor_and_distance(self._graph, source, weight="cost")
        result = (dict(predecessors), dict(distances))
        with self._lock:
            return self._shortest.setdefault(source, result)

    def cost(self, source: str, target: str) -> float:
        """Cost of the cheapest walk; `inf` when `target` cannot be reached."""
        return self._from(source)[1].get(target, math.inf)

    def reachable_from(self, source: str) -> Mapping[str, float]:
        """Cost from `source` to every node it can reach."""
        return self._from(source)[1]

    def costs_to(self, target: str) -> Mapping[str, float]:
        """Cost to `target` from every node that can reach it (one Dijkstra on the reversed graph)."""
        with self._lock:
            cached = self._shortest_to.get(target)
        if cached is not None:
            return cached
        distances = dict(
            nx.single_source_dijkstra_path_length(self._graph.reverse(copy=False), target, weight="cost")
        )
        with self._lock:
            return self._shortest_to.setdefault(target, distances)

    def cost_matrix(self, sources: Sequence[str], targets: Sequence[str]) -> NDArray[np.float64]:
        matrix = np.full((len(sources), len(targets)), math.inf)
        for row, source in enumerate(sources):
            distances = self._from(source)[1]
            for column, target in enumerate(targets):
                matrix[row, column] = distances.get(target, math.inf)
        return matrix

    def path(self, source: str, target: str) -> list[str]:
        """Nodes of the cheapest walk from `source` to `target`, both included."""
        predecessors, distances = self._from(source)
        if target not in distances:
            raise KeyError(target)
        path = [target]
        while path[-1] != source:
            path.append(predecessors[path[-1]][0])
        path.reverse()
        return path

    def arc(self, source: str, target: str) -> Arc:
        arc: Arc = self._graph.edges[source, target]["arc"]
        return arc

    def arcs_along(self, path: Iterable[str]) -> list[Arc]:
        nodes = list(path)
        return [self.arc(a, b) for a, b in itertools.pairwise(nodes)]


_graphs: WeakKeyDictionary[Layout, OrderedDict[tuple[bool, CongestionKey, float], CostGraph]] = (
    WeakKeyDictionary()
)
_graphs_lock = threading.Lock()


def congestion_key(congestion: Mapping[str, float] | None, layout: Layout) -> CongestionKey:
    """Occupancy per zone of this layout, cleaned up for use as a cost factor and a cache key.

    Zones the layout does not have are ignored (the daemon reports every planogram zone, and a
    layout may not model them all); missing, negative or NaN readings count as an empty zone.
    """
    if not congestion:
        return ()
    zone_ids = {zone.id for zone in layout.zones}
    cleaned: list[tuple[str, float]] = []
    for zone, occupancy in sorted(congestion.items()):
        if zone not in zone_ids:
            continue
        if isinstance(occupancy, bool) or not isinstance(occupancy, int | float):
            raise InvalidArgumentError(f"congestion for zone {zone!r} must be a number, got {occupancy!r}")
        value = 0.0 if math.isnan(occupancy) else min(max(float(occupancy), 0.0), _MAX_OCCUPANCY)
        value = round(value, _OCCUPANCY_DECIMALS)
        if value > 0:
            cleaned.append((zone, value))
    return tuple(cleaned)


def cost_graph(
    layout: Layout,
    *,
    accessible: bool = False,
    congestion: Mapping[str, float] | None = None,
    congestion_weight: float = 1.0,
) -> CostGraph:
    """The (cached) cost graph of `layout` under these options."""
    if not math.isfinite(congestion_weight) or congestion_weight < 0:
        raise InvalidArgumentError(
            f"congestion_weight must be a non-negative number, got {congestion_weight}"
        )
    key = (accessible, congestion_key(congestion, layout), congestion_weight)
    with _graphs_lock:
        per_layout = _graphs.setdefault(layout, OrderedDict())
        graph = per_layout.get(key)
        if graph is not None:
            per_layout.move_to_end(key)
            return graph
    graph = CostGraph(layout, accessible=key[0], congestion=key[1], congestion_weight=congestion_weight)
    with _graphs_lock:
        per_layout = _graphs.setdefault(layout, OrderedDict())
        graph = per_layout.setdefault(key, graph)
        per_layout.move_to_end(key)
        while len(per_layout) > _CACHED_GRAPHS_PER_LAYOUT:
            per_layout.popitem(last=False)
    return graph
