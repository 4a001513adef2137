"""Layout validation at hypermarket scale, a section of bench/routing.py (`--section validation`).

Three generated layouts per size n: one aisle of n nodes; n sections on one node, each with `x` but no
`y` (n problems reported); a valid store of n/4 aisles with a section per node. Each is parsed and
validated with `parse_layout`; "before" is the same reader with the two quadratic checks it had
(every problem scanned for each section; each aisle member counted with a scan of the whole aisle),
run only up to 10k nodes (20k did not finish in 120 s). Linear work shows as a constant time per
node: the `per node` column, and `x n/2.5k` (the time against 2.5k nodes, divided by the size ratio:
1.0 is linear, 2.0 is one doubling worse).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from unittest import mock

from routing import LayoutError, layout_file, parse_layout
from routing._toml_lines import scan_locations
from routing.layout_file import _LayoutReader

SIZES = (2_500, 5_000, 10_000, 20_000)
QUICK_SIZES = (2_500, 5_000)
BEFORE_MAX_NODES = 10_000


@dataclass
class ValidationResult:
    shape: str
    nodes: int
    seconds: float
    problems: int
    before_seconds: float | None = None


class _QuadraticReader(_LayoutReader):
    """The check as it was before #18: every problem scanned for every section."""

    def has_problem_under(self, location: str) -> bool:
        return any(p.location == location or p.location.startswith(location + ".") for p in self.problems)


def _quadratic_repeated_values(items: Sequence[tuple[str, str]]) -> set[str]:
    """The aisle check as it was before #18: each member counted with a scan of the whole aisle."""
    return {value for _, value in items if sum(1 for _, other in items if other == value) > 1}


def one_aisle(n: int) -> str:
    lines = [
        "nodes = [",
        '{ id = "entrance", x = 0, y = 0, kind = "entrance" },',
        '{ id = "till", x = 1, y = 0, kind = "checkout" },',
        *(f'{{ id = "n{i}", x = 0, y = {i + 1} }},' for i in range(n)),
        "]",
        'edges = [{ from = "entrance", to = "n0" }, { from = "n0", to = "till" }]',
        'aisles = [{ id = "A", nodes = [' + ", ".join(f'"n{i}"' for i in range(n)) + "] }]",
        'sections = [{ id = "s", node = "n1", categories = ["bread"] }]',
    ]
    return "\n".join(lines)


def sections_with_x_but_no_y(n: int) -> str:
    lines = [
        "nodes = [",
        '{ id = "entrance", x = 0, y = 0, kind = "entrance" },',
        '{ id = "till", x = 1, y = 0, kind = "checkout" },',
        '{ id = "a", x = 0, y = 1 },',
        "]",
        'edges = [{ from = "entrance", to = "a" }, { from = "a", to = "till" }]',
        "sections = [",
        *(f'{{ id = "s{i}", node = "a", categories = ["c{i}"], x = 1 }},' for i in range(n)),
        "]",
    ]
    return "\n".join(lines)


def many_aisles(n: int) -> str:
    """n nodes in aisles of 4 between a front and a back walkway, a shelf at every node."""
    aisles = max(1, n // 4)
    nodes = [
        '{ id = "entrance", x = -2, y = 0, kind = "entrance" }',
        '{ id = "till", x = -2, y = -2, kind = "checkout" }',
    ]
    edges = ['{ from = "entrance", to = "a0-0" }', '{ from = "a0-0", to = "till" }']
    aisle_rows, sections = [], []
    for a in range(aisles):
        members = [f"a{a}-{i}" for i in range(4)]
        nodes += [f'{{ id = "{node}", x = {a * 3}, y = {i * 2} }}' for i, node in enumerate(members)]
        quoted = ", ".join(f'"{node}"' for node in members)
        aisle_rows.append(f'{{ id = "A{a}", nodes = [{quoted}] }}')
        sections += [f'{{ id = "s-{node}", node = "{node}", categories = ["c-{node}"] }}' for node in members]
        if a:
            edges += [
                f'{{ from = "a{a - 1}-0", to = "a{a}-0" }}',
                f'{{ from = "a{a - 1}-3", to = "a{a}-3" }}',
            ]
    return "\n".join(
        [
            "nodes = [\n" + ",\n".join(nodes) + "\n]",
            "edges = [\n" + ",\n".join(edges) + "\n]",
            "aisles = [\n" + ",\n".join(aisle_rows) + "\n]",
            "sections = [\n" + ",\n".join(sections) + "\n]",
        ]
    )


SHAPES: dict[str, Callable[[int], str]] = {
    "one aisle": one_aisle,
    "x but no y": sections_with_x_but_no_y,
    "aisles of 4": many_aisles,
}


def _validate(text: str) -> int:
    try:
        parse_layout(text, "bench.toml")
    except LayoutError as error:
        return len(error.problems)
    return 0


def _validate_before(text: str) -> int:
    reader = _QuadraticReader("bench.toml", scan_locations(text))
    with mock.patch.object(layout_file, "repeated_values", _quadratic_repeated_values):
        reader.read(tomllib.loads(text))
    return len(reader.problems)


def _seconds(function: Callable[[str], int], text: str) -> tuple[float, int]:
    started = time.perf_counter()
    problems = function(text)
    return time.perf_counter() - started, problems


def run_validation(quick: bool) -> list[ValidationResult]:
    results: list[ValidationResult] = []
    for shape, make in SHAPES.items():
        for n in QUICK_SIZES if quick else SIZES:
            text = make(n)
            seconds, problems = _seconds(_validate, text)
            result = ValidationResult(shape, n, seconds, problems)
            if n <= (QUICK_SIZES[-1] if quick else BEFORE_MAX_NODES):
                result.before_seconds = _seconds(_validate_before, text)[0]
            results.append(result)
    return results


def print_validation(results: list[ValidationResult]) -> None:
    print("\nLayout validation (parse_layout), seconds; per node in microseconds")
    header = f"{'layout':<14}{'nodes':>8}{'problems':>10}{'seconds':>10}{'per node':>10}{'x n/2.5k':>10}{'before':>10}"
    print(header)
    print("-" * len(header))
    smallest: dict[str, ValidationResult] = {}
    for result in results:
        first = smallest.setdefault(result.shape, result)
        growth = (result.seconds / first.seconds) / (result.nodes / first.nodes)
        before = "-" if result.before_seconds is None else f"{result.before_seconds:.2f}"
        print(
            f"{result.shape:<14}{result.nodes:>8}{result.problems:>10}{result.seconds:>10.3f}"
            f"{result.seconds / result.nodes * 1e6:>10.1f}{growth:>10.2f}{before:>10}"
        )
