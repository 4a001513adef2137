"""The route screen's words and map input, from the visit document and the store's layout.

Turn-by-turn steps come from `routing.directions.walk_steps` (distances and turns from the node path
and the layout's coordinates) and are put into the shopper's language here: "Turn left and walk 12 m
to aisle 3: Milk on your left (chilled)". Metres are rounded to whole metres (at least 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from kiosk.route_map import Legend, MapRoute, MapStop
from kiosk.strings import category_name, t
from kiosk.visit import SectionView, VisitView
from routing import Layout, RoutingError
from routing.directions import WalkStep, walk_steps

__all__ = ["legend", "map_route", "route_steps", "step_text", "walk_text"]


def legend() -> Legend:
    return Legend(
        here=t("route.map_here"),
        next_stop=t("route.map_next"),
        route=t("route.map_route"),
        walked=t("route.map_walked"),
        entrance=t("route.map_entrance"),
        checkout=t("route.map_checkout"),
        chilled=t("route.map_chilled"),
        frozen=t("route.map_frozen"),
        ambient=t("route.map_ambient"),
        narrow=t("route.map_narrow"),
    )


def route_steps(layout: Layout | None, visit: VisitView) -> tuple[WalkStep, ...] | None:
    """One step per section and one to the checkout, or None if the layout cannot follow the path."""
    if layout is None or not visit.path or not visit.end:
        return None
    nodes = [_node(layout, section) for section in visit.sections]
    if any(node is None for node in nodes):
        return None
    try:
        return walk_steps(layout, visit.path, [node for node in nodes if node is not None] + [visit.end])
    except (RoutingError, KeyError):
        return None


def walk_text(step: WalkStep) -> str:
    metres = max(1, round(step.distance_m))
    if step.distance_m < 0.5:
        return t("route.walk_none", place=step.place)
    key = "route.walk_start" if step.turn is None else f"route.walk_{step.turn}"
    return t(key, metres=metres, place=step.place)


def pick_text(section: SectionView) -> str:
    items = ", ".join(category_name(item.category) for item in section.items)
    key = f"route.pick_{section.side}" if section.side in ("left", "right") else "route.pick"
    text = t(key, items=items)
    if section.storage in ("chilled", "frozen"):
        text += f" ({t('route.storage_' + section.storage)})"
    return text


def step_text(section: SectionView | None, step: WalkStep | None, place: str) -> str:
    """A stop's step ("Walk 12 m to aisle 3: Milk on your left (chilled)"), or the walk to the checkout
    when `section` is None. Without a step (no matching map) the stop's place stands for the walk."""
    walk = walk_text(step) if step is not None else place
    if section is None:
        return t("route.step_end", walk=walk)
    return t("route.step", walk=walk, pick=pick_text(section))


def map_route(layout: Layout, visit: VisitView, walked: Sequence[str]) -> MapRoute:
    """The map's view of the visit: here is where the walk starts, the next leg ends at stop 1."""
    stops = []
    for section in visit.sections:
        position = _position(layout, section)
        if position is not None:
            stops.append(MapStop(section.order, position))
    next_leg: tuple[str, ...] = ()
    first = _node(layout, visit.sections[0]) if visit.sections else visit.end
    if first and first in visit.path:
        next_leg = tuple(visit.path[: visit.path.index(first) + 1])
    return MapRoute(
        here=visit.start or visit.path[0],
        path=tuple(visit.path),
        stops=tuple(stops),
        next_leg=next_leg,
        walked=tuple(walked),
    )


def _node(layout: Layout, section: SectionView) -> str | None:
    if section.node:
        return section.node
    try:
        return layout.section(section.section).node
    except KeyError:
        return None


def _position(layout: Layout, section: SectionView) -> tuple[float, float] | None:
    try:
        found = layout.section(section.section)
    except KeyError:
        node = section.node
        return (layout.node(node).x, layout.node(node).y) if node and layout.has_node(node) else None
    if found.position is not None:
        return found.position
    node_of = layout.node(found.node)
    return node_of.x, node_of.y
