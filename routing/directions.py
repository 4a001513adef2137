"""Turn a walk through the store into directions in words.

Left and right come from the coordinates: the heading is the direction of the last step taken, and
the sign of the cross product between two headings (or between the heading and a shelf) tells the side.
x grows towards the east wall and y towards the back wall, so a positive cross product is a left turn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from routing.errors import InvalidArgumentError
from routing.graph import Arc
from routing.layout import Layout

__all__ = [
    "Leg",
    "Side",
    "StopText",
    "Turn",
    "WalkStep",
    "describe_walk",
    "shelf_side",
    "turn_between",
    "walk_steps",
]

Side = Literal["left", "right"]
Turn = Literal["straight", "left", "right", "around"]

#: Within this many degrees of straight on, a change of direction is not worth mentioning.
_STRAIGHT_DEGREES: Final = 35.0
#: Beyond this many degrees it is a U-turn (common in aisles: pick, then walk back out).
_AROUND_DEGREES: Final = 145.0

Heading = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Leg:
    """The walk from one stop (or the start) to the next stop (or the end)."""

    arcs: tuple[Arc, ...]


@dataclass(frozen=True, slots=True)
class StopText:
    """What the directions need to know about a stop."""

    place: str  # "Aisle 3"
    side: Side | None
    items: tuple[str, ...]


def heading_of(layout: Layout, arc: Arc) -> Heading:
    a, b = layout.node(arc.source), layout.node(arc.target)
    return (b.x - a.x, b.y - a.y)


def turn_between(before: Heading, after: Heading) -> Turn:
    cross = before[0] * after[1] - before[1] * after[0]
    dot = before[0] * after[0] + before[1] * after[1]
    if cross == 0 and dot == 0:
        return "straight"
    angle = math.degrees(math.atan2(cross, dot))
    if abs(angle) <= _STRAIGHT_DEGREES:
        return "straight"
    if abs(angle) >= _AROUND_DEGREES:
        return "around"
    return "left" if angle > 0 else "right"


def shelf_side(heading: Heading | None, offset: Heading) -> Side | None:
    """Which side a shelf at `offset` from the walker is on, walking along `heading`."""
    if heading is None or math.hypot(*offset) < 1e-6 or math.hypot(*heading) < 1e-9:
        return None
    cross = heading[0] * offset[1] - heading[1] * offset[0]
    # A shelf straight ahead or behind has no side; 5% of the offset length is "straight".
    if abs(cross) < 0.05 * math.hypot(*heading) * math.hypot(*offset):
        return None
    return "left" if cross > 0 else "right"


@dataclass(frozen=True, slots=True)
class _Run:
    corridor: str | None
    length_m: float
    first: Heading
    last: Heading


def _runs(layout: Layout, arcs: Sequence[Arc]) -> list[_Run]:
    """Consecutive arcs along the same corridor, merged."""
    runs: list[_Run] = []
    for arc in arcs:
        heading = heading_of(layout, arc)
        corridor = arc.edge.corridor
        if runs and runs[-1].corridor == corridor:
            previous = runs[-1]
            runs[-1] = _Run(corridor, previous.length_m + arc.length_m, previous.first, heading)
        else:
            runs.append(_Run(corridor, arc.length_m, heading, heading))
    return runs


def _metres(length_m: float) -> str:
    return f"{max(1, round(length_m))} m"


def _along(corridor: str | None) -> str:
    return f" along {corridor}" if corridor else ""


def describe_leg(layout: Layout, leg: Leg, facing: Heading | None) -> str:
    """'turn right, walk 12 m along the back cross-aisle, turn left into Aisle 4 and walk 4 m'."""
    phrases: list[str] = []
    runs = _runs(layout, leg.arcs)
    for index, run in enumerate(runs):
        turn = turn_between(facing, run.first) if facing is not None else "straight"
        distance = _metres(run.length_m)
        if index == 0:
            lead = {
                "straight": "",
                "left": "turn left, ",
                "right": "turn right, ",
                "around": "turn around, ",
            }[turn]
            phrases.append(f"{lead}walk {distance}{_along(run.corridor)}")
        elif run.corridor:
            verb = {
                "straight": "carry on into",
                "left": "turn left into",
                "right": "turn right into",
                "around": "turn around into",
            }[turn]
            phrases.append(f"{verb} {run.corridor} and walk {distance}")
        else:
            verb = {
                "straight": "carry on",
                "left": "turn left",
                "right": "turn right",
                "around": "turn around",
            }[turn]
            phrases.append(f"{verb} and walk {distance}")
        facing = run.last
    return ", ".join(phrases)


def _last_heading(layout: Layout, leg: Leg, fallback: Heading | None) -> Heading | None:
    return heading_of(layout, leg.arcs[-1]) if leg.arcs else fallback


def _spot_phrase(stops: Sequence[StopText]) -> str:
    """'Aisle 3, left side: pasta, rice; right side: sauces' for stops made at one spot."""
    by_side: list[tuple[Side | None, list[str]]] = []
    for stop in stops:
        if by_side and by_side[-1][0] == stop.side:
            by_side[-1][1].extend(stop.items)
        else:
            by_side.append((stop.side, list(stop.items)))
    parts = [f"{side} side: {', '.join(items)}" if side else ", ".join(items) for side, items in by_side]
    first_side = by_side[0][0]
    separator = ", " if first_side else ": "
    return f"{stops[0].place}{separator}{'; '.join(parts)}"


def describe_walk(
    layout: Layout,
    start_label: str,
    end_label: str,
    legs: Sequence[Leg],
    stops: Sequence[StopText],
) -> tuple[str, ...]:
    """One sentence for the start, one per place visited (stops at one spot share it), one for the end.

    `legs` has one more entry than `stops`: start -> stop 1, ..., stop n -> end.
    """
    if len(legs) != len(stops) + 1:
        raise ValueError("need exactly one more leg than stops")
    sentences: list[str] = []
    facing: Heading | None = None
    first_leg = describe_leg(layout, legs[0], None)
    if legs[0].arcs:
        ending = f" to {end_label}" if not stops else ""
        sentences.append(f"Start at {start_label}: {first_leg}{ending}.")
    else:
        sentences.append(f"Start at {start_label}.")
    facing = _last_heading(layout, legs[0], facing)
    spot: list[StopText] = []
    for index, stop in enumerate(stops):
        spot.append(stop)
        next_leg = legs[index + 1]
        if not next_leg.arcs and index + 1 < len(stops):
            continue  # the next stop is at the same spot: one sentence for both
        text = _spot_phrase(spot)
        spot = []
        if next_leg.arcs:
            ending = f" to {end_label}" if index + 1 == len(stops) else ""
            text += f"; then {describe_leg(layout, next_leg, facing)}{ending}"
        sentences.append(text[0].upper() + text[1:] + ".")
        facing = _last_heading(layout, next_leg, facing)
    sentences.append(f"Pay at {end_label}.")
    return tuple(sentences)


@dataclass(frozen=True, slots=True)
class WalkStep:
    """One leg of a walk for turn-by-turn directions, as data (the kiosk puts it into words):
    which way to turn first, how far to walk, and where the leg ends."""

    node: str  # where the leg ends: a stop's node or the end of the walk
    place: str  # that node in words ("aisle 3", "checkout 4")
    distance_m: float  # along the path; 0 for a stop at the same spot as the one before
    turn: Turn | None  # relative to the way the walker faces; None at the start (no heading yet)


def walk_steps(layout: Layout, path: Sequence[str], waypoints: Sequence[str]) -> tuple[WalkStep, ...]:
    """Split a route's node `path` at its `waypoints` (stop nodes in visiting order, then the end) into
    one step per waypoint. Consecutive path nodes must be joined by an edge; each waypoint must come on
    the path at or after the one before it (legs are shortest paths, so the first match ends a leg)."""
    lengths: dict[tuple[str, str], float] = {}
    for edge in layout.edges:
        lengths[(edge.source, edge.target)] = edge.length_m
        lengths.setdefault((edge.target, edge.source), edge.length_m)
    steps: list[WalkStep] = []
    facing: Heading | None = None
    index = 0
    for waypoint in waypoints:
        try:
            end = path.index(waypoint, index)
        except ValueError:
            raise InvalidArgumentError(
                f"waypoint {waypoint!r} is not on the path after node {index}"
            ) from None
        distance, turn = 0.0, None
        for a, b in zip(path[index:end], path[index + 1 : end + 1], strict=True):
            if (a, b) not in lengths:
                raise InvalidArgumentError(f"path steps from {a!r} to {b!r}, which no edge joins")
            first, second = layout.node(a), layout.node(b)
            heading = (second.x - first.x, second.y - first.y)
            if distance == 0.0 and facing is not None:
                turn = turn_between(facing, heading)
            distance += lengths[(a, b)]
            facing = heading
        steps.append(WalkStep(waypoint, layout.place_name(waypoint), distance, turn))
        index = end
    return tuple(steps)
