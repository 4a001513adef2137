"""Command-line glue for route planning: `storeedge route` is built from these two functions.

    storeedge route --items milk,bread,ice-cream
    storeedge route --layout store.toml --items pasta,rice --from kiosk-1 --accessible --json

Exit codes: 0 route printed (entries that cannot be collected are listed, not fatal); 1 no route
exists; 2 the layout file or an argument is wrong (every layout problem is printed to stderr; an
argument's error names the option: ``error: --width 0: ...``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from routing.errors import InvalidArgumentError, LayoutError, RoutingError, UnknownNodeError

if TYPE_CHECKING:
    from routing.layout import Layout
    from routing.planner import Route

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
    parser.add_argument(
        "--to", dest="end", metavar="NODE", help="end node, a checkout (default: the nearest checkout)"
    )
    parser.add_argument("--accessible", action="store_true", help="avoid stairs and narrow aisles")
    parser.add_argument(
        "--no-precedence",
        action="store_true",
        help="do not force ambient -> chilled -> frozen order",
    )
    parser.add_argument("--json", action="store_true", help="print the route as JSON instead of a map")
    parser.add_argument(
        "--width",
        type=int,
        default=80,
        help="map width in characters, 20-1000 (default: 80)",  # routing.render.MAP_WIDTHS
    )
    parser.add_argument(
        "--height",
        type=int,
        default=24,
        help="map height in lines, 6-1000 (default: 24)",  # routing.render.MAP_HEIGHTS
    )
    parser.add_argument("--ascii", action="store_true", help="draw the map with plain ASCII characters")


def run(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Plan and print a route for parsed `args`; returns the process exit code."""
    # Imported here, not at the top: `storeedge --help` builds this parser and needs none of it.
    from routing.layout_file import load_layout  # noqa: PLC0415
    from routing.layouts import load_demo_layout  # noqa: PLC0415
    from routing.planner import plan_route  # noqa: PLC0415 - numpy and networkx
    from routing.render import map_size_problem, render_ascii  # noqa: PLC0415

    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    # Checked before any work: a map of --width 100000 --height 100000 would take gigabytes.
    size_problem = map_size_problem(args.width, args.height, ("--width", "--height"))
    if size_problem is not None:
        print(f"error: {size_problem}", file=err)
        return EXIT_BAD_INPUT
    try:
        layout = load_layout(args.layout) if args.layout is not None else load_demo_layout()
    except LayoutError as exc:
        if len(exc.problems) == 1:  # one line, naming the file: `error: store.toml: nodes[2].x: ...`
            print(f"error: {exc.problems[0]}", file=err)
            return EXIT_BAD_INPUT
        print(f"error: {len(exc.problems)} problems in store layout {exc.source}:", file=err)
        for problem in exc.problems:
            print(f"  {problem}", file=err)
        return EXIT_BAD_INPUT
    end_problem = _end_problem(layout, args.end)
    if end_problem is not None:
        print(f"error: {end_problem}", file=err)
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


def _end_problem(layout: Layout, end: str | None) -> str | None:
    """A walk ends where the shopper pays: --to must name a checkout (unknown ids are the planner's)."""
    from routing.layout import NodeKind  # noqa: PLC0415

    if end is None or not layout.has_node(end) or layout.node(end).kind is NodeKind.CHECKOUT:
        return None
    kind = layout.node(end).kind.value.replace("_", " ")
    checkouts = ", ".join(node.id for node in layout.nodes if node.kind is NodeKind.CHECKOUT)
    return (
        f"--to {end}: not a checkout node (kind {kind}) in {layout.source}; checkouts: {checkouts or 'none'}"
    )


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
