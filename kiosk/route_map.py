"""The route map on the kiosk's route screen, drawn to fit the cells it is given.

`draw_route_map` is a pure function: the store's layout (node coordinates), the rest of the route, where
the shopper stands and a box of terminal cells in, styled lines of text out. The plan keeps its
proportions (a terminal cell is about twice as tall as it is wide) and is scaled down until it fits
above a legend that wraps to the width, so no line is longer than the box and nothing falls below it;
that holds from 80x24 up and in the browser (`storeedge kiosk --serve` renders a terminal too).

Marks: one "you are here" (the kiosk, or the last ticked item's shelf), the entrance, the checkouts,
numbered stops (the next one highlighted, and the walk to it), the rest of the route, and the way
already walked. Other kiosks are not marked: a shopper only needs to know where they stand.
Numbers that would land on another mark are moved to the nearest free cell, so every stop shows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

from rich.text import Text

from routing import EdgeTag, Layout, NodeKind, Storage

__all__ = ["Legend", "MapRoute", "MapStop", "draw_route_map"]

MIN_WIDTH: Final = 12
MIN_HEIGHT: Final = 4
CELL_ASPECT: Final = 2.0

HERE_GLYPH: Final = "@"
KIND_GLYPHS: Final = {NodeKind.ENTRANCE: "E", NodeKind.CHECKOUT: "$", NodeKind.EXIT: "X"}
SHELF_GLYPHS: Final = {Storage.AMBIENT: "▓", Storage.CHILLED: "░", Storage.FROZEN: "▒"}

STYLE_HERE: Final = "bold white on red"
STYLE_NEXT: Final = "bold black on yellow"
STYLE_NEXT_LINE: Final = "bold yellow"
STYLE_ROUTE: Final = "bold cyan"
STYLE_STOP: Final = "bold cyan"
STYLE_WALKED: Final = "magenta"
STYLE_WALKWAY: Final = "grey50"
STYLE_MARK: Final = "bold green"
STYLE_SHELF: Final = {Storage.AMBIENT: "grey58", Storage.CHILLED: "bright_blue", Storage.FROZEN: "blue"}

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
_NARROW: Final = ("┄", "┆")  # horizontal, vertical: too narrow for a wheelchair or a pushchair


@dataclass(frozen=True, slots=True)
class MapStop:
    number: int
    position: tuple[float, float]  # the shelf in metres (its node's if the layout gives no position)


@dataclass(frozen=True, slots=True)
class MapRoute:
    """What the map shows of a route, in layout node ids."""

    here: str  # where the shopper stands: the start of `path`
    path: tuple[str, ...]  # the rest of the walk, from `here` to the checkout
    stops: tuple[MapStop, ...]  # still to visit, in order; the first is the next one
    next_leg: tuple[str, ...] = ()  # the walk from `here` to the next stop (a prefix of `path`)
    walked: tuple[str, ...] = ()  # the way already walked (earlier ticks), drawn faint


@dataclass(frozen=True, slots=True)
class Legend:
    """The legend's words (from the kiosk's strings, so they are in the shopper's language)."""

    here: str
    next_stop: str
    route: str
    walked: str
    entrance: str
    checkout: str
    chilled: str
    frozen: str
    ambient: str
    narrow: str


class _Grid:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.layers = {
            name: [[0] * width for _ in range(height)] for name in ("base", "walked", "route", "next")
        }
        self.glyph: dict[tuple[int, int], tuple[str, str]] = {}  # marks and labels: (char, style)
        self.narrow: dict[tuple[int, int], str] = {}

    def inside(self, col: int, row: int) -> bool:
        return 0 <= col < self.width and 0 <= row < self.height

    def line(self, layer: str, start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
        """A 4-connected line, horizontal first; returns the cells it crosses."""
        bits = self.layers[layer]
        (col, row), (c1, r1) = start, end
        cells = [(col, row)]
        while (col, row) != (c1, r1):
            if col != c1:
                step = 1 if c1 > col else -1
                a_bit, b_bit, nxt = (_E, _W, (col + step, row)) if step > 0 else (_W, _E, (col + step, row))
            else:
                step = 1 if r1 > row else -1
                a_bit, b_bit, nxt = (_S, _N, (col, row + step)) if step > 0 else (_N, _S, (col, row + step))
            if self.inside(col, row):
                bits[row][col] |= a_bit
            if self.inside(*nxt):
                bits[nxt[1]][nxt[0]] |= b_bit
            col, row = nxt
            cells.append(nxt)
        return cells

    def free(self, col: int, row: int) -> bool:
        return self.inside(col, row) and (col, row) not in self.glyph

    def cell(self, col: int, row: int) -> tuple[str, str]:
        mark = self.glyph.get((col, row))
        if mark is not None:
            return mark
        heavy = self.layers["route"][row][col] | self.layers["next"][row][col]
        if heavy:
            return _HEAVY[heavy], STYLE_NEXT_LINE if self.layers["next"][row][col] else STYLE_ROUTE
        walked = self.layers["walked"][row][col]
        if walked:
            return _LIGHT[walked | self.layers["base"][row][col]], STYLE_WALKED
        base = self.layers["base"][row][col]
        if base:
            return self.narrow.get((col, row), _LIGHT[base]), STYLE_WALKWAY
        return " ", ""


@dataclass(frozen=True, slots=True)
class _Projection:
    min_x: float
    max_y: float
    metres_per_col: float
    col_offset: int
    row_offset: int

    def cell(self, x: float, y: float) -> tuple[int, int]:
        col = round((x - self.min_x) / self.metres_per_col) + self.col_offset
        row = round((self.max_y - y) / (self.metres_per_col * CELL_ASPECT)) + self.row_offset
        return col, row


def _project(layout: Layout, width: int, height: int) -> _Projection:
    points = [(n.x, n.y) for n in layout.nodes] + [s.position for s in layout.sections if s.position]
    min_x, max_x = min(x for x, _ in points), max(x for x, _ in points)
    min_y, max_y = min(y for _, y in points), max(y for _, y in points)
    span_x, span_y = max(max_x - min_x, 1e-9), max(max_y - min_y, 1e-9)
    per_col = max(span_x / max(width - 1, 1), span_y / (CELL_ASPECT * max(height - 1, 1)))
    used_cols = round(span_x / per_col) + 1
    used_rows = round(span_y / (per_col * CELL_ASPECT)) + 1
    return _Projection(
        min_x, max_y, per_col, max(0, (width - used_cols) // 2), max(0, (height - used_rows) // 2)
    )


def _legend_lines(entries: Sequence[tuple[str, str, str]], width: int, max_lines: int) -> list[Text]:
    """Legend entries (glyph, style, words) wrapped to `width`; entries that do not fit are left out
    (they come in order of importance)."""
    lines: list[Text] = []
    current = Text()
    for glyph, style, words in entries:
        part_len = len(glyph) + 1 + len(words)
        if part_len > width:
            continue
        gap = 2 if current.cell_len else 0
        if current.cell_len + gap + part_len > width:
            if len(lines) + 1 >= max_lines:
                continue  # no room for another line: try smaller entries
            lines.append(current)
            current, gap = Text(), 0
        current.append(" " * gap)
        current.append(glyph, style)
        current.append(" " + words)
    if current.cell_len:
        lines.append(current)
    return lines


@cache
def _offsets(limit: int) -> tuple[tuple[int, int], ...]:
    """(dc, dr) from (0, 0) outwards, nearest first (a row is about two columns)."""
    ring = [(dc, dr) for dc in range(-limit, limit + 1) for dr in range(-limit, limit + 1)]
    return tuple(sorted(ring, key=lambda d: (abs(d[0]) + 2 * abs(d[1]), abs(d[1]), d[0], d[1])))


def _touches_number(grid: _Grid, col: int, row: int, text: str) -> bool:
    """A number right beside another would read as one ("10" then "11" as "1011")."""
    if not text.isdigit():
        return False
    return any(
        grid.glyph.get(cell, (" ", ""))[0].isdigit() for cell in ((col - 1, row), (col + len(text), row))
    )


def _place(grid: _Grid, at: tuple[int, int], text: str, style: str) -> bool:
    limit = max(grid.width, grid.height)
    for dc, dr in _offsets(min(limit, 12)):
        col, row = at[0] + dc, at[1] + dr
        if col + len(text) > grid.width:
            continue
        if all(grid.free(col + i, row) for i in range(len(text))) and not _touches_number(
            grid, col, row, text
        ):
            for i, char in enumerate(text):
                grid.glyph[(col + i, row)] = (char, style)
            return True
    return False


def draw_route_map(layout: Layout, route: MapRoute, legend: Legend, width: int, height: int) -> list[Text]:
    """The map in at most `height` lines of at most `width` cells each, the legend last.

    Boxes smaller than 12x4 get no map (an empty list): there is nothing readable to draw in them.
    """
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return []
    entries = [
        (HERE_GLYPH, STYLE_HERE, legend.here),
        (str(route.stops[0].number) if route.stops else "1", STYLE_NEXT, legend.next_stop),
        (_HEAVY[_E | _W], STYLE_ROUTE, legend.route),
        (KIND_GLYPHS[NodeKind.CHECKOUT], STYLE_MARK, legend.checkout),
        (KIND_GLYPHS[NodeKind.ENTRANCE], STYLE_MARK, legend.entrance),
        (SHELF_GLYPHS[Storage.CHILLED], STYLE_SHELF[Storage.CHILLED], legend.chilled),
        (SHELF_GLYPHS[Storage.FROZEN], STYLE_SHELF[Storage.FROZEN], legend.frozen),
        (SHELF_GLYPHS[Storage.AMBIENT], STYLE_SHELF[Storage.AMBIENT], legend.ambient),
    ]
    if not route.stops:
        del entries[1]
    if route.walked:
        entries.insert(3, (_LIGHT[_E | _W], STYLE_WALKED, legend.walked))
    if any(EdgeTag.NARROW in e.tags and not e.staff_only for e in layout.edges):
        entries.append((_NARROW[0], STYLE_WALKWAY, legend.narrow))
    legend_lines = _legend_lines(entries, width, max_lines=max(1, min(3, height // 4)))
    map_height = height - len(legend_lines)
    projection = _project(layout, width, map_height)
    grid = _Grid(width, map_height)

    def at(node_id: str) -> tuple[int, int]:
        node = layout.node(node_id)
        return projection.cell(node.x, node.y)

    for edge in layout.edges:
        if edge.staff_only:
            continue
        start, end = at(edge.source), at(edge.target)
        cells = grid.line("base", start, end)
        if EdgeTag.NARROW in edge.tags:
            glyph = _NARROW[0] if abs(end[0] - start[0]) >= abs(end[1] - start[1]) else _NARROW[1]
            for cell in cells[1:-1]:
                grid.narrow[cell] = glyph
    for layer, nodes in (("walked", route.walked), ("route", route.path), ("next", route.next_leg)):
        for a, b in itertools.pairwise(nodes):
            grid.line(layer, at(a), at(b))

    # Marks, most important first: a later one moves aside (numbers) or is left out (the rest).
    _place(grid, at(route.here), HERE_GLYPH, STYLE_HERE)
    for index, stop in enumerate(route.stops):
        style = STYLE_NEXT if index == 0 else STYLE_STOP
        _place(grid, projection.cell(*stop.position), str(stop.number), style)
    for node in layout.nodes:
        kind_glyph = KIND_GLYPHS.get(node.kind)
        cell = projection.cell(node.x, node.y)
        if kind_glyph is not None and grid.free(*cell):
            grid.glyph[cell] = (kind_glyph, STYLE_MARK)
    for section in layout.sections:
        if section.position is None:
            continue
        col, row = projection.cell(*section.position)
        if grid.free(col, row) and not any(grid.layers[name][row][col] for name in grid.layers):
            grid.glyph[(col, row)] = (SHELF_GLYPHS[section.storage], STYLE_SHELF[section.storage])

    lines: list[Text] = []
    for row in range(map_height):
        line = Text(no_wrap=True, end="")
        run: list[str] = []
        run_style = ""
        for col in range(width):  # one append per run of one style: a map row is a few runs
            char, style = grid.cell(col, row)
            if style != run_style and run:
                line.append("".join(run), run_style)
                run = []
            run.append(char)
            run_style = style
        line.append("".join(run), run_style)
        line.rstrip()
        lines.append(line)
    return [*lines, *legend_lines]
