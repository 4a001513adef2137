"""Driving `storeedge kiosk --serve` in a real headless Chromium over the DevTools protocol (aiohttp's
WebSocket client), offline. The terminal in the page is drawn on a canvas, so tests read what the page
shows from the terminal output it receives (the WebSocket frames textual-serve sends it) through a small
screen model, and type with DevTools key events as a shopper would."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from rich.cells import get_character_cell_size

from tests.kiosk.kiosk_daemon_kit import KIOSK_TOKEN

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
CSI = re.compile(rb"\x1b\[([0-?]*)([ -/]*)([@-~])")
OTHER_ESCAPE = re.compile(rb"\x1b(?:\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHMc])")


class Screen:
    """Enough of a VT100 to follow Textual's output: cursor moves, text, clears."""

    def __init__(self, cols: int = 200, rows: int = 80) -> None:
        self.cols, self.rows = cols, rows
        self.cells = [[" "] * cols for _ in range(rows)]
        self.row = self.col = 0
        self._pending = b""

    def feed(self, data: bytes) -> None:
        data = self._pending + data
        self._pending = b""
        i = 0
        while i < len(data):
            if data[i] == 0x1B:
                match = CSI.match(data, i) or OTHER_ESCAPE.match(data, i)
                if match is None:
                    self._pending = data[i:]  # an escape split across frames
                    return
                if match.re is CSI:
                    self._csi(match.group(1).decode(), match.group(3).decode())
                i = match.end()
                continue
            end = data.find(b"\x1b", i)
            end = len(data) if end < 0 else end
            chunk = data[i:end]
            try:
                text = chunk.decode()
            except UnicodeDecodeError:  # a character split across frames
                self._pending = data[i:]
                return
            self._text(text)
            i = end

    def _text(self, text: str) -> None:
        for char in text:
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self.row = min(self.row + 1, self.rows - 1)
            elif char >= " ":
                if 0 <= self.row < self.rows and 0 <= self.col < self.cols:
                    self.cells[self.row][self.col] = char
                self.col += max(1, get_character_cell_size(char))

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return  # private modes (mouse, alternate screen, synchronised output)
        numbers = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
        first = numbers[0] if numbers else 0
        if final in "Hf":
            self.row = max(first, 1) - 1
            self.col = max(numbers[1] if len(numbers) > 1 else 1, 1) - 1
        elif final == "J" and first == 2:
            self.cells = [[" "] * self.cols for _ in range(self.rows)]
        elif final == "K":
            self.cells[self.row][self.col :] = [" "] * (self.cols - self.col)
        elif final == "G":
            self.col = max(first, 1) - 1
        elif final in "ABCD":
            step = max(first, 1)
            self.row += {"A": -step, "B": step}.get(final, 0)
            self.col += {"C": step, "D": -step}.get(final, 0)

    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.cells]

    def text(self) -> str:
        return "\n".join(self.lines())


class DevTools:
    """Chromium's DevTools protocol on one page (flattened sessions over the browser's socket)."""

    def __init__(self, socket_: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = socket_
        self._next = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.session: str | None = None
        self.screen = Screen()
        self._reader = asyncio.create_task(self._read())

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = done
        await self._ws.send_str(json.dumps(message))
        return await asyncio.wait_for(done, 30)

    async def _read(self) -> None:
        async for message in self._ws:
            body = json.loads(message.data)
            if "id" in body and body["id"] in self._waiting:
                self._waiting.pop(body["id"]).set_result(body.get("result", body))
            elif body.get("method") == "Network.webSocketFrameReceived":
                frame = body["params"]["response"]
                if frame["opcode"] == 2:  # binary: the kiosk's terminal output
                    self.screen.feed(base64.b64decode(frame["payloadData"]))

    async def key(self, key: str, code: int, text: str = "") -> None:
        for kind in ("keyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key=key,
                code=key,
                windowsVirtualKeyCode=code,
                **({"text": text} if text and kind == "keyDown" else {}),
            )

    async def click(self, x: int, y: int) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def until(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        for _ in range(int(timeout / 0.1)):
            found = re.search(pattern, self.screen.text())
            if found:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{pattern!r} not shown in the browser:\n{self.screen.text()}")

    async def close(self) -> None:
        self._reader.cancel()
        await self._ws.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


D = TypeVar("D", bound=DevTools)


@asynccontextmanager
async def kiosk_in_chromium(
    tmp_path: Path,
    api: str,
    width: int,
    height: int,
    driver: Callable[[aiohttp.ClientWebSocketResponse], D],
    *kiosk_args: str,
) -> AsyncIterator[tuple[D, int]]:
    """`storeedge kiosk --serve` (with ``kiosk_args``) and a headless Chromium that cannot resolve any host
    but 127.0.0.1, on a blank page attached to ``driver``; yields the driver and the kiosk's port."""
    port = free_port()
    kiosk = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge", "kiosk", "--api", api, "--token", KIOSK_TOKEN,
        *kiosk_args, "--serve", "--host", "127.0.0.1", "--port", str(port),
        cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    browser = await asyncio.create_subprocess_exec(
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--remote-debugging-port=0", f"--window-size={width},{height}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline, as a store is
        f"--user-data-dir={tmp_path / 'chromium'}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert browser.stderr is not None
        line = b""
        while b"DevTools listening on" not in line:
            line = await asyncio.wait_for(browser.stderr.readline(), 30)
            assert line, "chromium exited before it listened"
        endpoint = line.decode().split("listening on ", 1)[1].strip()
        async with aiohttp.ClientSession() as http:
            for _ in range(300):  # the kiosk server takes a moment to listen
                try:
                    async with http.get(f"http://127.0.0.1:{port}/") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            devtools = driver(await http.ws_connect(endpoint, max_msg_size=0))
            try:
                target = await devtools.send("Target.createTarget", url="about:blank")
                attached = await devtools.send(
                    "Target.attachToTarget", targetId=target["targetId"], flatten=True
                )
                devtools.session = attached["sessionId"]
                await devtools.send("Network.enable")
                yield devtools, port
            finally:
                await devtools.close()
    finally:
        for process in (browser, kiosk):
            if process.returncode is None:
                process.terminate()
                await process.wait()
