"""The legacy controller's PTY link: whole frames, never blocking, a symlink that behaves like socat's."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import serial

from sensors.frames import decode_frame, encode_frame
from simulators.errors import SerialLinkError
from simulators.serial_link import PtySerialLink

pytestmark = pytest.mark.integration  # real pseudo-terminals


def _frame(n: int) -> bytes:
    return encode_frame("WGT", ["A6-1", str(n), str(1_800_000_000_000 + n), f"{1000 + n / 10:.1f}"])


async def _read_lines(port: serial.Serial, want: int, timeout_s: float = 5.0) -> list[bytes]:
    """Read with a non-blocking pyserial port while the event loop keeps flushing the master."""
    buffer = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while buffer.count(b"\n") < want and loop.time() < deadline:
        buffer += port.read(65_536)
        await asyncio.sleep(0.01)
    return buffer.splitlines(keepends=True)


async def test_frames_arrive_whole_through_the_symlink(tmp_path: Path) -> None:
    link_path = tmp_path / "ttySHELF"
    async with PtySerialLink(link_path) as link:
        assert link_path.is_symlink()
        assert os.readlink(link_path) == link.slave_path
        with serial.Serial(str(link_path), timeout=0) as port:
            sent = [_frame(n) for n in range(1, 51)]
            assert all(link.write(frame) for frame in sent)
            assert await _read_lines(port, len(sent)) == sent
        assert link.frames_written == 50
        assert link.frames_dropped == 0
    assert not link_path.exists()
    assert not link_path.is_symlink()


async def test_nobody_reading_keeps_a_few_kib_and_drops_the_rest(tmp_path: Path) -> None:
    async with PtySerialLink(tmp_path / "ttySHELF") as link:
        # Paced like the controller (but faster): the kernel keeps up, so the bound is exact.
        accepted = []
        for n in range(1, 301):
            accepted.append(link.write(_frame(n)))
            await asyncio.sleep(0.0005)
        assert 50 < accepted.count(True) < 90  # ~3 KiB of 40-byte frames
        assert link.frames_dropped == accepted.count(False)
        assert link.queued_bytes() <= 3_072 + 256  # FIONREAD may trail the last write by a frame


async def test_a_burst_never_blocks_and_a_new_reader_gets_whole_frames(tmp_path: Path) -> None:
    link_path = tmp_path / "ttySHELF"
    async with PtySerialLink(link_path) as link:
        loop = asyncio.get_running_loop()
        started = loop.time()
        accepted = [link.write(_frame(n)) for n in range(1, 3_001)]  # ~130 KB at once
        assert loop.time() - started < 1.0
        assert not all(accepted)
        assert link.frames_dropped == accepted.count(False)
        with serial.Serial(str(link_path), timeout=0) as port:  # pyserial flushes what was queued
            # The link still holds what the burst left in its own queue: let the loop hand it over and
            # read it away, so the fresh frames below find room (writing at once flaked 1 run in 5).
            quiet = 0
            while quiet < 5:
                quiet = 0 if port.read(65_536) else quiet + 1
                await asyncio.sleep(0.01)
            fresh = [_frame(n) for n in range(5_001, 5_021)]
            for frame in fresh:
                assert link.write(frame)
                await asyncio.sleep(0.001)
            lines = await _read_lines(port, len(fresh))
        assert lines[-len(fresh) :] == fresh
        # Only the first line can be the tail of a frame the burst left half-written; the rest are whole.
        for line in lines[1:]:
            decode_frame(line)


async def test_a_stale_link_is_replaced_and_a_vanished_one_recreated(tmp_path: Path) -> None:
    link_path = tmp_path / "ttySHELF"
    link_path.symlink_to("/dev/pts/does-not-exist")
    async with PtySerialLink(link_path) as link:
        assert os.readlink(link_path) == link.slave_path
        link_path.unlink()
        link.ensure_link()
        assert os.readlink(link_path) == link.slave_path
        assert not list(tmp_path.glob(".*.tmp"))


async def test_exit_leaves_a_link_another_simulator_now_owns(tmp_path: Path) -> None:
    link_path = tmp_path / "ttySHELF"
    async with PtySerialLink(link_path):
        link_path.unlink()
        link_path.symlink_to("/dev/pts/someone-else")
    assert os.readlink(link_path) == "/dev/pts/someone-else"


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SerialLinkError, match="cannot create serial link"):
        async with PtySerialLink(tmp_path / "no-such-dir" / "ttySHELF"):
            pass


async def test_closes_the_pty_when_the_body_fails(tmp_path: Path) -> None:
    link_path = tmp_path / "ttySHELF"
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(RuntimeError, match="boom"):
        async with PtySerialLink(link_path):
            raise RuntimeError("boom")
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert not link_path.is_symlink()
