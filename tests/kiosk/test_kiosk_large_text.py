"""Large text (#17 item 7): the welcome screen's toggle in a browser page served by `--serve`, none in
a terminal; `--font-size` and the page's `?fontsize=` as the server takes them.

The toggle in a real headless Chromium is in `test_kiosk_large_text_browser.py`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button

import kiosk.app
from edge.cli import main
from kiosk.app import KioskApp
from kiosk.serve import (
    DEFAULT_FONT_SIZE,
    EXTERNAL_URL,
    FONT_SIZES,
    PageFont,
    large_font_size,
    offline_templates,
    page_font_size,
    use_page_font,
)
from kiosk.settings import KioskSettings
from kiosk.strings import use
from tests.conftest import REPO
from tests.kiosk.kiosk_testkit import FakeApi, FakeClock, fake_app
from tests.kiosk.test_kiosk_cli import _free_port, _get

SIZES = {"80x24": (80, 24), "kiosk": (120, 40)}
NORMAL = PageFont(normal=DEFAULT_FONT_SIZE, current=DEFAULT_FONT_SIZE)
LARGE = PageFont(normal=DEFAULT_FONT_SIZE, current=large_font_size(DEFAULT_FONT_SIZE))


class BrowserKiosk(KioskApp):
    """The kiosk as textual-serve runs it (its driver says it is in a browser); URLs it opens are kept."""

    CSS_PATH = Path(kiosk.app.__file__).with_name("kiosk.tcss")  # relative paths are to the class's file
    opened: list[tuple[str, bool]]

    @property
    def is_web(self) -> bool:
        return True

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        self.opened.append((url, new_tab))


def browser_app(language: str = "en") -> BrowserKiosk:
    settings = KioskSettings(api="http://fake", clock=FakeClock(), tick_s=0.05, language=language)
    use(settings.language)
    app = BrowserKiosk(settings, FakeApi(), None)
    app.opened = []
    return app


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[PageFont]:
    font: PageFont = getattr(request, "param", NORMAL)
    use_page_font(font)
    yield font
    use_page_font(None)
    use("en")


def test_large_text_is_a_quarter_larger_and_toggles_back() -> None:
    assert large_font_size(16) == 20
    assert NORMAL.toggled_url() == "?fontsize=20"
    assert not NORMAL.is_large
    assert LARGE.is_large
    assert LARGE.toggled_url() == "?fontsize=16"
    assert PageFont(normal=24, current=30).toggled_url() == "?fontsize=24"
    assert PageFont(normal=24, current=20).toggled_url() == "?fontsize=30"  # smaller than normal: go large


def test_a_page_font_size_is_a_number_in_range_else_the_normal_one() -> None:
    assert page_font_size(None, 18) == 18
    assert page_font_size("22", 18) == 22
    assert page_font_size("big", 18) == 18
    assert page_font_size("2", 18) == FONT_SIZES.start
    assert page_font_size("500", 18) == large_font_size(FONT_SIZES.stop - 1)


async def test_in_a_browser_the_toggle_is_reached_with_arrows_and_enter(page: PageFont) -> None:
    app = browser_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        toggle = app.screen.query_one("#text-size", Button)
        assert str(toggle.label) == "Larger text"
        await pilot.press("down")  # from the card field
        assert app.focused is toggle
        await pilot.press("enter")
        assert app.opened == [("?fontsize=20", False)]  # the same page, in the same tab
        await pilot.press("down")
        assert app.focused is app.screen.query_one("#staff", Button)


@pytest.mark.parametrize("page", [LARGE], indirect=True, ids=["large"])
async def test_with_large_text_the_toggle_goes_back_to_normal(page: PageFont) -> None:
    app = browser_app("de")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        toggle = app.screen.query_one("#text-size", Button)
        assert str(toggle.label) == "Normale Schrift"
        await pilot.click("#text-size")
        assert app.opened == [("?fontsize=16", False)]


async def test_in_a_terminal_there_is_no_toggle(page: PageFont) -> None:
    app = fake_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        assert not app.is_web
        assert not app.screen.query("#text-size")
        assert app.screen.query_one("#staff", Button)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("page", [NORMAL], indirect=True, ids=["normal"])
def test_welcome_screen_in_a_browser_snapshot(size: str, page: PageFont, snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause(0.1)

    assert snap_compare(browser_app(), terminal_size=SIZES[size], run_before=run_before)


def test_font_size_out_of_range_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kiosk", "--serve", "--font-size", "9"]) == 2
    err = capsys.readouterr().err
    assert err == "storeedge kiosk: --font-size 9: must be 10..48 (px)\n"
    assert main(["kiosk", "--serve", "--font-size", "49"]) == 2
    assert "--font-size 49: must be 10..48" in capsys.readouterr().err


def test_font_size_in_a_terminal_says_the_terminal_sets_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kiosk", "--font-size", "20"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--font-size: only with --serve" in err


def test_the_page_opens_the_kiosk_socket_with_its_font_size(tmp_path: Path) -> None:
    page = (offline_templates(tmp_path) / "app_index.html").read_text(encoding="utf-8")
    assert 'data-session-websocket-url="{{ app_websocket_url }}/{{ font_size }}"' in page
    assert 'data-font-size="{{ font_size }}"' in page


def test_served_page_takes_the_store_size_and_keeps_asked_sizes_in_range() -> None:
    """Over real HTTP: no `?fontsize=` is `--font-size`; an asked size is kept in range; the page's
    WebSocket names the size; still nothing outside the kiosk server."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "kiosk", "--api", "http://127.0.0.1:9", "--serve",
         "--host", "127.0.0.1", "--port", str(port), "--font-size", "18"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/"
        for query, size in (("", 18), ("?fontsize=22", 22), ("?fontsize=400", 60), ("?fontsize=x", 18)):
            page = _get(base + query, 30)
            assert f'data-font-size="{size}"' in page, query
            assert re.search(rf'data-session-websocket-url="ws://127\.0\.0\.1:{port}/ws/{size}"', page)
            assert EXTERNAL_URL.findall(page) == []
    finally:
        process.terminate()
        process.wait(10)
