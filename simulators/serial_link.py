"""The legacy shelf controller's serial port: a pseudo-terminal published at a symlink.

Like ``socat pty,raw,link=PATH``: the simulator holds the master side and writes frames to it; the
slave side is what the daemon opens (with pyserial) through the symlink at ``settings.serial_link``,
which is created atomically (a temporary link renamed over the path), re-created if it vanishes, and
removed on exit.

Writes never block the event loop and never stall the simulation. A real serial line keeps nothing for
a reader that is not listening; the PTY would keep ~20 KiB, so the link keeps at most
``line_buffer_bytes`` queued for the reader (``FIONREAD`` on the slave, plus anything pending here) and
drops, whole and counted, any frame beyond that: a reader that is gone or stuck costs frames, never a
stall. At the controller's rate the queue never comes near the kernel's limit, so writes are whole and
a reader that opens the port (pyserial flushes the input queue on open) starts at a frame boundary.
Only a burst faster than the kernel moves data into the terminal (``FIONREAD`` trails it) can fill the
PTY; then a write may be partial, its rest waits in the pending buffer flushed by ``loop.add_writer``,
and the stream stays whole frames in order (a reader opening just then may see one frame's tail).

The simulator keeps its own slave fd open: without it, a reader closing the port would hang up the
terminal and the master would read EIO forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import struct
import termios
import tty
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Self

from simulators.errors import SerialLinkError

logger = logging.getLogger(__name__)

# Below N_TTY's 4 KiB read buffer, so FIONREAD sees all of it: ~15 s of the demo's five serial shelves.
LINE_BUFFER_BYTES = 3_072


class PtySerialLink:
    """An async context manager owning one PTY and its symlink. Reusable, not re-entrant."""

    def __init__(self, link_path: Path, line_buffer_bytes: int = LINE_BUFFER_BYTES) -> None:
        self._link_path = link_path
        self._line_buffer_bytes = line_buffer_bytes
        self._pending: deque[memoryview] = deque()
        self._pending_bytes = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._writer_registered = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.frames_written = 0
        self.frames_dropped = 0

    @property
    def link_path(self) -> Path:
        return self._link_path

    @property
    def slave_path(self) -> str:
        return self._slave_path

    async def __aenter__(self) -> Self:
        if self._master is not None:
            raise SerialLinkError("the serial link is already open")
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        try:
            # Raw: no echo back into the master, no CR/LF translation, no line editing.
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._slave_path = os.ttyname(slave)
            self._master, self._slave = master, slave
            self._publish_link()
            # Whatever the reader writes to the port (nothing, normally) is read and discarded, so a
            # chatty reader can never fill the master's input buffer and block itself.
            self._loop.add_reader(master, self._discard_input)
        except BaseException:
            self._close_fds(master, slave)
            self._master = self._slave = None
            raise
        logger.info("legacy shelf controller on %s (linked at %s)", self._slave_path, self._link_path)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._master is None or self._slave is None or self._loop is None:
            return
        self._loop.remove_reader(self._master)
        if self._writer_registered:
            self._loop.remove_writer(self._master)
            self._writer_registered = False
        self.frames_dropped += len(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._remove_link()
        self._close_fds(self._master, self._slave)
        self._master = self._slave = None

    # -- writing ------------------------------------------------------------------------------------
    def write(self, line: bytes) -> bool:
        """Put one whole frame on the line; False (and counted) if it was dropped."""
        if self._master is None:
            self.frames_dropped += 1
            return False
        if self.queued_bytes() + len(line) > self._line_buffer_bytes:
            self.frames_dropped += 1
            return False
        self._pending.append(memoryview(line))
        self._pending_bytes += len(line)
        if not self._writer_registered:
            self._flush()
        return True

    def queued_bytes(self) -> int:
        """Bytes written but not yet read by the reader (in the terminal or still pending here)."""
        if self._slave is None:
            return self._pending_bytes
        unread = fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", unread)[0]) + self._pending_bytes

    def _flush(self) -> None:
        """Write as much as the kernel takes; wait for writability (add_writer) for the rest."""
        if self._master is None:
            return
        while self._pending:
            head = self._pending[0]
            try:
                written = os.write(self._master, head)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    break
                raise
            self._pending_bytes -= written
            if written < len(head):
                self._pending[0] = head[written:]
                break
            self._pending.popleft()
            self.frames_written += 1
        self._set_writer(bool(self._pending))

    def _set_writer(self, wanted: bool) -> None:
        if self._loop is None or self._master is None or wanted == self._writer_registered:
            return
        if wanted:
            self._loop.add_writer(self._master, self._flush)
        else:
            self._loop.remove_writer(self._master)
        self._writer_registered = wanted

    def _discard_input(self) -> None:
        if self._master is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            os.read(self._master, 4096)

    # -- the symlink --------------------------------------------------------------------------------
    def ensure_link(self) -> None:
        """Re-create the symlink if someone removed it (the daemon reopens the path when it reappears).

        Never raises: if it cannot be re-created now (its directory is gone too), the controller keeps
        running and the next check tries again.
        """
        if self._master is None or os.path.lexists(self._link_path):
            return
        logger.warning("serial link %s vanished; re-creating it", self._link_path)
        try:
            self._publish_link()
        except SerialLinkError as exc:
            logger.warning("%s; retrying later", exc)

    def _publish_link(self) -> None:
        tmp = self._link_path.with_name(f".{self._link_path.name}.{os.getpid()}.tmp")
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._slave_path)
            tmp.replace(self._link_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise SerialLinkError(f"{self._link_path}: cannot create serial link: {exc.strerror}") from exc

    def _remove_link(self) -> None:
        # Only our own link: a newer simulator may have replaced it with its own PTY.
        with contextlib.suppress(OSError):
            if os.readlink(self._link_path) == self._slave_path:
                self._link_path.unlink()

    @staticmethod
    def _close_fds(*fds: int) -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
