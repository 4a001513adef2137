"""Draw a layout, and optionally a route, as a text map (for the kiosk) or SVG (for docs).

The text map keeps the floor plan's proportions, assuming terminal cells twice as tall as they are
wide, and is centred in the box. Walkways are box-drawing lines (narrow ones dotted, stairs double),
shelves are shaded by storage, and the route is drawn heavy with its stops numbered at the shelf.
Staff-only edges are not drawn: the map is for shoppers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from routing.errors import InvalidArgumentError
from routing.layout import Edge, EdgeTag, Layout, NodeKind, Storage

if TYPE_CHECKING:  # annotations only: drawing needs no planner (numpy, networkx)
    from routing.planner import Route

__all__ = ["MAP_HEIGHTS", "MAP_WIDTHS", "map_size_problem", "render_ascii", "render_svg"]

# The text map's size in characters, smallest and largest. The largest bounds the memory a map takes
# (1000 x 1000: about 30 MB and half a second), far beyond any terminal.
MAP_WIDTHS: Final = range(20, 1001)
MAP_HEIGHTS: Final = range(6, 1001)
_CELL_ASPECT: Final = 2.0  # a terminal cell is about twice as tall as it is wide

# Direction bits of a line through a cell.
_N, _E, _S, _W = 1, 2, 4, 8

_LIGHT: Final = {
    0: " ", _E: "─", _W: "─", _E | _W: "─", _N: "│", _S: "│", _N | _S: "│",
    _E | _S: "┌", _W | _S: "┐", _E | _N: "└", _W | _N: "┘",
    _E | _W | _S: "┬", _E | _W | _N: "┴", _N | _S | _E: "├", _N | _S | _W: "┤", _N | _E | _S | _W: "┼",
}  # fmt: skip
_HEAVY: Final = {
    0: " ", _E: "━", _W: "━", _E | _W: "━", _N: "┃", _S: "┃", _N | _S: "┃",
    _E | _S: "┏", _W | _S: "┓", _E | _N: "┗", _W | _N: "┛",
    _E | _W | _S: "┳", _E | _W | _N: "┻", _N | _S | _E: "┣", _N | _S | _W: "┫", _N | _E | _S | _W: "╋",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Glyphs:
    shelf: dict[Storage, str]
    narrow: tuple[str, str]  # horizontal, vertical
    stairs: tuple[str, str]
    kinds: dict[NodeKind, str]
    unicode: bool

    def line(self, bits: int, *, heavy: bool) -> str:
        if self.unicode:
            return (_HEAVY if heavy else _LIGHT)[bits]
        if heavy:
            return "*"
        if bits & (_E | _W) and bits & (_N | _S):
            return "+"
        return "-" if bits & (_E | _W) else "|"


_KIND_GLYPHS: Final = {
    NodeKind.ENTRANCE: "E",
    NodeKind.EXIT: "X",
    NodeKind.CHECKOUT: "$",
    NodeKind.KIOSK: "K",
}
_UNICODE: Final = _Glyphs(
    shelf={Storage.AMBIENT: "▓", Storage.CHILLED: "░", Storage.FROZEN: "▒"},
    narrow=("┄", "┆"),
    stairs=("═", "║"),
    kinds=_KIND_GLYPHS,
    unicode=True,
)
_ASCII: Final = _Glyphs(
    shelf={Storage.AMBIENT: "#", Storage.CHILLED: "~", Storage.FROZEN: "%"},
    narrow=(".", ":"),
    stairs=("=", "H"),
    kinds=_KIND_GLYPHS,
    unicode=False,
)


class _Canvas:
    """A character grid plus the line bits that become box-drawing characters at the end."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.bits = [[0] * width for _ in range(height)]
        self.heavy = [[False] * width for _ in range(height)]
        self.text: list[list[str | None]] = [[None] * width for _ in range(height)]

    def inside(self, col: int, row: int) -> bool:
        return 0 <= col < self.width and 0 <= row < self.height

    def put(self, col: int, row: int, char: str, *, overwrite: bool = True) -> None:
        if self.inside(col, row) and (overwrite or self.text[row][col] is None):
            self.text[row][col] = char

    def line(self, start: tuple[int, int], end: tuple[int, int], *, heavy: bool) -> list[tuple[int, int]]:
        """A 4-connected line (horizontal first, then vertical); returns the cells it crosses."""
        (c0, r0), (c1, r1) = start, end
        cells = [(c0, r0)]
        col, row = c0, r0
        while col != c1:
            step = 1 if c1 > col else -1
            self._join((col, row), (col + step, row), heavy)
            col += step
            cells.append((col, row))
        while row != r1:
            step = 1 if r1 > row else -1
            self._join((col, row), (col, row + step), heavy)
            row += step
            cells.append((col, row))
        return cells

    def _join(self, a: tuple[int, int], b: tuple[int, int], heavy: bool) -> None:
        (ca, ra), (cb, rb) = a, b
        if cb > ca:
            bit_a, bit_b = _E, _W
        elif cb < ca:
            bit_a, bit_b = _W, _E
        elif rb > ra:
            bit_a, bit_b = _S, _N
        else:
            bit_a, bit_b = _N, _S
        for (col, row), bit in (((ca, ra), bit_a), ((cb, rb), bit_b)):
            if self.inside(col, row):
                self.bits[row][col] |= bit
                if heavy:
                    self.heavy[row][col] = True

    def lines(self, glyphs: _Glyphs) -> list[str]:
        rows: list[str] = []
        for row in range(self.height):
            chars = []
            for col in range(self.width):
                text = self.text[row][col]
                bits = self.bits[row][col]
                if text is not None:
                    chars.append(text)
                elif bits:
                    chars.append(glyphs.line(bits, heavy=self.heavy[row][col]))
                else:
                    chars.append(" ")
            rows.append("".join(chars).rstrip())
        return rows


@dataclass(frozen=True, slots=True)
class _Projection:
    """Floor-plan metres to grid cells, keeping proportions and centring the plan in the box."""

    min_x: float
    max_y: float
    metres_per_col: float
    col_offset: int
    row_offset: int

    def cell(self, x: float, y: float) -> tuple[int, int]:
        col = round((x - self.min_x) / self.metres_per_col) + self.col_offset
        row = round((self.max_y - y) / (self.metres_per_col * _CELL_ASPECT)) + self.row_offset
        return col, row


def _points(layout: Layout) -> Iterable[tuple[float, float]]:
    for node in layout.nodes:
        yield node.x, node.y
    for section in layout.sections:
        if section.position is not None:
            yield section.position


def _project(layout: Layout, width: int, height: int) -> _Projection:
    points = list(_points(layout))
    min_x = min(x for x, _ in points)
    max_x = max(x for x, _ in points)
    min_y = min(y for _, y in points)
    max_y = max(y for _, y in points)
    span_x, span_y = max(max_x - min_x, 1e-9), max(max_y - min_y, 1e-9)
    metres_per_col = max(span_x / (width - 1), span_y / (_CELL_ASPECT * (height - 1)))
    used_cols = round(span_x / metres_per_col) + 1
    used_rows = round(span_y / (metres_per_col * _CELL_ASPECT)) + 1
    return _Projection(min_x, max_y, metres_per_col, (width - used_cols) // 2, (height - used_rows) // 2)


def _edge_glyph(edge: Edge, glyphs: _Glyphs, horizontal: bool) -> str | None:
    if EdgeTag.STAIRS in edge.tags:
        return glyphs.stairs[0 if horizontal else 1]
    if EdgeTag.NARROW in edge.tags:
        return glyphs.narrow[0 if horizontal else 1]
    return None


def _legend(glyphs: _Glyphs, with_route: bool, width: int) -> str:
    """As many legend entries as fit on one line of `width`."""
    shelf = glyphs.shelf
    parts = [
        f"{shelf[Storage.AMBIENT]} ambient",
        f"{shelf[Storage.CHILLED]} chilled",
        f"{shelf[Storage.FROZEN]} frozen",
        "E entrance",
        "$ checkout",
        "K kiosk",
        "X exit",
    ]
    if with_route:
        parts.insert(0, f"{glyphs.line(_E | _W, heavy=True)} route")
    text = ""
    for part in parts:
        candidate = f"{text}  {part}" if text else part
        if len(candidate) > width:
            break
        text = candidate
    return text


def map_size_problem(width: int, height: int, names: tuple[str, str] = ("width", "height")) -> str | None:
    """What is wrong with a text map's size (`names`: how the caller calls them, e.g. its options)."""
    for name, value, allowed in ((names[0], width, MAP_WIDTHS), (names[1], height, MAP_HEIGHTS)):
        if value not in allowed:
            return (
                f"{name} {value}: the map needs at least {MAP_WIDTHS.start}x{MAP_HEIGHTS.start} characters "
                f"and at most {MAP_WIDTHS.stop - 1}x{MAP_HEIGHTS.stop - 1}"
            )
    return None


def render_ascii(
    layout: Layout,
    route: Route | None = None,
    width: int = 80,
    height: int = 24,
    unicode: bool = True,
    *,
    legend: bool = True,
) -> str:
    """A map of the store in a `width` x `height` box (the last line is a legend if `legend`)."""
    problem = map_size_problem(width, height)
    if problem is not None:
        raise InvalidArgumentError(problem)
    glyphs = _UNICODE if unicode else _ASCII
    legend_text = _legend(glyphs, route is not None, width) if legend else None
    map_height = height - 1 if legend_text is not None else height
    projection = _project(layout, width, map_height)
    canvas = _Canvas(width, map_height)

    def cell(node_id: str) -> tuple[int, int]:
        node = layout.node(node_id)
        return projection.cell(node.x, node.y)

    for edge in layout.edges:
        if edge.staff_only:
            continue
        start, end = cell(edge.source), cell(edge.target)
        cells = canvas.line(start, end, heavy=False)
        horizontal = abs(end[0] - start[0]) >= abs(end[1] - start[1])
        special = _edge_glyph(edge, glyphs, horizontal)
        if special is not None:
            # Mark the inside of the edge only, so junctions at its ends still read as junctions.
            for col, row in cells[1:-1]:
                canvas.put(col, row, special)
    for section in layout.sections:
        if section.position is not None:
            col, row = projection.cell(*section.position)
            if canvas.inside(col, row) and not canvas.bits[row][col]:
                canvas.put(col, row, glyphs.shelf[section.storage], overwrite=False)
    if route is not None:
        for a, b in zip(route.path, route.path[1:], strict=False):
            for col, row in canvas.line(cell(a), cell(b), heavy=True):
                if canvas.text[row][col] in {*glyphs.narrow, *glyphs.stairs}:
                    canvas.text[row][col] = None  # the route line wins over the edge decoration
    for node in layout.nodes:
        glyph = glyphs.kinds.get(node.kind)
        if glyph is not None:
            canvas.put(*projection.cell(node.x, node.y), glyph)
    if route is not None:
        for number, stop in enumerate(route.stops, start=1):
            section = layout.section(stop.section)
            node = layout.node(stop.node)
            col, row = projection.cell(*(section.position or (node.x, node.y)))
            label = str(number)
            if col + len(label) > width:
                col = width - len(label)
            for offset, char in enumerate(label):
                canvas.put(col + offset, row, char)
    lines = canvas.lines(glyphs)
    if legend_text is not None:
        lines.append(legend_text.rstrip())
    return "\n".join(lines) + "\n"


_SVG_SCALE: Final = 10.0  # pixels per metre
_SVG_MARGIN: Final = 20.0
_SVG_SHELF_COLOUR: Final = {Storage.AMBIENT: "#c9b27c", Storage.CHILLED: "#8ecae6", Storage.FROZEN: "#3a78c2"}


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def render_svg(layout: Layout, route: Route | None = None) -> str:
    """A standalone SVG of the store (10 px per metre), with the route and numbered stops if given."""
    from xml.sax.saxutils import escape  # noqa: PLC0415 - loads urllib: only for SVG

    points = list(_points(layout))
    min_x = min(x for x, _ in points)
    max_x = max(x for x, _ in points)
    min_y = min(y for _, y in points)
    max_y = max(y for _, y in points)

    def xy(x: float, y: float) -> tuple[str, str]:
        return _f(_SVG_MARGIN + (x - min_x) * _SVG_SCALE), _f(_SVG_MARGIN + (max_y - y) * _SVG_SCALE)

    width = (max_x - min_x) * _SVG_SCALE + 2 * _SVG_MARGIN
    height = (max_y - min_y) * _SVG_SCALE + 2 * _SVG_MARGIN
    title = escape(layout.store_name)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="sans-serif" font-size="9">',
        f"<title>{title}</title>",
        f'<rect width="{_f(width)}" height="{_f(height)}" fill="#fbfaf7"/>',
        '<g stroke="#b8b8b8" stroke-width="2" stroke-linecap="round">',
    ]
    for edge in layout.edges:
        if edge.staff_only:
            continue
        a, b = layout.node(edge.source), layout.node(edge.target)
        (x1, y1), (x2, y2) = xy(a.x, a.y), xy(b.x, b.y)
        style = ""
        if EdgeTag.STAIRS in edge.tags:
            style = ' stroke="#d08c3a" stroke-dasharray="2 2"'
        elif EdgeTag.NARROW in edge.tags:
            style = ' stroke-dasharray="4 3"'
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"{style}/>')
    out.append("</g>")
    out.append('<g stroke="#6b6b6b" stroke-width="0.5">')
    for section in layout.sections:
        if section.position is None:
            continue
        x, y = xy(*section.position)
        colour = _SVG_SHELF_COLOUR[section.storage]
        label = escape(", ".join(section.categories))
        out.append(
            f'<rect x="{_f(float(x) - 6)}" y="{_f(float(y) - 6)}" width="12" height="12" fill="{colour}">'
            f"<title>{escape(section.id)}: {label}</title></rect>"
        )
    out.append("</g>")
    for node in layout.nodes:
        glyph = _KIND_GLYPHS.get(node.kind)
        if glyph is None:
            continue
        x, y = xy(node.x, node.y)
        out.append(
            f'<g><circle cx="{x}" cy="{y}" r="7" fill="#ffffff" stroke="#333333"/>'
            f'<text x="{x}" y="{y}" dy="3" text-anchor="middle">{escape(glyph)}</text>'
            f"<title>{escape(node.label)}</title></g>"
        )
    if route is not None and route.path:
        coordinates = " ".join(",".join(xy(layout.node(n).x, layout.node(n).y)) for n in route.path)
        out.append(
            f'<polyline points="{coordinates}" fill="none" stroke="#d62828" stroke-width="3" '
            'stroke-linejoin="round" stroke-opacity="0.85"/>'
        )
        for number, stop in enumerate(route.stops, start=1):
            section = layout.section(stop.section)
            node = layout.node(stop.node)
            x, y = xy(*(section.position or (node.x, node.y)))
            items = escape(", ".join(stop.items))
            out.append(
                f'<g><circle cx="{x}" cy="{y}" r="8" fill="#d62828"/>'
                f'<text x="{x}" y="{y}" dy="3" text-anchor="middle" fill="#ffffff" font-weight="bold">{number}</text>'
                f"<title>{number}. {escape(stop.place)}: {items}</title></g>"
            )
    out.append("</svg>")
    if not math.isfinite(width) or not math.isfinite(height):  # pragma: no cover - coordinates are validated
        raise InvalidArgumentError("layout coordinates are not finite")
    return "\n".join(out) + "\n"
