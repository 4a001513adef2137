"""The chain demo's simulated time (`storeedge demo --stores N --central`, the learning loop).

The demo walks an experiment through weeks of simulated days in minutes. Its stores are separate
processes, so the simulated moment travels in a file: the offset from the real clock in milliseconds
(`SimulatedTime.set` writes it atomically). `edge.clocked_daemon` starts a daemon whose prediction
clock (`edge.predictions.clock.StoreClock`, which the prediction and experiment services read) is the real
clock plus that offset. Only the demo uses either: `storeedge run` keeps the real clock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class SimulatedTime:
    """Writes the simulated moment (as an offset from the real clock) for the demo's store daemons."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, moment_ms: int) -> None:
        offset_ms = moment_ms - int(time.time() * 1000)
        scratch = self.path.with_name(self.path.name + ".tmp")
        scratch.write_text(f"{offset_ms}\n")
        os.replace(scratch, self.path)  # a reader sees the old offset or the new one, never half of one

    def now_ms(self) -> int:
        return int(SimulatedNow(self.path)() * 1000)


class SimulatedNow:
    """A ``time.time`` for `StoreClock`: the real clock plus the file's offset (0 while there is no file),
    read again only when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) of the file last read
        self._offset_ms = 0

    def __call__(self) -> float:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return time.time()
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if seen != self._seen:
            try:
                self._offset_ms = int(self.path.read_text().strip() or 0)
                self._seen = seen
            except (OSError, ValueError):
                pass  # replaced while read: the last offset read until the next call
        return time.time() + self._offset_ms / 1000
