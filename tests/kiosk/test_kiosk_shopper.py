"""Issue #17: what a demanding shopper expects of the list, consent and add-item screens (fake API)."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Input, OptionList

from kiosk.schemas import Consent, ListEntry, Session, ShoppingList
from kiosk.screens.attract import AttractScreen
from kiosk.screens.consent import ConsentScreen
from kiosk.screens.list_dialogs import AddItem, ItemActions
from kiosk.screens.shopping_list import ShoppingListScreen
from kiosk.widgets import YesNoBox
from tests.kiosk.kiosk_testkit import CUSTOMER, FakeApi, fake_app, screen_text, wait_for_screen

SIZE = (80, 24)
NOT_TURNED_ON = "you have not turned on a personal list"


class NewCard(FakeApi):
    """A card with no purchases yet: the daemon's list is the store's popular one, consent or not."""

    async def shopping_list(self, session: Session) -> ShoppingList:
        self.calls.append(("shopping_list", session.customer))
        popular = [ListEntry("bread", "popular in this store this week"), ListEntry("milk", "popular")]
        return ShoppingList(CUSTOMER, personalised=False, urgent=[], upcoming=[], usual=popular)


async def until(pilot: Any, condition: Any, timeout: float = 5.0) -> None:
    """Wait for the app's workers to get somewhere (a loaded box runs them late)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met")


def words(app: Any) -> str:
    """The screen's text with line wrapping undone."""
    return " ".join(screen_text(app).split())


def notices(app: Any) -> list[str]:
    return [notification.message for notification in app._notifications]


def _list(app: Any) -> ShoppingListScreen:
    screen = app.screen
    assert isinstance(screen, ShoppingListScreen)
    return screen


async def test_escape_and_back_leave_the_consent_screen_without_saving() -> None:
    api = FakeApi()
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"12345", "enter")
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.press("enter")  # tick personalisation, then change one's mind
        await pilot.press("escape")  # first use: back to the welcome screen, session closed
        await wait_for_screen(pilot, AttractScreen)
        await until(pilot, lambda: ("close_session", CUSTOMER) in api.calls)
        assert app.session is None
        assert not any(name == "set_consent" for name, _ in api.calls)

        api.consent = Consent(True, False, 1)
        await pilot.press(*"12345", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        shown = app.screen
        await pilot.click("#privacy")
        await wait_for_screen(pilot, ConsentScreen)
        assert "Back" in screen_text(app)
        await pilot.click("#back")  # from the list: back to the same list
        await wait_for_screen(pilot, ShoppingListScreen)
        assert app.screen is shown
        await pilot.click("#privacy")
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.press("escape")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert app.screen is shown
        assert not any(name == "set_consent" for name, _ in api.calls)


async def test_a_new_card_that_consents_is_told_its_list_is_coming_not_that_it_is_off() -> None:
    api = NewCard()
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"12345", "enter")
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.press("enter")  # personalisation: yes
        await pilot.click("#save")
        await wait_for_screen(pilot, ShoppingListScreen)
        text = words(app)
        assert NOT_TURNED_ON not in text
        assert "Your personal list is not ready yet" in text
        await pilot.click("#privacy")  # now say no: then it is off, and the list says so
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.press("enter")  # untick personalisation
        await pilot.click("#save")
        await wait_for_screen(pilot, ShoppingListScreen)
        await until(pilot, lambda: NOT_TURNED_ON in words(app))


async def test_saving_consent_goes_straight_to_the_list_without_the_welcome_screen() -> None:
    api = FakeApi()
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        shown: list[type[Screen[Any]]] = []
        app.screen_change_signal.subscribe(app, lambda screen: shown.append(type(screen)))
        await pilot.press(*"12345", "enter")
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.click("#save")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.click("#privacy")
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.click("#save")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.pause(0.1)
        assert AttractScreen not in shown, shown
        assert [type(s) for s in app.screen_stack] == [AttractScreen, ShoppingListScreen]


async def test_own_additions_are_their_own_group_and_edits_survive_a_privacy_save() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        screen = _list(app)
        await pilot.press("enter")  # milk
        await wait_for_screen(pilot, ItemActions)
        await pilot.press("enter")  # thumbs up
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.press("down", "enter")  # bread
        await wait_for_screen(pilot, ItemActions)
        await pilot.press("down", "down", "enter")  # remove
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.click("#add")
        await wait_for_screen(pilot, AddItem)
        await pilot.press(*"rice", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert screen.groups["added"] == [ListEntry("rice")]
        assert all(
            "rice" not in [e.category for e in screen.groups[k]] for k in ("urgent", "upcoming", "usual")
        )
        text = screen_text(app)
        assert text.index("Usually in your basket") < text.index("Added by you") < text.index("Rice")

        await pilot.click("#privacy")
        await wait_for_screen(pilot, ConsentScreen)
        await pilot.click("#save")
        await wait_for_screen(pilot, ShoppingListScreen)
        await until(pilot, lambda: ("set_consent", (True, True)) in api.calls)
        await pilot.pause(0.1)
        assert app.screen is screen
        assert screen.items == ["milk", "ice cream", "rice"]
        text = screen_text(app)
        assert "Added by you" in text
        assert "▲ you found this useful" in text
        assert "Bread" not in text


async def test_add_item_filters_as_you_type_marks_what_is_listed_and_says_already_listed() -> None:
    api = FakeApi(consent=Consent(True, True, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        screen = _list(app)
        await pilot.click("#add")
        await wait_for_screen(pilot, AddItem)
        dialog = app.screen
        assert isinstance(dialog, AddItem)
        assert dialog.focused is dialog.query_one("#filter", Input)
        assert "Milk  (on your list)" in screen_text(app)
        assert "Eggs  (on" not in screen_text(app)
        await pilot.press(*"mi")
        assert dialog.shown == ["milk"]
        await pilot.press("backspace", "backspace", *"zzz")
        assert dialog.shown == []
        assert "Nothing matches" in screen_text(app)
        await pilot.press("backspace", "backspace", "backspace", "down")  # into the list, then type on
        assert dialog.focused is dialog.query_one("#categories", OptionList)
        await pilot.press(*"milk", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.pause(0.1)
        assert screen.items == ["milk", "bread", "ice cream"]
        assert "Milk is already on your list." in notices(app)


async def test_the_list_says_enter_opens_the_votes_and_consent_boxes_say_yes_or_no() -> None:
    api = FakeApi(consent=Consent(True, False, 1))
    app = fake_app(api)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        assert "Enter on an item: thumbs up or down, or remove it." in screen_text(app)
        await pilot.press("enter")
        await wait_for_screen(pilot, ItemActions)
        await pilot.press("down", "enter")  # thumbs down
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.pause(0.1)
        assert "Milk  (needed now)  ▼ you found this not useful" in screen_text(app)
        assert ("feedback", ("milk", "down")) in api.calls
        await pilot.click("#privacy")
        await wait_for_screen(pilot, ConsentScreen)
        text = screen_text(app)
        assert "[x] yes Personal shopping list and offers" in text
        assert "[ ] no  Store analytics" in text
        box = app.screen.query_one("#analytics", YesNoBox)
        box.toggle()
        await pilot.pause()
        assert "[x] yes Store analytics" in screen_text(app)
