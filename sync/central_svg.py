"""Server-rendered SVG line charts for central's operations page: pure functions from data to markup.

No script and nothing fetched: every point's hover text is an SVG ``<title>``; every piece of text is
escaped here, so callers may pass names straight from the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

# Distinguishable on white and for the common colour-vision deficiencies (Okabe-Ito, then darker tones).
PALETTE = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#e69f00",
    "#56b4e9",
    "#000000",
    "#8c564b",
)


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    label: str  # hover text


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: tuple[Point, ...]
    note: str = ""  # hover text for the whole line (default: the name)


@dataclass(frozen=True, slots=True)
class XAxis:
    lo: float
    hi: float
    ticks: tuple[tuple[float, str], ...]  # (x, label)
    title: str


@dataclass(frozen=True, slots=True)
class ChartStyle:
    width: int = 760
    height: int = 280
    markers: bool = True  # a circle (with its <title>) per point; off for dense series
    break_over: float | None = None  # no line across an x gap wider than this (missing samples)


_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 150, 16, 44


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` (1 for nothing to show)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


def y_steps(y_max: float) -> int:
    """Grid intervals for a `nice_ceiling` maximum, so that every label is a round number."""
    mantissa = round(y_max / 10.0 ** math.floor(math.log10(y_max)), 3)
    return 4 if mantissa == 2 else 5


def format_number(value: float) -> str:
    """Axis and hover numbers: thousands separated, at most two decimals, no trailing zeros."""
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def line_chart(
    series: list[Series], x: XAxis, y_title: str, title: str, empty_text: str, style: ChartStyle | None = None
) -> str:
    """One ``<svg>``: a line per series (y from 0 to a round maximum), a legend, axis labels; with no
    points at all, the frame and ``empty_text`` instead."""
    style = style or ChartStyle()
    w, h = style.width, style.height
    plot_w, plot_h = w - _LEFT - _RIGHT, h - _TOP - _BOTTOM
    shown = [s for s in series if s.points]
    y_max = nice_ceiling(max((p.y for s in shown for p in s.points), default=0.0))
    x_span = (x.hi - x.lo) or 1.0

    def px(value: float) -> float:
        return round(_LEFT + (min(max(value, x.lo), x.hi) - x.lo) / x_span * plot_w, 1)

    def py(value: float) -> float:
        return round(_TOP + plot_h - min(max(value, 0.0), y_max) / y_max * plot_h, 1)

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect class="plot" x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
    ]
    steps = y_steps(y_max)
    for i in range(steps + 1):  # y grid and labels
        value = y_max * i / steps
        y = py(value)
        parts.append(f'<line x1="{_LEFT}" y1="{y}" x2="{_LEFT + plot_w}" y2="{y}" stroke="#e4e4e4"/>')
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4}" text-anchor="end" font-size="11">{format_number(value)}</text>'
        )
    for value, label in x.ticks:
        tx = px(value)
        parts.append(
            f'<line x1="{tx}" y1="{_TOP + plot_h}" x2="{tx}" y2="{_TOP + plot_h + 4}" stroke="#888"/>'
        )
        parts.append(
            f'<text x="{tx}" y="{_TOP + plot_h + 16}" text-anchor="middle" font-size="11">{escape(label)}</text>'
        )
    parts.append(
        f'<text class="x-title" x="{_LEFT + plot_w / 2}" y="{h - 6}" text-anchor="middle" '
        f'font-size="12">{escape(x.title)}</text>'
    )
    parts.append(
        f'<text class="y-title" x="14" y="{_TOP + plot_h / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {_TOP + plot_h / 2})">{escape(y_title)}</text>'
    )
    if not shown:
        parts.append(
            f'<text class="empty" x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h / 2}" text-anchor="middle" '
            f'font-size="14" fill="#666">{escape(empty_text)}</text>'
        )
    for index, one in enumerate(shown):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<g class="series" data-series="{escape(one.name)}" data-points="{len(one.points)}">'
            f"<title>{escape(one.note or one.name)}</title>"
        )
        for run in _runs(one.points, style.break_over):
            coords = " ".join(f"{px(p.x)},{py(p.y)}" for p in run)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
            if len(run) == 1 and not style.markers:  # a lone sample draws no line: show it as a dot
                parts.append(f'<circle cx="{px(run[0].x)}" cy="{py(run[0].y)}" r="2" fill="{colour}"/>')
        if style.markers:
            parts.extend(
                f'<circle class="point" cx="{px(p.x)}" cy="{py(p.y)}" r="3.5" fill="{colour}">'
                f"<title>{escape(p.label)}</title></circle>"
                for p in one.points
            )
        parts.append("</g>")
        ly = _TOP + 8 + index * 18
        lx = _LEFT + plot_w + 14
        parts.append(
            f'<g class="legend"><rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{lx + 18}" y="{ly + 1}" font-size="12">{escape(_clip(one.name, 18))}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _runs(points: tuple[Point, ...], break_over: float | None) -> list[tuple[Point, ...]]:
    """Split a series where consecutive points are further apart than ``break_over`` on x."""
    if break_over is None or len(points) < 2:
        return [points]
    runs: list[tuple[Point, ...]] = []
    start = 0
    for i in range(1, len(points)):
        if points[i].x - points[i - 1].x > break_over:
            runs.append(points[start:i])
            start = i
    runs.append(points[start:])
    return runs


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
