"""The store map the kiosk draws routes on: the daemon's layout, a `--layout` file, or the demo store's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from kiosk.client import KioskApi
from kiosk.errors import KioskError
from routing import Layout, RoutingError, load_demo_layout, parse_layout

__all__ = ["daemon_layout", "draws"]

log = logging.getLogger(__name__)


def draws(layout: Layout | None, path: Sequence[str]) -> bool:
    """Whether ``layout`` has every node of a route's ``path`` (so the map can show it)."""
    return layout is not None and all(layout.has_node(node) for node in path)


async def daemon_layout(api: KioskApi, source: str, current: Layout | None) -> Layout | None:
    """The daemon's own layout (GET /api/v1/kiosk/layout), so the map matches its routes; if it cannot
    be had, the map already shown, else the demo store's."""
    try:
        return await asyncio.to_thread(parse_layout, await api.layout_text(), source)
    except (KioskError, RoutingError) as exc:
        log.warning("daemon_layout_unavailable", extra={"error": str(exc)})
        return current if current is not None else await asyncio.to_thread(_demo_layout)


def _demo_layout() -> Layout | None:
    try:
        return load_demo_layout()
    except RoutingError:
        return None
