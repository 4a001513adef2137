"""Serial transport on real pseudo-terminals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Iterator

import pytest

from sensors.errors import TransportError
from sensors.frames import encode_frame
from sensors.serial_port import SerialLineSource, SerialSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    yield master, path
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


async def _lines(source: SerialLineSource, count: int) -> list[bytes]:
    out: list[bytes] = []
    async for line in source.lines():
        out.append(line)
        if len(out) == count:
            break
    return out


async def test_reads_framed_lines_split_across_writes(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    frames = [encode_frame("WGT", ["A6-1", str(i), "1795514400000", "100.5"]) for i in range(1, 4)]
    async with SerialLineSource(SerialSettings(path=path)) as source:
        blob = b"".join(frames)
        os.write(master, blob[:10])
        await asyncio.sleep(0.05)
        os.write(master, blob[10:])
        lines = await asyncio.wait_for(_lines(source, 3), 5)
    assert lines == frames


async def test_oversized_line_is_cut_and_the_stream_resynchronises(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    good = encode_frame("WGT", ["A6-1", "9", "1795514400000", "1.0"])
    async with SerialLineSource(SerialSettings(path=path, max_line_bytes=64)) as source:
        os.write(master, b"$" + b"A" * 300 + b"\r\n" + good)
        lines = await asyncio.wait_for(_lines(source, 2), 5)
    assert len(lines[0]) == 64
    assert lines[1] == good


async def test_closed_device_raises_transport_error(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    async with SerialLineSource(SerialSettings(path=path)) as source:
        os.close(master)
        with pytest.raises(TransportError):
            await asyncio.wait_for(_lines(source, 1), 5)


async def test_missing_port_raises_transport_error(tmp_path) -> None:
    with pytest.raises(TransportError, match="cannot open serial port"):
        async with SerialLineSource(SerialSettings(path=str(tmp_path / "nope"))):
            pass
