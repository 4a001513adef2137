"""The barcode scanner on a real PTY: codes ended by CR, a badge at the staff login, a replugged scanner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.scanner import ScannerReader
from kiosk.schemas import Consent
from kiosk.screens.consent import ConsentScreen
from kiosk.screens.shopping_list import ShoppingListScreen
from kiosk.screens.staff import StaffLoginScreen, StaffScreen
from tests.kiosk.kiosk_testkit import STAFF, FakeApi, fake_app, wait_for_screen

pytestmark = pytest.mark.integration


class Pty:
    """A pseudo-terminal whose slave end is reached through a stable symlink (like /dev/serial/by-id)."""

    def __init__(self, link: Path) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slave_name = os.ttyname(slave)
        os.close(slave)
        link.unlink(missing_ok=True)
        link.symlink_to(self.slave_name)
        self.link = link

    def scan(self, code: str, ending: bytes = b"\r") -> None:
        os.write(self.master, code.encode() + ending)

    def close(self) -> None:
        os.close(self.master)

    def unplug(self) -> None:
        """Like udev on a USB unplug: the by-id link goes first, then the device. (Without that the
        reader's retries could open the old /dev/pts/N after the kernel has given it to someone else.)"""
        self.link.unlink()
        self.close()


@pytest.fixture
def scanner_link(tmp_path: Path) -> Iterator[tuple[Path, Pty]]:
    link = tmp_path / "scanner"
    pty = Pty(link)
    yield link, pty
    with contextlib.suppress(OSError):
        pty.close()


async def test_reader_yields_codes_and_survives_a_replugged_scanner(scanner_link: tuple[Path, Pty]) -> None:
    link, pty = scanner_link
    states: list[bool] = []
    codes = ScannerReader(str(link), reopen_min_s=0.05, reopen_max_s=0.2, on_state=states.append).codes()
    first = asyncio.create_task(anext(codes))
    await asyncio.sleep(0.3)  # the port is open
    pty.scan("4000123412341234")
    assert await asyncio.wait_for(first, 5) == "4000123412341234"
    pty.scan("1111", b"\r\n")
    pty.scan("2222", b"\r")
    assert await asyncio.wait_for(anext(codes), 5) == "1111"
    assert await asyncio.wait_for(anext(codes), 5) == "2222"
    # Unplug: the PTY goes away; plug a new one in behind the same link.
    pty.unplug()
    waiting = asyncio.create_task(anext(codes))
    await asyncio.sleep(0.3)
    replugged = Pty(link)
    try:
        for _ in range(100):  # reopened (after failed attempts while nothing was plugged in)
            if states.count(True) >= 2:
                break
            await asyncio.sleep(0.05)
        replugged.scan("3333")
        assert await asyncio.wait_for(waiting, 5) == "3333"
        assert states[:2] == [True, False]
        assert states[-1] is True
    finally:
        await codes.aclose()  # type: ignore[attr-defined]
        replugged.close()


async def test_a_scanned_card_opens_the_shoppers_session(scanner_link: tuple[Path, Pty]) -> None:
    link, pty = scanner_link
    api = FakeApi()
    app = fake_app(api, scanner=str(link))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        pty.scan("4000123412341234")
        await wait_for_screen(pilot, ConsentScreen)
        assert api.calls[0] == ("open_session", "4000123412341234")
        # A second card while a session is open is ignored: one shopper at a time.
        pty.scan("9999")
        await pilot.pause(0.3)
        assert [c for c in api.calls if c[0] == "open_session"] == [("open_session", "4000123412341234")]


async def test_a_scanned_staff_badge_logs_in_at_the_staff_screen(scanner_link: tuple[Path, Pty]) -> None:
    link, pty = scanner_link
    app = fake_app(FakeApi(consent=Consent(True, True, 1)), scanner=str(link), staff=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_screen(pilot, StaffLoginScreen)
        await pilot.pause(0.3)
        pty.scan(STAFF)
        await wait_for_screen(pilot, StaffScreen)
        assert app.staff_token == STAFF
        assert not isinstance(app.screen, ShoppingListScreen)
