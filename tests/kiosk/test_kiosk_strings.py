"""Shopper texts: one catalogue per language, category names, prices, shelf places (issue #17)."""

from __future__ import annotations

import string
from collections.abc import Iterator

import msgspec
import pytest

from kiosk import strings
from kiosk.schemas import Consent, KioskInfo, ListEntry, Offer, RouteStop
from kiosk.screens.attract import AttractScreen
from kiosk.screens.offers import OffersScreen, offer_text
from kiosk.screens.route import stop_place
from kiosk.screens.shopping_list import ShoppingListScreen, entry_prompt
from routing import load_demo_layout
from tests.kiosk.kiosk_testkit import FakeApi, fake_app, screen_text, wait_for_screen


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    strings.use("en")
    yield
    strings.use("en")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", [lang for lang in strings.languages() if lang != "en"])
def test_every_english_key_is_translated_with_the_same_placeholders(language: str) -> None:
    english, _ = strings._read("en")
    other, categories = strings._read(language)
    assert sorted(set(english) - set(other)) == []
    assert sorted(set(other) - set(english)) == []  # a stray key is a typo of a real one
    for key, text in english.items():
        assert _placeholders(other[key]) == _placeholders(text), key
    assert set(categories) == set(strings._read("en")[1])


def test_languages_are_the_files_there_are() -> None:
    assert {"en", "de"} <= set(strings.languages())
    with pytest.raises(ValueError, match="no kiosk language"):
        strings.load("xx")


def test_category_codes_become_words_with_a_fallback_for_unknown_ones() -> None:
    assert strings.category_name("soft-drinks") == "Soft drinks"
    assert strings.category_name("pet-food") == "Pet food"
    assert strings.category_name("ice cream") == "Ice cream"  # not a code in the table: made readable
    assert strings.category_name("frozen-peas") == "Frozen peas"
    assert strings.category_name("") == ""
    strings.use("de")
    assert strings.category_name("pet-food") == "Tiernahrung"
    assert strings.category_name("frozen-peas") == "Frozen peas"


def test_every_category_the_demo_store_sells_has_a_name() -> None:
    catalogue = strings.load("en")
    assert set(load_demo_layout().categories) <= set(catalogue.categories)


def test_category_codes_in_the_daemons_sentences_become_words() -> None:
    entry = ListEntry("soft-drinks", "you buy soft-drinks about every 3 days; last time was today")
    assert entry_prompt(entry).plain.splitlines() == [
        "Soft drinks",
        "  you buy soft drinks about every 3 days; last time was today",
    ]
    assert strings.name_in("pet-food is on your list", "pet-food") == "pet food is on your list"
    assert strings.name_in("you often buy milkshake", "milk") == "you often buy milkshake"
    pets = Offer("p-pets", "pet-food", "Pet food: 3 for 2", "", 33, None, "pet-food is on your list")
    assert offer_text(pets).plain.endswith("\npet food is on your list")


def test_prices_carry_the_store_currency_in_the_languages_shape() -> None:
    assert strings.money(1.5) == "€1.50"
    assert strings.money(2, "GBP") == "£2.00"
    assert strings.money(2, "CHF") == "CHF2.00"
    assert strings.with_currency("Milk: 2 cartons for 1.80") == "Milk: 2 cartons for €1.80"
    assert (
        strings.with_currency("Yogurt: 4-pack 1.00, 1.50 kg, 20% off")
        == "Yogurt: 4-pack €1.00, 1.50 kg, 20% off"
    )
    assert strings.with_currency("already €1.50") == "already €1.50"
    strings.use("de")
    assert strings.with_currency("2 for 1.50") == "2 for 1,50 €"


def test_an_offer_says_its_discount_once_and_its_price_in_money() -> None:
    bread = Offer("p-bread", "bread", "Bread: 20% off after 6 pm", "Today's loaves", 20)
    text = offer_text(bread).plain
    assert text.count("20%") == 1
    assert "-20%" not in text
    milk = Offer("p-milk", "milk", "Milk: 2 cartons for 1.80", "", 25)
    assert offer_text(milk).plain.startswith("Milk: 2 cartons for €1.80  25% off")
    assert offer_text(milk, "GBP").plain.startswith("Milk: 2 cartons for £1.80")


def test_a_stop_is_described_by_its_aisle_and_side_not_its_shelf_code() -> None:
    layout = load_demo_layout()
    stop = RouteStop("A1-s2", "A1-2", ["vegetables"], "ambient", "right")
    assert stop_place(layout, stop) == "aisle 1, right side"
    assert stop_place(None, stop) == "shelf A1-2, right side"
    assert stop_place(layout, RouteStop("A1-s2", "A1-2", ["vegetables"], "ambient")) == "aisle 1"


async def test_the_language_setting_puts_the_whole_shopper_flow_in_german() -> None:
    app = fake_app(FakeApi(consent=Consent(True, True, 1)), language="de")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_screen(pilot, AttractScreen)
        await pilot.pause(0.1)
        assert "KARTE SCANNEN" in screen_text(app)
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        text = screen_text(app)
        assert "Geht zur Neige" in text
        assert "Milch  (jetzt nötig)" in text
        assert "Vergiss mich" in text


class PoundStore(FakeApi):
    async def info(self) -> KioskInfo:
        return msgspec.structs.replace(await super().info(), currency="GBP")


@pytest.mark.parametrize(
    ("api", "setting", "price"),
    [(FakeApi(), None, "€1.50"), (PoundStore(), None, "£1.50"), (PoundStore(), "USD", "$1.50")],
)
async def test_offers_show_prices_in_the_kiosk_setting_else_the_daemons_currency_else_euro(
    api: FakeApi, setting: str | None, price: str
) -> None:
    api.consent = Consent(True, True, 1)
    app = fake_app(api, currency=setting)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        await pilot.press(*"777", "enter")
        await wait_for_screen(pilot, ShoppingListScreen)
        await pilot.click("#offers")
        await wait_for_screen(pilot, OffersScreen)
        assert f"Milk 2 for {price}  25% off" in screen_text(app)


def test_seasons_and_holidays_are_worded_in_the_kiosks_language() -> None:
    from kiosk.schemas import Holiday, SeasonalEntry
    from kiosk.season_words import holiday_line, seasonal_reason

    christmas = Holiday("2026-12-25", "Christmas Day", "Erster Weihnachtstag", 1)
    chocolate = SeasonalEntry("chocolate", "holiday", 2.31, holiday="Christmas Day")
    assert holiday_line(christmas) == "Public holiday tomorrow: Christmas Day"
    assert seasonal_reason(chocolate, [christmas]).startswith("before Christmas Day last time, in 2.3 times")
    strings.use("de")
    assert holiday_line(christmas) == "Morgen ist Feiertag: Erster Weihnachtstag"
    assert seasonal_reason(chocolate, [christmas]) == (
        "vor dem Feiertag „Erster Weihnachtstag“ zuletzt in 2,3-mal so vielen Einkäufen hier wie sonst"
    )
    assert seasonal_reason(SeasonalEntry("soup", "trend", 1.6), []) == (
        "zurzeit in 1,6-mal so vielen Einkäufen hier wie sonst"
    )


def test_a_product_on_offer_says_its_offer_with_prices_in_money() -> None:
    from kiosk.schemas import Product, ProductSuggestion
    from kiosk.screens.list_dialogs import product_line

    cheddar = ProductSuggestion(
        Product("1033", "Cheddar 400g", 3.9, "Own brand", "kg", 9.75), "on-offer", "Cheddar 400g: 3.20"
    )
    assert (
        product_line(cheddar, "EUR").plain == "Cheddar 400g  €3.90 · €9.75/kg · on offer: Cheddar 400g: €3.20"
    )
    strings.use("de")
    assert product_line(cheddar, "EUR").plain == (
        "Cheddar 400g  3,90 € · 9,75 €/kg · im Angebot: Cheddar 400g: 3,20 €"
    )
