"""Store routing: the layout of a store, the shortest walk for a shopping list, and maps of both.

    from routing import load_layout, plan_route, render_ascii

    layout = load_layout("simulators/demo_store/layout.toml")
    route = plan_route(layout, ["milk", "bread", "ice cream"], start="kiosk-1")
    print(render_ascii(layout, route))
    print("\\n".join(route.directions))

A library with no dependency on the daemon: it never imports edge, sensors, sync, models or kiosk.

Only the errors load with the package; every other name loads on first use (the planner brings numpy
and networkx), so `import routing.errors` stays quick and reading a layout loads no solver (`storeedge
--help`, `storeedge config check`; tests/test_cli_imports.py, bench/cli_startup.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from routing.errors import (
    InvalidArgumentError,
    LayoutError,
    LayoutProblem,
    NoRouteError,
    RoutingError,
    UnknownNodeError,
)

if TYPE_CHECKING:
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

# Every name but the errors loads on first use (`__getattr__`), from the module named here.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            *("Aisle", "CategoryRule", "Edge", "EdgeTag", "Layout", "Node", "NodeKind", "Placement"),
            *("Section", "Storage", "Zone", "normalize_name"),
        ),
        "routing.layout",
    ),
    **dict.fromkeys(("load_layout", "parse_layout"), "routing.layout_file"),
    **dict.fromkeys(
        ("BUNDLED_LAYOUTS", "demo_layout_path", "load_bundled_layout", "load_demo_layout"), "routing.layouts"
    ),
    "EXACT_MAX_GROUPS": "routing.ordering",
    "Route": "routing.planner",
    "Stop": "routing.planner",
    "UnreachableItem": "routing.planner",
    "plan_route": "routing.planner",
    "render_ascii": "routing.render",
    "render_svg": "routing.render",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
