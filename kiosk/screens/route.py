"""The walk through the store: the map drawn by routing.render, the stops in order, metres, minutes."""

from __future__ import annotations

from typing import cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.widgets import Button, Static

from kiosk.schemas import RouteStop, RouteView
from kiosk.strings import category_name, t
from kiosk.widgets import ConnectionBanner, KioskScreen
from routing import Layout, Route, RoutingError, Stop, Storage, render_ascii
from routing.directions import Side


def to_route(view: RouteView) -> Route:
    """The API's route JSON as the routing library's `Route`, for drawing."""
    stops = tuple(
        Stop(
            section=s.section,
            node=s.node,
            items=tuple(s.items),
            categories=(),
            storage=Storage(s.storage),
            place="",
            side=cast("Side | None", s.side if s.side in ("left", "right") else None),
        )
        for s in view.stops
    )
    return Route(
        start=view.start,
        end=view.end,
        stops=stops,
        path=tuple(view.path),
        distance_m=view.distance_m,
        minutes=view.minutes,
        directions=tuple(view.directions),
        unreachable=(),
        optimal=view.optimal,
        solver=view.solver,
    )


def stop_place(layout: Layout | None, stop: RouteStop) -> str:
    """Where a stop is, in words: "aisle 2, left side" from the layout, else "shelf A2-1, left side"."""
    section = None
    if layout is not None:
        try:
            section = layout.section(stop.section)
        except KeyError:
            section = None
    if section is not None and section.name:
        place = section.name
    elif layout is not None and layout.has_node(stop.node):
        place = layout.place_name(stop.node)
    else:
        place = t("route.shelf", shelf=stop.section)
    return f"{place}, {t('route.' + stop.side)}" if stop.side in ("left", "right") else place


def stop_line(number: int, layout: Layout | None, stop: RouteStop) -> str:
    items = ", ".join(category_name(item) for item in stop.items)
    return f"{number}. {items} - {stop_place(layout, stop)}"


class RouteMap(Static):
    """The store map with the route, redrawn to fit whenever the widget is resized."""

    def __init__(self, layout: Layout | None, route: RouteView) -> None:
        super().__init__(id="map")
        self._layout = layout
        self._route = route

    def on_resize(self, event: Resize) -> None:
        self.update(self.draw(event.size.width, event.size.height))

    def draw(self, width: int, height: int) -> str:
        if self._layout is None:
            return t("route.no_map")
        try:
            return render_ascii(self._layout, to_route(self._route), max(width, 20), max(height, 6))
        except (RoutingError, ValueError, KeyError):
            return t("route.map_mismatch")


class RouteScreen(KioskScreen):
    BINDINGS = [*KioskScreen.BINDINGS, Binding("escape", "back", "Back", show=False)]

    def __init__(self, layout: Layout | None, route: RouteView) -> None:
        super().__init__()
        self._layout = layout
        self._route = route

    def compose(self) -> ComposeResult:
        route = self._route
        yield ConnectionBanner()
        yield Static(
            t(
                "route.title",
                stops=len(route.stops),
                metres=f"{route.distance_m:.0f}",
                minutes=f"{route.minutes:.0f}",
            ),
            id="route-title",
            classes="title",
        )
        with Horizontal(id="route-body"):
            yield RouteMap(self._layout, route)
            with VerticalScroll(id="stops"):
                for number, stop in enumerate(route.stops, start=1):
                    yield Static(stop_line(number, self._layout, stop), classes="stop")
                for gap in route.unreachable:
                    yield Static(
                        t("route.not_on_route", item=category_name(gap.item), reason=gap.reason),
                        classes="gap",
                    )
        yield Button(t("common.back_to_list"), id="back", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#back", Button).focus()

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss()
