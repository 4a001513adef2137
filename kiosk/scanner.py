"""A USB/serial barcode scanner: it sends the code followed by CR (many add LF too).

`ScannerReader.codes()` yields each code as text, forever: when the port vanishes (unplugged, PTY
closed) it reopens with backoff. Reading uses pyserial-asyncio-fast on the app's event loop.

    async for code in ScannerReader("/dev/ttyUSB0").codes():
        ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import serial
import serial_asyncio_fast

from kiosk.errors import ScannerError
from sensors.backoff import Backoff

__all__ = ["ScannerReader", "split_codes"]

log = logging.getLogger(__name__)
MAX_CODE_BYTES = 128


def split_codes(buffer: bytearray) -> list[str]:
    """Take the complete codes (ended by CR or LF) out of `buffer`; keep the unfinished tail.

    Empty lines (the LF after a CR) are skipped; non-printable characters are dropped; an overlong
    run without a terminator is thrown away (line noise, not a card).
    """
    codes: list[str] = []
    while True:
        ends = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
        if not ends:
            if len(buffer) > MAX_CODE_BYTES:
                buffer.clear()
            return codes
        end = min(ends)
        raw = bytes(buffer[:end])
        del buffer[: end + 1]
        code = "".join(ch for ch in raw.decode("ascii", "replace") if ch.isprintable() and ch != "\ufffd")
        code = code.strip()
        if code and len(raw) <= MAX_CODE_BYTES:
            codes.append(code)


class ScannerReader:
    def __init__(
        self,
        path: str,
        baudrate: int = 9600,
        *,
        reopen_min_s: float = 0.5,
        reopen_max_s: float = 5.0,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.path = path
        self.baudrate = baudrate
        self._backoff = Backoff(reopen_min_s, reopen_max_s)
        self._on_state = on_state

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await serial_asyncio_fast.open_serial_connection(url=self.path, baudrate=self.baudrate)
        except (OSError, serial.SerialException) as exc:
            raise ScannerError(f"cannot open scanner {self.path}: {exc}") from exc

    async def codes(self) -> AsyncIterator[str]:
        while True:
            try:
                reader, writer = await self._open()
            except ScannerError as exc:
                log.warning("scanner_unavailable", extra={"path": self.path, "error": str(exc)})
                self._state(False)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            self._state(True)
            buffer = bytearray()
            try:
                while True:
                    chunk = await reader.read(256)
                    if not chunk:
                        break
                    buffer += chunk
                    for code in split_codes(buffer):
                        yield code
            except (OSError, serial.SerialException) as exc:
                log.warning("scanner_lost", extra={"path": self.path, "error": str(exc)})
            finally:
                writer.close()
            self._state(False)
            await asyncio.sleep(self._backoff.next_delay())

    def _state(self, ok: bool) -> None:
        if self._on_state is not None:
            self._on_state(ok)
