"""The daemon's side of sync with central: the changes feed, acks and bundle downlink.

`SyncService` is what the daemon wires in: HTTP routes for central to pull from and background tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from edge.config import Config
from edge.metrics import IngestMetrics
from edge.writer import StoreWriter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SyncService:
    def __init__(self, config: Config, db_path: Path, writer: StoreWriter, metrics: IngestMetrics) -> None:
        self._config = config
        self._db_path = db_path
        self._writer = writer
        self._metrics = metrics

    def routes(self) -> list[tuple[str, str, Handler]]:
        """Routes added to the daemon's HTTP app (their own auth: the [sync] token)."""
        return []

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Long-running tasks the daemon supervises (e.g. polling central for bundles)."""
        return []

    async def close(self) -> None:
        return None
