"""The store layout the daemon routes on, swapped without a restart when central sends a new one.

Where it comes from: central's live `layout` bundle (``<[sync] bundle_dir>/layout/current/layout.toml``;
`edge.uplink.bundle_checks.check_layout` validated it before it went live) when there is one, else
``[store] layout``. `LiveLayout.run_watch` looks for a new live bundle every min(``[sync] bundle_poll_s``,
60) seconds and reads and validates it off the event loop; from then on `POST /api/v1/routes`, the
household's optimal route and `GET /api/v1/kiosk/layout` use it (a kiosk fetches the map again when a
route walks through nodes its map does not have). A layout that does not load is logged (`layout_not_activated`, naming the file) and the one
being served stays; the same file is not retried every poll.

    live = LiveLayout(config, initial_layout(config))
    live.current.layout                     # routing.Layout
    await live.refresh()                    # True if a new layout was swapped in
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from edge.config import Config
from edge.errors import EdgeError
from routing import Layout, RoutingError, parse_layout

log = logging.getLogger(__name__)
LAYOUT_FILE = "layout.toml"
MAX_POLL_S = 60.0


class LayoutLoadError(EdgeError):
    """A layout file that cannot be read or does not validate; the message names the file."""


@dataclass(frozen=True, slots=True)
class StoreLayout:
    layout: Layout
    text: str  # the TOML it was parsed from, served to kiosks (they parse it with routing.parse_layout)
    path: Path  # resolved: a bundle swap shows as a new path


def layout_path(config: Config) -> Path:
    """The live `layout` bundle's file if there is one, else ``[store] layout``; resolved."""
    live = config.path(config.sync.bundle_dir) / "layout" / "current" / LAYOUT_FILE
    if live.is_file():
        return live.resolve()
    return config.path(config.store.layout).resolve()


def read_store_layout(path: Path) -> StoreLayout:
    """Read and validate one layout file (blocking: call it off the event loop once running)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutLoadError(f"{path}: cannot read the layout: {exc}") from exc
    try:
        return StoreLayout(parse_layout(text, str(path)), text, path)
    except RoutingError as exc:
        raise LayoutLoadError(str(exc)) from exc


def initial_layout(config: Config) -> StoreLayout:
    """The layout to start with. A live bundle that no longer loads (it was checked when it went live,
    so the disk changed under it) is logged and ``[store] layout`` is used: the daemon still starts."""
    path = layout_path(config)
    try:
        return read_store_layout(path)
    except LayoutLoadError as exc:
        fallback = config.path(config.store.layout).resolve()
        if path == fallback:
            raise
        log.error("layout_not_activated", extra={"path": str(path), "error": str(exc)})  # noqa: TRY400
        return read_store_layout(fallback)


class LiveLayout:
    """The layout being served, and the watch that swaps in a new live bundle."""

    def __init__(self, config: Config, initial: StoreLayout) -> None:
        self._config = config
        self.current = initial
        self._refused: Path | None = None

    def layout(self) -> Layout:
        return self.current.layout

    def text(self) -> str:
        return self.current.text

    async def refresh(self) -> bool:
        """Swap to the layout `layout_path` names now, if it is a new one that loads. True if swapped."""
        loop = asyncio.get_running_loop()
        path = await loop.run_in_executor(None, layout_path, self._config)  # stats the disk
        if path in (self.current.path, self._refused):
            return False
        try:
            loaded = await loop.run_in_executor(None, read_store_layout, path)
        except LayoutLoadError as exc:
            log.error("layout_not_activated", extra={"path": str(path), "error": str(exc)})  # noqa: TRY400
            self._refused = path
            return False
        self.current, self._refused = loaded, None
        log.info(
            "layout_activated",
            extra={"path": str(path), "store": loaded.layout.store_id, "nodes": len(loaded.layout.nodes)},
        )
        return True

    async def run_watch(self) -> None:
        while True:
            await asyncio.sleep(min(self._config.sync.bundle_poll_s, MAX_POLL_S))
            await self.refresh()
