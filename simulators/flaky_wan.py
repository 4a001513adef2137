"""A flaky WAN between central and a store: a TCP proxy that can cut, black-hole, delay, throttle and reset
connections, by hand (`FlakyWan.set`) or on a schedule (`FlakyWan.run_schedule`).

Conditions (`WanCondition`):

- ``up``: bytes flow (optionally ``delay_s`` late each way, and at most ``rate_bps`` bytes/s each way);
- ``cut``: every open connection is reset (RST) and new ones are reset on arrival: a link that is down;
- ``blackhole``: connections stay open but nothing is forwarded until the condition changes (what a
  dropped route looks like to TCP: the bytes arrive late, or the connection times out);
- `FlakyWan.reset_all` resets the open connections once and leaves the condition as it was.

Delay is applied per chunk from the moment it was read, so a delayed link keeps its bandwidth.

    python -m simulators.flaky_wan --listen 127.0.0.1:9000 --target 127.0.0.1:8080 \\
        --schedule "up:30, cut:10, delay=0.3:20, throttle=65536:20, blackhole:5, reset, up:10" --repeat
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger(__name__)
CHUNK = 64 * 1024
Mode = Literal["up", "cut", "blackhole"]


@dataclass(frozen=True, slots=True)
class WanCondition:
    mode: Mode = "up"
    delay_s: float = 0.0
    rate_bps: float | None = None  # bytes per second each way; None: unlimited

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s}")
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ValueError(f"rate_bps must be positive, got {self.rate_bps}")


UP = WanCondition()
CUT = WanCondition("cut")
BLACKHOLE = WanCondition("blackhole")


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of a schedule: hold ``condition`` for ``seconds``; ``reset`` resets connections first."""

    condition: WanCondition
    seconds: float
    reset: bool = False


@dataclass(slots=True)
class WanStats:
    connections: int = 0
    refused: int = 0
    resets: int = 0
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0  # target -> client


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            _rst(writer)
        for task in self.tasks:
            task.cancel()


class FlakyWan:
    """``async with FlakyWan(target_host, target_port) as wan:`` then connect to ``wan.port``."""

    def __init__(
        self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1", listen_port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self._listen = (listen_host, listen_port)
        self.condition = UP
        self.stats = WanStats()
        self._changed = asyncio.Event()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FlakyWan:
        self._server = await asyncio.start_server(self._accept, *self._listen)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("wan_listening", extra={"port": self.port, "target": f"{self.target[0]}:{self.target[1]}"})
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- control -----------------------------------------------------------------------------------
    def set(self, condition: WanCondition) -> None:
        """Change the condition now; cutting resets every open connection."""
        self.condition = condition
        if condition.mode == "cut":
            self.reset_all()
        self._changed.set()
        self._changed = asyncio.Event()
        log.info(
            "wan_condition",
            extra={"mode": condition.mode, "delay_s": condition.delay_s, "rate_bps": condition.rate_bps},
        )

    def reset_all(self) -> int:
        """Reset (RST) every open connection once; returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        self._links.clear()
        self.stats.resets += len(links)
        return len(links)

    async def run_schedule(self, phases: Sequence[Phase], *, repeat: bool = False) -> None:
        while True:
            for phase in phases:
                if phase.reset:
                    self.reset_all()
                self.set(phase.condition)
                await asyncio.sleep(phase.seconds)
            if not repeat:
                return

    # -- proxying ----------------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.condition.mode == "cut":
            self.stats.refused += 1
            _rst(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.stats.refused += 1
            _rst(writer)
            return
        self.stats.connections += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, upstream=True)),
            asyncio.create_task(self._pump(up_reader, writer, upstream=False)),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._links.discard(link)
            for w in (writer, up_writer):
                w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)

        async def read() -> None:
            while chunk := await reader.read(CHUNK):
                await queue.put((time.monotonic(), chunk))
            await queue.put((time.monotonic(), b""))

        feeder = asyncio.create_task(read())
        paced_until = 0.0
        try:
            while True:
                arrived, chunk = await queue.get()
                await self._hold_while_blackholed()
                delay = arrived + self.condition.delay_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._hold_while_blackholed()
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                for piece in self._pieces(chunk):
                    rate = self.condition.rate_bps
                    if rate:  # pace before sending: at most `rate` bytes in any second from here on
                        wait = paced_until - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                        paced_until = max(paced_until, time.monotonic()) + len(piece) / rate
                    writer.write(piece)
                    await writer.drain()
                    if upstream:
                        self.stats.bytes_up += len(piece)
                    else:
                        self.stats.bytes_down += len(piece)
        except (ConnectionError, OSError):
            return
        finally:
            feeder.cancel()

    def _pieces(self, chunk: bytes) -> list[bytes]:
        """A throttled link sends in pieces of about 1/20 s of its rate, so pacing is smooth."""
        rate = self.condition.rate_bps
        size = max(1, int(rate / 20)) if rate else len(chunk)
        return [chunk[i : i + size] for i in range(0, len(chunk), size)]

    async def _hold_while_blackholed(self) -> None:
        while self.condition.mode == "blackhole":
            await self._changed.wait()


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a middlebox dropping the flow does, not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- command line -------------------------------------------------------------------------------------


def parse_schedule(text: str) -> list[Phase]:
    """``"up:30, cut:10, delay=0.3:20, throttle=65536:20, blackhole:5, reset, up:10"`` -> phases.

    ``reset`` resets the open connections at the start of the next phase."""
    phases: list[Phase] = []
    reset_next = False
    for raw in (p.strip() for p in text.split(",")):
        if not raw:
            continue
        if raw == "reset":
            reset_next = True
            continue
        spec, sep, seconds_text = raw.rpartition(":")
        if not sep:
            raise ValueError(f"{raw!r}: expected MODE[=VALUE]:SECONDS")
        name, _, value = spec.partition("=")
        try:
            seconds = float(seconds_text)
            condition = _condition(name, value)
        except ValueError as exc:
            raise ValueError(f"{raw!r}: {exc}") from None
        phases.append(Phase(condition, seconds, reset=reset_next))
        reset_next = False
    if not phases:
        raise ValueError("empty schedule")
    return phases


def _condition(name: str, value: str) -> WanCondition:
    if name == "up":
        return UP
    if name == "cut":
        return CUT
    if name == "blackhole":
        return BLACKHOLE
    if name == "delay":
        return WanCondition(delay_s=float(value))
    if name == "throttle":
        return WanCondition(rate_bps=float(value))
    raise ValueError(f"unknown mode {name!r} (up, cut, blackhole, delay=S, throttle=BYTES_PER_S, reset)")


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.flaky_wan",
        description="A flaky WAN: a TCP proxy that cuts, black-holes, delays, throttles and resets connections.",
        epilog='example: python -m simulators.flaky_wan --listen 127.0.0.1:9000 --target 127.0.0.1:8080 --schedule "up:30, cut:10, delay=0.3:20" --repeat',
    )
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on (what central connects to)")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to (the store's HTTP server)")
    parser.add_argument(
        "--schedule", default="up:3600", help="phases, e.g. 'up:30, cut:10, delay=0.3:20, reset, up:5'"
    )
    parser.add_argument("--repeat", action="store_true", help="repeat the schedule until interrupted")
    args = parser.parse_args(argv)
    try:
        phases = parse_schedule(args.schedule)
        listen, target = _address(args.listen), _address(args.target)
    except ValueError as exc:
        print(f"flaky_wan: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    async def run() -> None:
        async with FlakyWan(*target, listen_host=listen[0], listen_port=listen[1]) as wan:
            print(f"flaky_wan: {listen[0]}:{wan.port} -> {target[0]}:{target[1]}", flush=True)
            await wan.run_schedule(phases, repeat=args.repeat)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
