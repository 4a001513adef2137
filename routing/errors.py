"""The exceptions of the routing package.

Everything the package raises on purpose derives from `RoutingError`, so a caller (the daemon's HTTP
API, the CLI) can catch one type. There is no project-wide base class to root it at yet: `routing`
must not import `edge`, so the root lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "InvalidArgumentError",
    "LayoutError",
    "LayoutProblem",
    "NoRouteError",
    "RoutingError",
    "UnknownNodeError",
]


class RoutingError(Exception):
    """Base class of every error raised by `routing`."""


@dataclass(frozen=True, slots=True)
class LayoutProblem:
    """One thing wrong with a layout file, and where it is.

    `location` is a path into the TOML document (`edges[12].to`, `categories.milk.placement`);
    array indices count from 0, as the file is read top to bottom. `line` is the 1-based line the
    location was found on, when it could be found.
    """

    source: str
    location: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}: {self.location}" if self.location else self.source
        suffix = f" (line {self.line})" if self.line is not None else ""
        return f"{where}: {self.message}{suffix}"


class LayoutError(RoutingError):
    """A layout file could not be loaded; `problems` lists every problem found, in file order."""

    def __init__(self, source: str, problems: tuple[LayoutProblem, ...]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{count} {noun} in store layout {source}:\n{lines}")


class UnknownNodeError(RoutingError, LookupError):
    """A node id given to the planner (start, end) is not in the layout."""

    def __init__(self, node_id: str, role: str, source: str) -> None:
        self.node_id = node_id
        self.role = role
        what = f"{role} node" if role else "node"
        super().__init__(f"unknown {what} {node_id!r}: no such node in {source}")

    def __str__(self) -> str:
        # LookupError (via KeyError habits) would otherwise show the repr of the args tuple.
        return str(self.args[0])


class NoRouteError(RoutingError):
    """No walk satisfies the request (e.g. the end cannot be reached from the start)."""


class InvalidArgumentError(RoutingError, ValueError):
    """An argument is out of range (negative walking speed, unknown strategy, a map too small, ...)."""
