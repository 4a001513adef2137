"""Pilot tests of each flow against a fake API (the real-daemon versions are in test_kiosk_daemon.py)."""

from __future__ import annotations

from pathlib import Path

import msgspec
from textual.command import CommandPalette
from textual.widgets import Button, DataTable, OptionList, Static, TabbedContent

from kiosk.schemas import AbTest, Consent, Product, RouteView, StaffOverview
from kiosk.screens.attract import AttractScreen
from kiosk.screens.consent import ConsentScreen
from kiosk.screens.dialogs import ForgetScreen, IdleWarningScreen
from kiosk.screens.list_dialogs import AddItem, ItemActions
from kiosk.screens.preferences import PreferencesDialog
from kiosk.screens.route import RouteScreen
from kiosk.screens.shopping_list import ShoppingListScreen
from kiosk.screens.staff import StaffLoginScreen, StaffScreen
from kiosk.widgets import ConnectionBanner
from tests.kiosk.kiosk_testkit import (
    ALERT,
    CUSTOMER,
    STAFF,
    FakeApi,
    FakeClock,
    assert_no_personal_data,
    fake_app,
    has_products,
    screen_text,
    wait_for_screen,
    wait_until,
)

SIZE = (80, 24)


async def test_scan_consent_list_route_with_arrows_and_enter_only() -> None:
    api = FakeApi()
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"12345", "enter")
        await wait_for_screen(pilot, ConsentScreen)
        # Opt in to personalisation only: Enter toggles the focused checkbox, arrows move.
        await pilot.press("enter", "down", "down", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert api.calls[:3] == [
            ("open_session", "12345"),
            ("set_consent", (True, False)),
            ("shopping_list", CUSTOMER),
        ]
        text = screen_text(app)
        assert "Running out" in text
        assert "Milk  (needed now)" in text
        assert "you buy milk about every 3 days; last time was 4 days ago" in text
        assert "Bread  (about 2 days left)" in text
        await pilot.click("#route")
        await wait_for_screen(pilot, RouteScreen)
        assert api.calls[-1] == ("route", ["milk", "bread", "ice cream"])
        text = screen_text(app)
        assert "3 stops" in text
        assert "Bread on your left" in text
        assert "━" in text  # the route is drawn on the map
        await pilot.press("right", "right", "right", "enter")  # the stops, Got it, Step-free, Back
        await wait_for_screen(pilot, ShoppingListScreen)


async def test_returning_customer_goes_straight_to_the_list() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert [name for name, _ in api.calls][:2] == ["open_session", "shopping_list"]
        # Then, with the list on screen, every row's products in one request, shown on the rows.
        screen = app.screen
        assert isinstance(screen, ShoppingListScreen)
        await wait_until(pilot, lambda: screen.products_shown, "the rows' products")
        assert api.calls[2:] == [("products", (["milk", "bread", "ice cream", "chocolate", "soup"], []))]
        assert "Whole milk 1l  €1.09 · €1.09/l · your usual" in screen_text(app)


async def test_declining_consent_still_gets_a_list() -> None:
    api = FakeApi()
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"12345", "enter")
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.click("#decline")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert ("set_consent", (False, False)) in api.calls


async def test_feedback_remove_and_add_edit_the_list_and_the_route() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.press("enter")  # milk: the first entry
        await wait_for_screen(pilot, ItemActions)
        await pilot.press("enter")  # thumbs up
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.pause(0.1)
        assert ("feedback", ("milk", "up")) in api.calls
        await pilot.press("down", "enter")  # bread
        await wait_for_screen(pilot, ItemActions)
        await pilot.press("down", "down", "enter")  # remove
        await wait_for_screen(pilot, ShoppingListScreen)
        screen = app.screen
        assert isinstance(screen, ShoppingListScreen)
        assert screen.items == ["milk", "ice cream"]
        await pilot.click("#add")
        await wait_for_screen(pilot, AddItem)
        await pilot.press(*"eg", "enter")  # typing filters: Eggs is the one match
        await wait_for_screen(pilot, ShoppingListScreen)
        assert screen.items == ["milk", "ice cream", "eggs"]
        assert "Added by you" in screen_text(app)
        await pilot.click("#route")
        await wait_for_screen(pilot, RouteScreen)
        assert api.calls[-1] == ("route", ["milk", "ice cream", "eggs"])


async def test_idle_warning_counts_down_a_key_extends_then_it_wipes() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    clock = FakeClock()
    app = fake_app(api, clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        clock.advance(59)
        await pilot.pause(0.2)
        assert isinstance(app.screen, ShoppingListScreen), "warned before idle_s"
        clock.advance(2)
        await wait_for_screen(pilot, IdleWarningScreen)
        assert "clears in 29 seconds" in screen_text(app)
        clock.advance(10)
        await pilot.pause(0.2)
        assert "clears in 19 seconds" in screen_text(app)
        await pilot.press("x")  # any key extends
        await wait_for_screen(pilot, ShoppingListScreen)
        assert app.session is not None
        clock.advance(61)
        await wait_for_screen(pilot, IdleWarningScreen)
        clock.advance(30)
        await wait_for_screen(pilot, AttractScreen)
        await pilot.pause(0.1)
        assert_no_personal_data(app)
        assert "Session ended" in screen_text(app)
        assert ("close_session", CUSTOMER) in api.calls


async def test_mouse_movement_counts_as_input_but_time_alone_does_not() -> None:
    clock = FakeClock()
    app = fake_app(FakeApi(consent=Consent(True, True, 1)), clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        for _ in range(4):
            clock.advance(40)
            await pilot.hover("#list", offset=(2 + _, 2))
            await pilot.pause(0.1)
        assert isinstance(app.screen, ShoppingListScreen)
        clock.advance(100)  # the app keeps rendering and idling, but nobody touches it
        await wait_for_screen(pilot, AttractScreen)
        assert_no_personal_data(app)


async def test_typed_but_unsent_card_number_is_wiped_too() -> None:
    clock = FakeClock()
    app = fake_app(FakeApi(), clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"12345")
        assert app.attract.has_input
        clock.advance(61)
        await wait_for_screen(pilot, IdleWarningScreen)
        clock.advance(30)
        await wait_for_screen(pilot, AttractScreen)
        await pilot.pause(0.1)
        assert not app.attract.has_input


async def test_forget_me_asks_first_then_erases_and_wipes() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.click("#forget")
        await wait_for_screen(pilot, ForgetScreen)
        await pilot.press("enter")  # "No" has the focus
        await wait_for_screen(pilot, ShoppingListScreen)
        assert not any(name == "forget" for name, _ in api.calls)
        await pilot.click("#forget")
        await wait_for_screen(pilot, ForgetScreen)
        await pilot.press("left", "enter")  # "Yes, forget me"
        await wait_for_screen(pilot, AttractScreen)
        await pilot.pause(0.1)
        assert ("forget", CUSTOMER) in api.calls
        assert_no_personal_data(app)
        assert "has forgotten your card" in screen_text(app)


async def test_staff_login_live_alert_and_acknowledge() -> None:
    api = FakeApi()
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#staff")
        await wait_for_screen(pilot, StaffLoginScreen)
        await pilot.press(*"wrong", "enter")
        await pilot.pause(0.2)
        assert "not accepted" in screen_text(app)
        assert app.staff_token is None
        await pilot.press(*STAFF, "enter")
        await wait_for_screen(pilot, StaffScreen)
        assert api.alerts is not None
        await api.alerts.put(ALERT)
        await pilot.pause(0.2)
        assert "Shelf empty" in screen_text(app)
        assert "A3-2" in screen_text(app)
        table = app.screen.query_one("#alerts", DataTable)
        assert table.row_count == 1
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert ("acknowledge", 7) in api.calls
        assert "ACKED" in screen_text(app)
        await pilot.click("#exit")
        await wait_for_screen(pilot, AttractScreen)
        await pilot.pause(0.1)
        assert_no_personal_data(app)


class ApiWithATest(FakeApi):
    async def staff_overview(self, token: str) -> StaffOverview:
        overview = await super().staff_overview(token)
        tests = [
            AbTest("basket-v2", "next basket v2", "running", 0.25, "no harm at 10%; advancing to 25%"),
            AbTest("old", "an old test", "rolled_back", 0.0, "worse"),
        ]
        return msgspec.structs.replace(overview, tests=tests)


async def test_staff_see_the_running_ab_test() -> None:
    app = fake_app(ApiWithATest())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#staff")
        await wait_for_screen(pilot, StaffLoginScreen)
        await pilot.press(*STAFF, "enter")
        await wait_for_screen(pilot, StaffScreen)
        app.screen.query_one("#staff-tabs", TabbedContent).active = "tab-store"
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "A/B test next basket v2: running, challenger on 25% of lists" in text
        assert "an old test" not in text  # a finished test is not news on the shop floor


async def test_staff_flag_starts_at_the_staff_login_and_idle_wipes_staff_too() -> None:
    clock = FakeClock()
    app = fake_app(FakeApi(), clock, staff=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_screen(pilot, StaffLoginScreen)
        await pilot.press(*STAFF, "enter")
        await wait_for_screen(pilot, StaffScreen)
        clock.advance(61 + 30)
        await wait_for_screen(pilot, AttractScreen)
        await pilot.pause(0.1)
        assert_no_personal_data(app)


async def test_command_palette_is_off_on_public_kiosks() -> None:
    app = fake_app(FakeApi())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, CommandPalette)
        assert not app.use_command_palette


async def test_reconnecting_banner_follows_the_connection() -> None:
    api = FakeApi()
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        banner = app.screen.query_one(ConnectionBanner)
        assert not banner.display
        assert api.on_connection is not None
        api.on_connection(False)
        await pilot.pause()
        assert banner.display
        assert "Reconnecting to the store" in screen_text(app)
        api.on_connection(True)
        await pilot.pause()
        assert not banner.display


async def test_list_keeps_a_valid_highlight_after_removing_the_last_entry() -> None:
    app = fake_app(FakeApi(consent=Consent(True, True, 1)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        view = app.screen.query_one("#list", OptionList)
        await pilot.press("down", "down", "enter")  # ice cream, the last entry
        await wait_for_screen(pilot, ItemActions)
        await pilot.press("down", "down", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert view.highlighted is not None
        assert not view.options[view.highlighted].disabled
        screen = app.screen
        assert isinstance(screen, ShoppingListScreen)
        assert screen.row_categories[view.highlighted] == "bread"


async def test_a_route_on_a_new_store_layout_reloads_the_map() -> None:
    # The daemon swapped to central's new layout after this kiosk loaded its map: the first route on it
    # makes the kiosk fetch the daemon's layout again and draw the route on it.
    from routing import load_bundled_layout, plan_route

    convenience = load_bundled_layout("convenience_store")

    class MovedStore(FakeApi):
        moved = False

        async def layout_text(self) -> str:
            if not self.moved:
                return await super().layout_text()
            self.calls.append(("layout_text", None))
            return Path(convenience.source).read_text(encoding="utf-8")

        async def route(self, token: str, items: list[str], start: str | None = None) -> RouteView:
            self.calls.append(("route", list(items)))
            return msgspec.convert(plan_route(convenience, items).to_dict(), RouteView)

    api = MovedStore(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert app.layout is not None
        assert app.layout.store_id == "demo"
        api.moved = True
        await pilot.click("#route")
        await wait_for_screen(pilot, RouteScreen)
        assert ("layout_text", None) in api.calls
        assert app.layout.store_id == "convenience"
        assert "━" in screen_text(app)  # drawn on the new map, not degraded to words


async def test_stated_preferences_choose_the_products_for_this_visit_only() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    clock = FakeClock()
    app = fake_app(api, clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.press("enter")  # milk
        await wait_for_screen(pilot, ItemActions)
        await pilot.click("#prefer")
        await wait_for_screen(pilot, PreferencesDialog)
        await pilot.pause(0.1)
        await pilot.press("enter", "down", "enter")  # organic, vegetarian
        await pilot.press("down", "down", "down", "down")  # to "Use these", below the fold at 80x24
        assert app.focused is app.screen.query_one("#save", Button)
        await pilot.press("enter")
        await wait_for_screen(pilot, ItemActions)  # back at the item, its products asked for again

        def products_text() -> str:
            return str(app.screen.query_one("#products", Static).content)

        for _ in range(50):
            if products_text().startswith("In this store (organic, vegetarian):"):
                break
            await pilot.pause(0.05)
        assert products_text().startswith("In this store (organic, vegetarian):"), (
            products_text(),
            api.calls,
            app.screen_stack,
        )
        asked = [args for name, args in api.calls if name == "products"]
        rows = ["milk", "bread", "ice cream", "chocolate", "soup"]  # the list's rows, for their products
        assert sorted(asked) == sorted(
            [
                (rows, []),
                (["milk"], []),
                (rows, ["organic", "vegetarian"]),
                (["milk"], ["organic", "vegetarian"]),
            ]
        )
        await pilot.press("escape")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.click("#offers")  # the budget is asked with the same preferences
        await pilot.pause(0.3)
        assert ("products", (["milk", "bread", "ice cream"], ["organic", "vegetarian"])) in api.calls
        clock.advance(61 + 30)  # idle: the session and everything the shopper said are wiped
        await wait_for_screen(pilot, AttractScreen)
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.press("enter")
        await wait_for_screen(pilot, ItemActions)
        await pilot.pause(0.3)
        assert [args for name, args in api.calls if name == "products"][-1] == (["milk"], [])


async def test_a_staff_badge_scanned_beside_a_shopper_shows_their_worded_insights() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        app.scanned("LOY-000999")  # another card, not a badge: ignored, the shopper's list stays
        await pilot.pause(0.2)
        assert isinstance(app.screen, ShoppingListScreen)
        app.scanned(STAFF)
        await wait_for_screen(pilot, StaffScreen)
        app.screen.query_one("#staff-tabs", TabbedContent).active = "tab-customers"
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Segment: weekly big-basket shoppers." in text
        assert "Churn risk: active." in text
        assert "no purchase history is shown" in text
        assert ("insights", CUSTOMER) in api.calls
        rows = app.screen.query_one("#segments", DataTable)
        assert [rows.get_row_at(i)[:2] for i in range(rows.row_count)] == [
            ["weekly big-basket shoppers", "1240"],
            ["occasional top-up shoppers", "fewer than 10"],  # no count under 10 households
        ]
        await pilot.click("#exit")  # leaving staff mode ends the shopper's session too
        await wait_for_screen(pilot, AttractScreen)
        await pilot.pause(0.1)
        assert_no_personal_data(app)


async def test_staff_mode_without_a_shopper_says_so() -> None:
    api = FakeApi()
    app = fake_app(api)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.click("#staff")
        await wait_for_screen(pilot, StaffLoginScreen)
        await pilot.press(*STAFF, "enter")
        await wait_for_screen(pilot, StaffScreen)
        app.screen.query_one("#staff-tabs", TabbedContent).active = "tab-customers"
        await pilot.pause(0.3)
        assert "No shopper has a session open at this kiosk." in screen_text(app)
        assert not [c for c in api.calls if c[0] == "insights"]


async def test_a_seasonal_item_can_be_added_and_then_leaves_the_season_group() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        screen = app.screen
        assert isinstance(screen, ShoppingListScreen)
        text = screen_text(app)
        assert "In season in this store" in text
        assert "Public holiday in 9 days: Christmas Day" in text
        assert "before Christmas Day last time, in 2.3 times as many" in text
        assert [screen.row_categories[i] for i in sorted(screen.seasonal_rows)] == ["chocolate", "soup"]
        assert "chocolate" not in screen.items  # a suggestion, not on the route until added
        view = screen.query_one("#list", OptionList)
        view.highlighted = min(screen.seasonal_rows)
        await pilot.press("enter")
        await wait_for_screen(pilot, ItemActions)
        assert not app.screen.query("#up")  # nothing to rate: it is the store's, not the household's
        await pilot.click("#add")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert screen.added == ["chocolate"]
        assert "chocolate" in screen.items
        assert [screen.row_categories[i] for i in sorted(screen.seasonal_rows)] == ["soup"]


async def test_add_item_finds_the_stores_products_and_puts_the_chosen_one_on_the_row() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        screen = app.screen
        assert isinstance(screen, ShoppingListScreen)
        await pilot.click("#add")
        await wait_for_screen(pilot, AddItem)
        dialog = app.screen
        assert isinstance(dialog, AddItem)
        await pilot.press(*"ri")  # two letters: categories only, the catalog is not asked
        await pilot.pause(0.3)
        assert not any(name == "search_products" for name, _ in api.calls)
        await pilot.press("c", "e")
        await wait_until(pilot, lambda: has_products(dialog), "the catalog's products")
        assert ("search_products", "rice") in api.calls  # only what was typed last (no "ric")
        assert ("search_products", "ric") not in api.calls
        assert "Basmati rice 1kg  €2.49 · Rice" in screen_text(app)
        assert "Products in this store" in screen_text(app)
        basmati = next(
            i for i, row in enumerate(dialog.shown) if isinstance(row, Product) and row.sku == "2003"
        )
        dialog.query_one("#categories", OptionList).highlighted = basmati
        dialog.query_one("#categories", OptionList).focus()
        await pilot.press("enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert screen.added == ["rice"]
        await pilot.pause(0.1)
        assert "Basmati rice 1kg  €2.49 · €2.49/kg · your choice" in screen_text(app)
        # A product of an item already on the list is noted on its row, not added twice.
        await pilot.click("#add")
        await wait_for_screen(pilot, AddItem)
        dialog = app.screen
        assert isinstance(dialog, AddItem)
        await pilot.press(*"oat")
        await wait_until(pilot, lambda: has_products(dialog), "the catalog's products")
        await pilot.press("enter")  # the first row: the oat drink (no category is called "oat")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert screen.items.count("milk") == 1
        await pilot.pause(0.1)
        assert "Oat drink 1l  €1.49 · €1.49/l · your choice" in screen_text(app)
