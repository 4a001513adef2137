"""Store routing: the layout of a store, the shortest walk for a shopping list, and maps of both.

    from routing import load_layout, plan_route, render_ascii

    layout = load_layout("simulators/demo_store/layout.toml")
    route = plan_route(layout, ["milk", "bread", "ice cream"], start="kiosk-1")
    print(render_ascii(layout, route))
    print("\\n".join(route.directions))

A library with no dependency on the daemon: it never imports edge, sensors, sync, models or kiosk.
"""

from routing.errors import (
    InvalidArgumentError,
    LayoutError,
    LayoutProblem,
    NoRouteError,
    RoutingError,
    UnknownNodeError,
)
from routing.layout import (
    Aisle,
    CategoryRule,
    Edge,
    EdgeTag,
    Layout,
    Node,
    NodeKind,
    Placement,
    Section,
    Storage,
    Zone,
    normalize_name,
)
from routing.layout_file import load_layout, parse_layout
from routing.layouts import BUNDLED_LAYOUTS, demo_layout_path, load_bundled_layout, load_demo_layout
from routing.ordering import EXACT_MAX_GROUPS
from routing.planner import Route, Stop, UnreachableItem, plan_route
from routing.render import render_ascii, render_svg

__all__ = [
    "BUNDLED_LAYOUTS",
    "EXACT_MAX_GROUPS",
    "Aisle",
    "CategoryRule",
    "Edge",
    "EdgeTag",
    "InvalidArgumentError",
    "Layout",
    "LayoutError",
    "LayoutProblem",
    "NoRouteError",
    "Node",
    "NodeKind",
    "Placement",
    "Route",
    "RoutingError",
    "Section",
    "Stop",
    "Storage",
    "UnknownNodeError",
    "UnreachableItem",
    "Zone",
    "demo_layout_path",
    "load_bundled_layout",
    "load_demo_layout",
    "load_layout",
    "normalize_name",
    "parse_layout",
    "plan_route",
    "render_ascii",
    "render_svg",
]
