"""`storeedge kiosk --serve` in a real headless Chromium, offline, against a real daemon: a shopper scans a
card, opens the route, and the route screen in the browser shows every stop (#17). The browser, its
DevTools driver and the screen model that reads the page's terminal are in `tests/kiosk/browser_kit.py`.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.config import load_config
from edge.demo.broker import MosquittoBroker
from edge.demo.service import seed_demo_history
from kiosk.strings import category_name
from tests.conftest import run_daemon
from tests.kiosk.browser_kit import CHROMIUM, DevTools, Screen, kiosk_in_chromium
from tests.kiosk.kiosk_daemon_kit import KIOSK_TOKEN, SCANNED, kiosk_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


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
        async with kiosk_in_chromium(tmp_path, daemon.url, 1280, 900, DevTools, "--from", "kiosk-1") as (
            devtools,
            port,
        ):
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
