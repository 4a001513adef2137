"""The shopper's visit in one document (#17 item 4; ``GET /api/v1/in-store/{id}/personalization``): the
route by section (in walking order, each with its priority, the minutes from the start, what to pick
there and why), the aisles to skip, the cold-chain advice, the offers that fit, and reminders from the
household's own habits. Pure: built from the planned route, the shopping list and the offers.

- **priority** of a section: the most pressing of its items (urgent > coming up > usual);
- **minutes from the start**: the walk to the section along the route (its shortest paths between
  stops) at the planner's walking speed, plus the picking time of the stops before it;
- **skip**: the layout's aisles the route does not pass through;
- **cold chain**: the chilled and frozen stops, which the planner puts last, named so the shopper knows
  why the route ends where it does;
- **reminders**: the list's weekday habits ("you usually buy pet food on Fridays") and items that are due.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from models.shopping_list import URGENCY_ORDER
from routing import Layout, Route
from routing.graph import cost_graph
from routing.planner import DEFAULT_PICK_SECONDS, DEFAULT_WALKING_SPEED_M_S

COLD = {"chilled", "frozen"}
MAX_ROUTE_ITEMS = 200
MAX_ITEM_CHARS = 100


class ListEntry(Protocol):
    """A shopping-list item as the visit (and the shopper routes) read it."""

    @property
    def category(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def days_left(self) -> float | None: ...


class PickItem(msgspec.Struct, frozen=True):
    category: str
    why: str
    days_left: float | None


class SectionVisit(msgspec.Struct, frozen=True):
    order: int
    section: str
    place: str  # "Aisle 3", for people
    side: str | None
    storage: str
    priority: str  # urgent, upcoming, usual: the most pressing of its items
    minutes_from_start: float
    items: list[PickItem]
    node: str = ""  # the layout node the shopper stands at to pick (for the kiosk's map)


class VisitPlan(msgspec.Struct, frozen=True):
    household: str
    personalised: bool
    sections: list[SectionVisit]
    skip: list[str]  # aisles the route does not pass through
    cold_chain: str | None
    reminders: list[str]
    offers: list[object]
    distance_m: float
    minutes: float
    directions: list[str]
    unreachable: list[str]
    # The walk itself, so a kiosk can draw it on its map and re-plan from a stop (``?from=``).
    start: str = ""
    end: str = ""
    path: list[str] = []


def visit_plan(
    layout: Layout,
    route: Route,
    groups: dict[str, Sequence[ListEntry]],
    offers: Sequence[object],
    *,
    household: str,
    personalised: bool,
    accessible: bool = False,
) -> VisitPlan:
    """The document (module docstring) from a planned ``route`` over the list's ``groups`` (urgent,
    upcoming, usual)."""
    entry: dict[str, tuple[str, ListEntry]] = {}  # category -> (urgency, its list entry)
    for urgency in ("urgent", "upcoming", "usual"):
        for item in groups.get(urgency, ()):
            entry.setdefault(item.category, (urgency, item))
    graph = cost_graph(layout, accessible=accessible)
    walked, here = 0.0, route.start
    sections = []
    for order, stop in enumerate(route.stops, start=1):
        walked += graph.cost(here, stop.node)
        here = stop.node
        minutes = (walked / DEFAULT_WALKING_SPEED_M_S + (order - 1) * DEFAULT_PICK_SECONDS) / 60.0
        picks = []
        for category in stop.categories:
            found = entry.get(category)
            if found is None:
                picks.append(PickItem(category, "on your list", None))
            else:
                picks.append(PickItem(category, found[1].reason, found[1].days_left))
        priority = min(
            (entry[c][0] for c in stop.categories if c in entry),
            key=URGENCY_ORDER.__getitem__,
            default="usual",
        )
        sections.append(
            SectionVisit(
                order,
                stop.section,
                stop.place,
                stop.side,
                stop.storage.value,
                priority,
                round(minutes, 1),
                picks,
                stop.node,
            )
        )
    return VisitPlan(
        household=household,
        personalised=personalised,
        sections=sections,
        skip=_skipped_aisles(layout, route.path),
        cold_chain=_cold_chain(sections),
        reminders=_reminders(entry.values()),
        offers=list(offers),
        distance_m=round(route.distance_m, 1),
        minutes=round(route.minutes, 1),
        directions=list(route.directions),
        unreachable=[u.item for u in route.unreachable],
        start=route.start,
        end=route.end,
        path=list(route.path),
    )


def parse_items(raw: str) -> list[str]:
    """``?items=milk,bread``: the list entries left to route (empty: only the walk to a checkout).
    Comma-separated, none blank, at most 200 of at most 100 characters; `ValueError` says what is wrong."""
    if not raw.strip():
        return []
    items = [part.strip() for part in raw.split(",")]
    if any(not item for item in items):
        raise ValueError("items: expected comma-separated list entries, none blank")
    if len(items) > MAX_ROUTE_ITEMS:
        raise ValueError(f"items: at most {MAX_ROUTE_ITEMS} entries")
    if any(len(item) > MAX_ITEM_CHARS for item in items):
        raise ValueError(f"items: an entry is longer than {MAX_ITEM_CHARS} characters")
    return items


def _skipped_aisles(layout: Layout, path: Sequence[str]) -> list[str]:
    walked = set(path)
    return [a.name for a in layout.aisles if not walked.intersection(a.nodes)]


def _cold_chain(sections: Sequence[SectionVisit]) -> str | None:
    cold = [s for s in sections if s.storage in COLD]
    if not cold:
        return None
    names = ", ".join(i.category for s in cold for i in s.items)
    stops = ", ".join(str(s.order) for s in cold)
    last = cold[-1].order == len(sections)
    where = "at the end of your route" if last else "late in your route"
    return f"Chilled and frozen items ({names}) are stops {stops}, {where}, so they stay cold until the till."


def _reminders(entries: Iterable[tuple[str, ListEntry]]) -> list[str]:
    found = []
    for urgency, item in entries:
        if item.reason.startswith("you usually buy "):
            found.append(item.reason[0].upper() + item.reason[1:])
        elif urgency == "urgent" and item.days_left == 0:
            found.append(f"{item.category} is due: {item.reason}")
    return found
