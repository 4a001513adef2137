"""Command-line glue for route planning: `storeedge route` is built from these two functions.

    storeedge route --items milk,bread,ice-cream
    storeedge route --layout store.toml --items pasta,rice --from kiosk-1 --accessible --json

Exit codes: 0 route printed (entries that cannot be collected are listed, not fatal); 1 no route
exists; 2 the layout file or an argument is wrong (every layout problem is printed to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from routing.errors import InvalidArgumentError, LayoutError, RoutingError, UnknownNodeError
from routing.layout import Layout
from routing.layout_file import load_layout
from routing.layouts import load_demo_layout
from routing.planner import Route, plan_route
from routing.render import render_ascii

__all__ = ["configure_parser", "run"]

EXIT_OK = 0
EXIT_NO_ROUTE = 1
EXIT_BAD_INPUT = 2

_EXAMPLES = """\
examples:
  %(prog)s --items milk,bread,ice-cream
  %(prog)s --layout store.toml --items "pasta,tinned tomatoes" --from kiosk-1 --accessible
  %(prog)s --items milk,eggs --to checkout-2 --json
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the route-planning options to `parser` (a fresh parser or a sub-command's)."""
    if parser.description is None:
        parser.description = "Plan the shortest walk through the store for a shopping list."
    if parser.epilog is None:
        parser.epilog = _EXAMPLES
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--layout",
        type=Path,
        metavar="FILE",
        help="store layout TOML file (default: the demo store's layout)",
    )
    parser.add_argument(
        "--items",
        default="",
        metavar="LIST",
        help="comma-separated shopping list: categories, aliases or product names, e.g. milk,bread,ice-cream",
    )
    parser.add_argument("--from", dest="start", metavar="NODE", help="start node (default: the entrance)")
    parser.add_argument("--to", dest="end", metavar="NODE", help="end node (default: the nearest checkout)")
    parser.add_argument("--accessible", action="store_true", help="avoid stairs and narrow aisles")
    parser.add_argument(
        "--no-precedence",
        action="store_true",
        help="do not force ambient -> chilled -> frozen order",
    )
    parser.add_argument("--json", action="store_true", help="print the route as JSON instead of a map")
    parser.add_argument("--width", type=int, default=80, help="map width in characters (default: 80)")
    parser.add_argument("--height", type=int, default=24, help="map height in lines (default: 24)")
    parser.add_argument("--ascii", action="store_true", help="draw the map with plain ASCII characters")


def run(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Plan and print a route for parsed `args`; returns the process exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        layout = load_layout(args.layout) if args.layout is not None else load_demo_layout()
    except LayoutError as exc:
        noun = "problem" if len(exc.problems) == 1 else "problems"
        print(f"error: {len(exc.problems)} {noun} in store layout {exc.source}:", file=err)
        for problem in exc.problems:
            print(f"  {problem}", file=err)
        return EXIT_BAD_INPUT
    items = [item.strip() for item in args.items.split(",") if item.strip()]
    try:
        route = plan_route(
            layout,
            items,
            start=args.start,
            end=args.end,
            accessible=args.accessible,
            precedence=not args.no_precedence,
        )
    except (UnknownNodeError, InvalidArgumentError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_BAD_INPUT
    except RoutingError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_NO_ROUTE
    if args.json:
        print(json.dumps(route.to_dict(), indent=2, ensure_ascii=False), file=out)
        return EXIT_OK
    try:
        drawing = render_ascii(layout, route, width=args.width, height=args.height, unicode=not args.ascii)
    except InvalidArgumentError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_BAD_INPUT
    print(drawing, file=out)
    print(_describe(layout, route), file=out)
    return EXIT_OK


def _describe(layout: Layout, route: Route) -> str:
    lines = [f"{index}. {sentence}" for index, sentence in enumerate(route.directions, start=1)]
    stops = len(route.stops)
    note = "shortest possible" if route.optimal else "near-shortest"
    lines.append("")
    lines.append(
        f"{route.distance_m:.0f} m, about {route.minutes:.0f} min with picking; "
        f"{stops} stop{'s' if stops != 1 else ''} ({note} order) in {layout.store_name}."
    )
    for entry in route.unreachable:
        lines.append(f"Not on this route: {entry.item}: {entry.reason}")
    return "\n".join(lines)
