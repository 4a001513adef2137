"""Serial transport: CR LF framed lines from a legacy shelf controller or a barcode scanner.

The port is opened with pyserial-asyncio-fast. A vanished device (USB unplugged, PTY closed) ends the
stream with `TransportError`; reopening with backoff is the caller's loop. Lines longer than
``max_line_bytes`` are cut and handed on whole-truncated so the decoder rejects them as oversized
instead of the reader buffering without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import serial
import serial_asyncio_fast

from sensors.errors import TransportError


@dataclass(frozen=True, slots=True)
class SerialSettings:
    path: str
    baudrate: int = 9600
    name: str = ""
    max_line_bytes: int = 1024

    @property
    def label(self) -> str:
        return self.name or self.path


class SerialLineSource:
    def __init__(self, settings: SerialSettings) -> None:
        self._settings = settings
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        try:
            self._reader, self._writer = await serial_asyncio_fast.open_serial_connection(
                url=self._settings.path, baudrate=self._settings.baudrate
            )
        except (OSError, serial.SerialException) as exc:
            raise TransportError(f"cannot open serial port {self._settings.path}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()

    async def lines(self) -> AsyncIterator[bytes]:
        reader = self._reader
        if reader is None:
            raise TransportError("serial port is not open (use it as an async context manager)")
        limit = self._settings.max_line_bytes
        buffer = bytearray()
        discarding = False
        while True:
            try:
                chunk = await reader.read(4096)
            except (OSError, serial.SerialException) as exc:
                raise TransportError(f"serial port {self._settings.path} failed: {exc}") from exc
            if not chunk:
                raise TransportError(f"serial port {self._settings.path} closed")
            buffer += chunk
            while True:
                newline = buffer.find(b"\n")
                if newline < 0:
                    if len(buffer) > limit:
                        if not discarding:
                            yield bytes(buffer[:limit])
                        discarding = True
                        buffer.clear()
                    break
                line = bytes(buffer[: newline + 1])
                del buffer[: newline + 1]
                if discarding:  # the tail of an oversized line that was already reported
                    discarding = False
                    continue
                line = line[:limit]
                if line.strip():
                    yield line
