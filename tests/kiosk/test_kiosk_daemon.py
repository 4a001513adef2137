"""The kiosk against a real daemon on loopback (real broker, real SQLite, real HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, OptionList

from edge.config import load_config
from edge.demo.broker import MosquittoBroker
from kiosk.app import KioskApp, build_app
from kiosk.client import KioskClient, StreamState
from kiosk.errors import DaemonUnreachableError, NotAuthorizedError
from kiosk.schemas import Alert
from kiosk.screens.attract import AttractScreen
from kiosk.screens.consent import ConsentScreen
from kiosk.screens.dialogs import ForgetScreen
from kiosk.screens.offers import OffersScreen
from kiosk.screens.route import RouteScreen
from kiosk.screens.shopping_list import AddItem, ItemActions, ShoppingListScreen
from kiosk.screens.staff import StaffLoginScreen, StaffScreen
from kiosk.settings import KioskSettings
from tests.conftest import STAFF_TOKEN, aget, ajson, run_daemon
from tests.edge.test_catalog_api import DEMO_CATALOG
from tests.kiosk.kiosk_daemon_kit import (
    CARD,
    KIOSK_TOKEN,
    SCANNED,
    kiosk_config,
    publish_purchases,
    publish_shelf_levels,
)
from tests.kiosk.kiosk_testkit import FakeClock, assert_no_personal_data, screen_text, wait_for_screen

pytestmark = pytest.mark.integration
SYNC_TOKEN = "test-sync-token-0123456789"
SIZE = (100, 30)


def real_app(url: str, clock: FakeClock | None = None, **settings: object) -> KioskApp:
    return build_app(
        KioskSettings(api=url, token=KIOSK_TOKEN, clock=clock or FakeClock(), tick_s=0.05, **settings)  # type: ignore[arg-type]
    )


async def test_scan_consent_list_feedback_offers_route_then_idle_wipe(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    async with run_daemon(kiosk_config(tmp_path, broker, sync={"token": SYNC_TOKEN})) as daemon:
        await publish_purchases(broker.port, CARD, baskets=4)
        clock = FakeClock()
        app = real_app(daemon.url, clock)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(100):
                if app.info is not None:
                    break
                await pilot.pause(0.05)
            assert app.info is not None
            assert "Welcome to" in screen_text(app)
            await pilot.press(*SCANNED, "enter")
            await wait_for_screen(pilot, ConsentScreen)
            assert app.session is not None
            assert app.session.customer.startswith("hh_")
            await pilot.press("enter", "down", "enter", "down", "enter")  # both purposes, then save
            await wait_for_screen(pilot, ShoppingListScreen)
            consent = await ajson(f"{daemon.url}/api/v1/customers/{app.session.customer}/consent")
            assert (consent["personalisation"], consent["analytics"]) == (True, True)
            screen = app.screen
            assert isinstance(screen, ShoppingListScreen)
            if not screen.items:  # too little history for a list: add one by hand
                await pilot.click("#add")
                await wait_for_screen(pilot, AddItem)
                await pilot.press("enter")
                await wait_for_screen(pilot, ShoppingListScreen)
            assert screen.items
            # Thumbs up on the first entry reaches the daemon (it becomes a `list_feedback` change).
            view = screen.query_one("#list", OptionList)
            assert view.highlighted is not None
            voted = screen.row_categories[view.highlighted]
            await pilot.press("enter")
            await wait_for_screen(pilot, ItemActions)
            # The item's products with prices, from the daemon's catalog: the shelf's own product (the
            # only one the simulated tills sell) is the household's usual or the store's best seller.
            assert voted is not None
            shelf_product = DEMO_CATALOG.products(voted)[0].name
            for _ in range(100):
                if shelf_product in screen_text(app):
                    break
                await pilot.pause(0.05)
            assert shelf_product in screen_text(app)
            assert "€" in screen_text(app)
            await pilot.press("enter")
            await wait_for_screen(pilot, ShoppingListScreen)
            feedback: list[dict[str, object]] = []
            for _ in range(100):
                status, body = await aget(f"{daemon.url}/sync/v1/changes?after=0&limit=5000", SYNC_TOKEN)
                assert status == 200, body
                feedback = [json.loads(c["body"]) if isinstance(c["body"], str) else c["body"]
                            for c in json.loads(body)["changes"] if c["kind"] == "list_feedback"]  # fmt: skip
                if feedback:
                    break
                await pilot.pause(0.05)
            assert [(f["category"], f["vote"]) for f in feedback] == [(voted, "up")]
            await pilot.click("#offers")
            await wait_for_screen(pilot, OffersScreen)
            assert "Offers" in screen_text(app)
            assert "Your list: about €" in screen_text(app)  # the list's budget from the daemon's catalog
            await pilot.press("enter")  # back
            await wait_for_screen(pilot, ShoppingListScreen)
            # "Add item" searches the daemon's catalog: every word, with prices and categories.
            assert app.session is not None
            page = await app.api.search_products(app.session, "whole milk")
            assert page.products
            assert all(p.category == "milk" and p.price > 0 for p in page.products)
            assert page.total >= len(page.products)
            await pilot.click("#route")
            await wait_for_screen(pilot, RouteScreen)
            text = screen_text(app)
            assert " m, about " in text
            assert "1. " in text
            customer = app.session.customer
            clock.advance(61 + 30)
            await wait_for_screen(pilot, AttractScreen)
            await pilot.pause(0.2)
            assert_no_personal_data(app)
            assert customer not in screen_text(app)


async def test_forget_me_erases_the_household_in_the_daemon(tmp_path: Path, broker: MosquittoBroker) -> None:
    async with run_daemon(kiosk_config(tmp_path, broker)) as daemon:
        app = real_app(daemon.url)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(*SCANNED, "enter")
            await wait_for_screen(pilot, ConsentScreen)
            await pilot.click("#save")
            await wait_for_screen(pilot, ShoppingListScreen)
            assert app.session is not None
            customer = app.session.customer
            consent = await ajson(f"{daemon.url}/api/v1/customers/{customer}/consent")
            assert consent["updated_ms"] is not None
            await pilot.click("#forget")
            await wait_for_screen(pilot, ForgetScreen)
            await pilot.press("left", "enter")
            await wait_for_screen(pilot, AttractScreen)
            await pilot.pause(0.2)
            assert_no_personal_data(app)
            consent = await ajson(f"{daemon.url}/api/v1/customers/{customer}/consent")
            assert consent == {"personalisation": None, "analytics": None, "updated_ms": None}
            # The next scan of the same card is a first visit again: consent is asked.
            await pilot.press(*SCANNED, "enter")
            await wait_for_screen(pilot, ConsentScreen)


async def test_staff_alert_arrives_live_and_is_acknowledged(tmp_path: Path, broker: MosquittoBroker) -> None:
    async with run_daemon(kiosk_config(tmp_path, broker)) as daemon:
        app = real_app(daemon.url, staff=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_screen(pilot, StaffLoginScreen)
            await pilot.press(*"not-the-token", "enter")
            await pilot.pause(0.3)
            assert "not accepted" in screen_text(app)
            await pilot.press(*STAFF_TOKEN, "enter")
            await wait_for_screen(pilot, StaffScreen)
            staff = app.screen
            assert isinstance(staff, StaffScreen)
            for _ in range(100):
                if "Live:" in screen_text(app):
                    break
                await pilot.pause(0.05)
            assert not staff.alerts
            await publish_shelf_levels(broker.port, "A3-2", 1020.0, [5, 4, 0])
            for _ in range(200):
                if any(a.kind == "empty_shelf" for a in staff.alerts.values()):
                    break
                await pilot.pause(0.05)
            else:
                raise AssertionError("no empty_shelf alert on the staff screen")
            assert "Shelf empty" in screen_text(app)
            table = staff.query_one("#alerts", DataTable)
            table.focus()
            empty = next(a for a in staff.alerts.values() if a.kind == "empty_shelf")
            table.move_cursor(row=table.get_row_index(str(empty.id)))
            await pilot.press("enter")
            for _ in range(100):
                if staff.alerts[empty.id].state == "acked":
                    break
                await pilot.pause(0.05)
            assert staff.alerts[empty.id].state == "acked"
            active = await ajson(f"{daemon.url}/api/v1/alerts?state=active")
            assert next(a for a in active if a["id"] == empty.id)["acked_by"] == "kiosk"
            # The tables come from the staff endpoints.
            await pilot.press("right")
            shelves = staff.query_one("#shelves", DataTable)
            for _ in range(100):
                if shelves.row_count:
                    break
                await pilot.pause(0.05)
            assert shelves.row_count > 10


async def test_client_rides_out_a_daemon_restart(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = kiosk_config(tmp_path, broker)
    states: list[bool] = []
    async with run_daemon(config) as daemon:
        url = daemon.url
        async with KioskClient(
            url, KIOSK_TOKEN, retry_for_s=20, backoff_min_s=0.05, backoff_max_s=0.3
        ) as api:
            api.on_connection = states.append
            stream = api.alert_stream(STAFF_TOKEN)
            assert await anext(stream) == StreamState(True)
            info = await api.info()
            assert info.store == "demo"
            with pytest.raises(NotAuthorizedError):
                await api.verify_staff("wrong")
    # The daemon is down: a short-deadline call fails with a typed error, not a traceback.
    async with KioskClient(url, KIOSK_TOKEN, retry_for_s=0.3, backoff_min_s=0.05) as api:
        with pytest.raises(DaemonUnreachableError):
            await api.info()
    async with KioskClient(url, KIOSK_TOKEN, retry_for_s=30, backoff_min_s=0.05, backoff_max_s=0.3) as api:
        api.on_connection = states.append
        pending = asyncio.create_task(api.info())
        await asyncio.sleep(0.5)
        assert not pending.done()
        assert api.connected is False
        async with run_daemon(config):
            info = await asyncio.wait_for(pending, 20)
            assert info.name
            assert api.connected is True
    assert states == [False, True]


async def test_alert_stream_reconnects_and_replays_active_alerts(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = kiosk_config(tmp_path, broker)
    async with KioskClient("http://unused", KIOSK_TOKEN, backoff_min_s=0.05, backoff_max_s=0.3) as api:
        async with run_daemon(config) as daemon:
            api.base_url = daemon.url
            stream = api.alert_stream(STAFF_TOKEN)
            assert await anext(stream) == StreamState(True)
            await publish_shelf_levels(broker.port, "A3-2", 1020.0, [5, 4, 0])
            first = await asyncio.wait_for(anext(stream), 10)
            assert isinstance(first, Alert)
            kinds = {first.kind}
            while "empty_shelf" not in kinds:
                item = await asyncio.wait_for(anext(stream), 10)
                assert isinstance(item, Alert)
                kinds.add(item.kind)
            nxt = asyncio.create_task(anext(stream))
        assert await asyncio.wait_for(nxt, 10) == StreamState(False)
        async with run_daemon(config):
            item = await asyncio.wait_for(anext(stream), 20)
            while item == StreamState(False):
                item = await asyncio.wait_for(anext(stream), 20)
            assert item == StreamState(True)
            replayed = await asyncio.wait_for(anext(stream), 10)
            assert isinstance(replayed, Alert)
            assert replayed.state != "resolved"
        await stream.aclose()  # type: ignore[attr-defined]


async def test_kiosk_shows_reconnecting_and_resumes_when_the_daemon_restarts(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = kiosk_config(tmp_path, broker)
    http = load_config(config).http
    app = real_app(f"http://{http.host}:{http.port}")
    async with app.run_test(size=SIZE) as pilot:
        async with run_daemon(config):
            for _ in range(100):
                if app.info is not None:
                    break
                await pilot.pause(0.05)
            assert app.info is not None
        # The daemon has stopped; a shopper scans meanwhile.
        await pilot.press(*SCANNED, "enter")
        for _ in range(200):
            if app.reconnecting:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        assert "Reconnecting to the store" in screen_text(app)
        async with run_daemon(config):
            await wait_for_screen(pilot, ConsentScreen, timeout=20)
            await pilot.pause(0.1)
            assert not app.reconnecting
            assert "Reconnecting" not in screen_text(app)


async def test_a_typed_number_shows_the_store_list_and_nothing_personal(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    """Typing a bare card number (which anyone can read off a card, or guess) opens an unverified
    session: no consent screen, the store's popular list, no privacy choices, no "forget me"."""
    async with run_daemon(kiosk_config(tmp_path, broker)) as daemon:
        await publish_purchases(broker.port, CARD, baskets=4)
        app = real_app(daemon.url)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(*CARD, "enter")
            await wait_for_screen(pilot, ShoppingListScreen)
            assert app.session is not None
            assert not app.session.verified
            assert app.session.known is None
            text = screen_text(app)
            assert "Scan your card to see your own list" in text
            assert "Forget me" not in text
            assert "Privacy" not in text
            assert not app.screen.query("#forget")
