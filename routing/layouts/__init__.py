"""Layouts shipped with storeedge: a convenience store and a generated 60-aisle hypermarket.

The demo store's layout lives with the demo store's other files, in
`simulators/demo_store/layout.toml`; `demo_layout_path()` finds it next to this package.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path
from typing import Final

from routing.errors import LayoutError, LayoutProblem
from routing.layout import Layout
from routing.layout_file import load_layout, parse_layout

__all__ = ["BUNDLED_LAYOUTS", "demo_layout_path", "load_bundled_layout", "load_demo_layout"]

#: Names accepted by `load_bundled_layout`.
BUNDLED_LAYOUTS: Final = ("convenience_store", "hypermarket")


def load_bundled_layout(name: str) -> Layout:
    """One of `BUNDLED_LAYOUTS`, read from package data."""
    if name not in BUNDLED_LAYOUTS:
        raise ValueError(f"no bundled layout {name!r} (have: {', '.join(BUNDLED_LAYOUTS)})")
    text = resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_layout(text, f"routing/layouts/{name}.toml")


def demo_layout_path() -> Path:
    """Where the demo store's layout is installed.

    `simulators` and `routing` ship in one distribution. The spec of the `simulators` package gives its
    directory without importing it, so `routing` stays free of the simulators' imports.
    """
    spec = importlib.util.find_spec("simulators")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "demo_store" / "layout.toml"
        if candidate.is_file():
            return candidate
    fallback = Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "layout.toml"
    if fallback.is_file():
        return fallback
    source = "simulators/demo_store/layout.toml"
    problem = LayoutProblem(source, "", "the demo store layout is not installed; pass a layout file instead")
    raise LayoutError(source, (problem,))


def load_demo_layout() -> Layout:
    return load_layout(demo_layout_path())
