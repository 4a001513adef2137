"""A file the daemon serves from central's live bundle, else from the path its config names: re-read
when it changes (a new bundle, an edited file), keeping the last good content when a new one is bad
(logged once per change, naming the file and the field)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from edge.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")


class LiveFile(Generic[T]):
    """``current()`` stats the files (call it off the event loop); the first that exists wins."""

    def __init__(self, paths: Sequence[Path], load: Callable[[Path], T], empty: T, event: str) -> None:
        self._paths = tuple(paths)
        self._load = load
        self._empty = empty
        self._event = event  # the log event of a bad file, e.g. "promotions_invalid"
        self._loaded: tuple[Path, float] | None = None
        self._value = empty

    @property
    def paths(self) -> tuple[Path, ...]:
        return self._paths

    def current(self) -> T:
        for path in self._paths:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._loaded != (path, mtime):
                self._loaded = (path, mtime)
                problem = self._reload(path)
                if problem is not None:
                    log.error(self._event, extra={"error": problem})
            return self._value
        return self._empty

    def _reload(self, path: Path) -> str | None:
        try:
            self._value = self._load(path)
        except ConfigError as exc:
            return str(exc)
        return None
