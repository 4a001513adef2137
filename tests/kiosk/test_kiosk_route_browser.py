"""`storeedge kiosk --serve` in a real headless Chromium, offline, against a real daemon: a shopper scans a
card, opens the route, and the route screen in the browser shows every stop (#17).

Chromium is driven over the DevTools protocol (aiohttp's WebSocket client). The terminal in the page is
drawn on a canvas, so the test reads what the page shows from the terminal output the page receives
(the WebSocket frames textual-serve sends it) through a small screen model below, and types with
DevTools key events into the page as a shopper would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rich.cells import get_character_cell_size

from edge.config import load_config
from edge.demo.broker import MosquittoBroker
from edge.demo.service import seed_demo_history
from kiosk.strings import category_name
from tests.conftest import run_daemon
from tests.kiosk.kiosk_daemon_kit import KIOSK_TOKEN, SCANNED, kiosk_config

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
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


async def returning_shopper_without_consent(url: str) -> tuple[str, str]:
    """A card that said no to both purposes once: the kiosk goes straight to the store's list."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KIOSK_TOKEN}"}) as http:
        async with http.post(f"{url}/api/v1/kiosk/sessions", json={"card": SCANNED}) as response:
            opened = await response.json()
        headers = {"Authorization": f"Bearer {opened['token']}"}
        consent = {"personalisation": False, "analytics": False}
        async with http.put(
            f"{url}/api/v1/customers/{opened['customer']}/consent", json=consent, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
    return opened["customer"], opened["token"]


async def expected_visit(url: str, customer: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{url}/api/v1/recommendations/shopping-list/{customer}") as response:
            listing = await response.json()
        items = [e["category"] for group in ("urgent", "upcoming", "usual") for e in listing[group]]
        query = {"items": ",".join(items), "from": "kiosk-1"}
        async with http.get(f"{url}/api/v1/in-store/{customer}/personalization", params=query) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())


async def test_the_route_screen_in_a_browser_shows_every_stop(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = kiosk_config(tmp_path, broker)
    seed_demo_history(load_config(config), households=60, weeks=8, seed=4)  # the store's popular list
    async with run_daemon(config) as daemon:
        customer, token = await returning_shopper_without_consent(daemon.url)
        visit = await expected_visit(daemon.url, customer, token)
        assert visit["sections"], "the store's list has something to route"
        port = free_port()
        kiosk = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge", "kiosk", "--api", daemon.url, "--token", KIOSK_TOKEN,
            "--from", "kiosk-1", "--serve", "--host", "127.0.0.1", "--port", str(port),
            cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        browser = await asyncio.create_subprocess_exec(
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--remote-debugging-port=0", "--window-size=1280,900",
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
                devtools = DevTools(await http.ws_connect(endpoint, max_msg_size=0))
                try:
                    target = await devtools.send("Target.createTarget", url="about:blank")
                    attached = await devtools.send(
                        "Target.attachToTarget", targetId=target["targetId"], flatten=True
                    )
                    devtools.session = attached["sessionId"]
                    await devtools.send("Network.enable")
                    await devtools.send("Page.navigate", url=f"http://127.0.0.1:{port}/")
                    await devtools.until(r"SCAN YOUR CARD")
                    await devtools.click(640, 450)  # the terminal takes the keyboard
                    await devtools.send("Input.insertText", text=SCANNED)
                    await devtools.key("Enter", 13, "\r")
                    await devtools.until(r"Plan my route|Route")
                    await asyncio.sleep(0.5)
                    await devtools.key("ArrowRight", 39)  # the list -> Add
                    await devtools.key("ArrowRight", 39)  # Add -> Route
                    await devtools.key("Enter", 13, "\r")
                    title = await devtools.until(r"(\d+) stops to go")
                    # The map is drawn once its widget has a size: wait for the frames that draw it.
                    for _ in range(300):
                        try:
                            check_every_stop(devtools.screen, visit, int(title.group(1)))
                            break
                        except AssertionError:
                            await asyncio.sleep(0.1)
                    check_every_stop(devtools.screen, visit, int(title.group(1)))
                finally:
                    await devtools.close()
        finally:
            for process in (browser, kiosk):
                if process.returncode is None:
                    process.terminate()
                    await process.wait()


def check_every_stop(screen: Screen, visit: dict[str, Any], shown_stops: int) -> None:
    sections = visit["sections"]
    assert shown_stops == len(sections)
    lines = screen.lines()
    text = "\n".join(lines)
    border = next(line.index("▊") for line in lines if "▊" in line)  # the map | directions divide
    on_map = "\n".join(line[:border] for line in lines)
    beside = re.sub(r"\s+", " ", " ".join(line[border + 1 :] for line in lines))
    numbers = [int(n) for n in re.findall(r"\d+", on_map.split("you are here")[0])]
    for section in sections:
        number = section["order"]
        assert number in numbers, f"stop {number} not on the map:\n{text}"
        assert f"○ {number}. " in beside, f"stop {number} not in the directions:\n{text}"
        for item in section["items"]:
            assert category_name(item["category"]) in beside
    assert on_map.count("@") == 2  # "you are here" once on the map, once in the legend
    assert "to checkout" in beside
