"""Large text in a real headless Chromium (#17 item 7), offline, against a real daemon: on the welcome
screen, arrows + Enter reach "Larger text"; the page reloads with the larger `?fontsize=`, the kiosk's
terminal has fewer cells (still at least 80x24 in a 1280x720 window) and the toggle says "Normal
text"; pressing it brings the normal size and the first terminal size back.

Uses the DevTools driver and screen model of `tests/kiosk/browser_kit.py`; the terminal's size is
read from the WebSocket address the page opens (textual-serve's page puts the size it fitted there).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path

import aiohttp
import pytest

from edge.demo.broker import MosquittoBroker
from kiosk.serve import EXTERNAL_URL
from tests.conftest import run_daemon
from tests.kiosk.browser_kit import CHROMIUM, DevTools, Screen, kiosk_in_chromium
from tests.kiosk.kiosk_daemon_kit import kiosk_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
SOCKET = re.compile(r"/ws/(\d+)\?width=(\d+)&height=(\d+)$")


class PageDevTools(DevTools):
    """Also keeps every request the page makes and every kiosk WebSocket it opens; a new socket is a
    new kiosk process, so the screen model starts afresh."""

    def __init__(self, socket_: aiohttp.ClientWebSocketResponse) -> None:
        self.requests: list[str] = []
        self.sockets: list[tuple[int, int, int]] = []  # (font size, columns, rows)
        super().__init__(socket_)

    async def _read(self) -> None:
        async for message in self._ws:
            body = json.loads(message.data)
            method = body.get("method")
            if "id" in body and body["id"] in self._waiting:
                self._waiting.pop(body["id"]).set_result(body.get("result", body))
            elif method == "Network.requestWillBeSent":
                self.requests.append(body["params"]["request"]["url"])
            elif method == "Network.webSocketCreated":
                url = body["params"]["url"]
                self.requests.append(url)
                found = SOCKET.search(url)
                assert found, url
                self.sockets.append((int(found[1]), int(found[2]), int(found[3])))
                self.screen = Screen()
            elif method == "Network.webSocketFrameReceived":
                frame = body["params"]["response"]
                if frame["opcode"] == 2:  # binary: the kiosk's terminal output
                    self.screen.feed(base64.b64decode(frame["payloadData"]))

    async def href(self) -> str:
        answer = await self.send("Runtime.evaluate", expression="location.href")
        return str(answer["result"]["value"])

    async def press_in_terminal(self, *keys: tuple[str, int, str]) -> None:
        await self.send(
            "Runtime.evaluate", expression="document.querySelector('.xterm-helper-textarea').focus()"
        )
        for key, code, text in keys:
            await self.key(key, code, text)


async def until_socket(devtools: PageDevTools, font_size: int, opened_before: int) -> tuple[int, int, int]:
    for _ in range(600):
        if len(devtools.sockets) > opened_before and devtools.sockets[-1][0] == font_size:
            return devtools.sockets[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no kiosk socket at font size {font_size}: {devtools.sockets}")


DOWN, ENTER = ("ArrowDown", 40, ""), ("Enter", 13, "\r")


async def test_large_text_toggle_in_a_browser(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = kiosk_config(tmp_path, broker)
    async with (
        run_daemon(config) as daemon,
        kiosk_in_chromium(tmp_path, daemon.url, 1280, 720, PageDevTools) as (devtools, port),
    ):
        page = f"http://127.0.0.1:{port}/"
        await devtools.send("Page.navigate", url=page)
        await devtools.until(r"Larger text")
        normal = await until_socket(devtools, 16, 0)

        await devtools.press_in_terminal(DOWN, ENTER)  # card field -> "Larger text", pressed
        large = await until_socket(devtools, 20, 1)
        await devtools.until(r"Normal text")
        assert await devtools.href() == f"{page}?fontsize=20"
        _, columns, rows = large
        assert columns < normal[1], (normal, large)
        assert rows < normal[2], (normal, large)
        assert columns >= 80, f"a 1280x720 window with large text: {large}"  # the kiosk's smallest size
        assert rows >= 24, f"a 1280x720 window with large text: {large}"
        await devtools.until(r"SCAN YOUR CARD")

        await devtools.press_in_terminal(DOWN, ENTER)  # "Normal text"
        back = await until_socket(devtools, 16, 2)
        await devtools.until(r"Larger text")
        assert await devtools.href() == f"{page}?fontsize=16"
        assert back == normal
        assert [url for url in devtools.requests if EXTERNAL_URL.search(url)] == []
