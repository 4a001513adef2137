"""Snapshots of every kiosk screen at 80x24 and at a kiosk's full-screen size (SVGs in __snapshots__).

Regenerate after a deliberate change with `pytest tests/kiosk/test_kiosk_snapshots.py --snapshot-update`
and look at the SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from kiosk.schemas import Consent
from kiosk.screens.consent import ConsentScreen
from kiosk.screens.dialogs import ForgetScreen, IdleWarningScreen
from kiosk.screens.list_dialogs import AddItem, ItemActions
from kiosk.screens.offers import OffersScreen
from kiosk.screens.preferences import PreferencesDialog
from kiosk.screens.route import RouteScreen
from kiosk.screens.shopping_list import ShoppingListScreen
from kiosk.screens.staff import StaffLoginScreen, StaffScreen
from tests.kiosk.kiosk_testkit import (
    ALERT,
    STAFF,
    FakeApi,
    FakeClock,
    fake_app,
    has_products,
    wait_for_screen,
    wait_until,
)

SIZES = {"80x24": (80, 24), "kiosk": (120, 40)}

Step = Callable[[Pilot[Any], FakeApi, FakeClock], Awaitable[None]]


async def attract(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await pilot.pause(0.1)


async def consent(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await pilot.press(*"12345", "enter")
    await wait_for_screen(pilot, ConsentScreen)


async def shopping_list(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    api.consent = Consent(True, True, 1)
    await pilot.press(*"12345", "enter")
    await wait_for_screen(pilot, ShoppingListScreen)
    screen = pilot.app.screen
    assert isinstance(screen, ShoppingListScreen)
    # The rows' products come after the list: the snapshot has them.
    await wait_until(pilot, lambda: screen.products_shown, "the rows' products")


async def add_item(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    await pilot.click("#add")
    await wait_for_screen(pilot, AddItem)
    await pilot.press("r")  # filtered: Rice, then Bread (on the list)
    pilot.app.screen.query_one("#filter", Input).cursor_blink = False  # a blinking cursor is a coin toss
    await pilot.pause(0.5)  # let the modal's fade-in finish


async def add_product(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    await pilot.click("#add")
    await wait_for_screen(pilot, AddItem)
    dialog = pilot.app.screen
    assert isinstance(dialog, AddItem)
    await pilot.press(*"rice")  # the Rice category, then the store's products matching "rice"
    dialog.query_one("#filter", Input).cursor_blink = False
    await wait_until(pilot, lambda: has_products(dialog), "the catalog's products")
    await pilot.pause(0.5)


async def item_products(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    await pilot.press("enter")  # the first entry: milk, with its products and prices
    await wait_for_screen(pilot, ItemActions)
    await pilot.pause(0.5)  # the products' answer and the modal's fade-in


async def seasonal_item(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    screen = pilot.app.screen
    assert isinstance(screen, ShoppingListScreen)
    view = screen.query_one("#list", OptionList)
    view.highlighted = min(screen.seasonal_rows)  # in season: chocolate, before Christmas
    await pilot.press("enter")
    await wait_for_screen(pilot, ItemActions)
    await pilot.pause(0.5)


async def preferences(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await item_products(pilot, api, clock)
    await pilot.click("#prefer")
    await wait_for_screen(pilot, PreferencesDialog)
    await pilot.press("enter")  # tick "organic"
    await pilot.pause(0.5)


async def route(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    await pilot.click("#route")
    await wait_for_screen(pilot, RouteScreen)
    await pilot.pause(0.1)


async def offers(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    await pilot.click("#offers")
    await wait_for_screen(pilot, OffersScreen)


async def forget(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    await pilot.click("#forget")
    await wait_for_screen(pilot, ForgetScreen)
    await pilot.pause(0.5)  # let the modal's fade-in finish: a mid-fade frame differs run to run


async def idle_warning(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await shopping_list(pilot, api, clock)
    clock.advance(65)
    await wait_for_screen(pilot, IdleWarningScreen)
    await pilot.pause(0.1)


async def staff_login(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await pilot.click("#staff")
    await wait_for_screen(pilot, StaffLoginScreen)


async def staff(pilot: Pilot[Any], api: FakeApi, clock: FakeClock) -> None:
    await staff_login(pilot, api, clock)
    await pilot.press(*STAFF, "enter")
    await wait_for_screen(pilot, StaffScreen)
    await pilot.pause(0.1)
    assert api.alerts is not None
    await api.alerts.put(ALERT)
    await pilot.pause(0.2)


SCREENS: dict[str, Step] = {
    "attract": attract,
    "consent": consent,
    "list": shopping_list,
    "add_item": add_item,
    "add_product": add_product,
    "item_products": item_products,
    "seasonal_item": seasonal_item,
    "preferences": preferences,
    "route": route,
    "offers": offers,
    "forget": forget,
    "idle_warning": idle_warning,
    "staff_login": staff_login,
    "staff": staff,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(screen: str, size: str, snap_compare: Any) -> None:
    api, clock = FakeApi(), FakeClock()
    app = fake_app(api, clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await SCREENS[screen](pilot, api, clock)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
