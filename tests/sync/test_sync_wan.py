"""The flaky WAN proxy itself: it forwards, cuts, black-holes, delays, throttles and resets for real."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from simulators.flaky_wan import BLACKHOLE, CUT, UP, FlakyWan, Phase, WanCondition, parse_schedule

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


async def roundtrip(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    finally:
        writer.close()


async def test_forwards_cuts_and_recovers() -> None:
    async with echo_server() as target, FlakyWan("127.0.0.1", target) as wan:
        assert await roundtrip(wan.port, b"hello") == b"hello"
        reader, writer = await asyncio.open_connection("127.0.0.1", wan.port)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        wan.set(CUT)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)  # the open connection was reset
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await roundtrip(wan.port, b"refused")
        assert wan.stats.refused >= 1
        assert wan.stats.resets >= 1
        wan.set(UP)
        assert await roundtrip(wan.port, b"again") == b"again"


async def test_blackhole_holds_bytes_until_the_route_comes_back() -> None:
    async with echo_server() as target, FlakyWan("127.0.0.1", target) as wan:
        reader, writer = await asyncio.open_connection("127.0.0.1", wan.port)
        wan.set(BLACKHOLE)
        writer.write(b"held")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 0.5)
        wan.set(UP)
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
        writer.close()


async def test_delay_and_throttle_slow_the_link_down_and_reset_drops_connections() -> None:
    async with echo_server() as target, FlakyWan("127.0.0.1", target) as wan:
        wan.set(WanCondition(delay_s=0.2))
        started = time.monotonic()
        assert await roundtrip(wan.port, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.4  # 0.2 s each way, at least
        wan.set(WanCondition(rate_bps=100_000))
        payload = bytes(range(256)) * 400  # 102,400 bytes: over a second each way at 100 kB/s
        started = time.monotonic()
        assert await roundtrip(wan.port, payload, timeout=30) == payload
        assert time.monotonic() - started >= 0.9
        wan.set(UP)
        reader, writer = await asyncio.open_connection("127.0.0.1", wan.port)
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"
        assert wan.reset_all() == 1
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        assert await roundtrip(wan.port, b"new") == b"new"  # the link itself is still up


async def test_a_schedule_runs_its_phases_in_order() -> None:
    async with echo_server() as target, FlakyWan("127.0.0.1", target) as wan:
        seen = []

        async def watch() -> None:
            while True:
                if not seen or seen[-1] != wan.condition.mode:
                    seen.append(wan.condition.mode)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        await wan.run_schedule([Phase(CUT, 0.2), Phase(BLACKHOLE, 0.2), Phase(UP, 0.1)])
        watcher.cancel()
        assert seen[-3:] == ["cut", "blackhole", "up"]


def test_schedules_parse_and_bad_ones_say_why() -> None:
    phases = parse_schedule("up:30, cut:10, delay=0.3:20, throttle=65536:20, blackhole:5, reset, up:10")
    assert [p.condition.mode for p in phases] == ["up", "cut", "up", "up", "blackhole", "up"]
    assert phases[2].condition.delay_s == 0.3
    assert phases[3].condition.rate_bps == 65536
    assert phases[-1].reset
    assert not phases[-2].reset
    for bad, fragment in (
        ("warp:3", "unknown mode"),
        ("up", "expected MODE"),
        ("delay=x:3", "could not convert"),
        ("", "empty"),
    ):
        with pytest.raises(ValueError, match=fragment):
            parse_schedule(bad)
