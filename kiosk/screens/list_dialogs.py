"""The shopping list's two dialogs: what to do with one entry, and adding an item (filter as you type,
with the store's matching products)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from kiosk.schemas import CatalogPage, Product, ProductSuggestion, ProductSuggestions
from kiosk.strings import category_name, money, t, with_currency
from kiosk.widgets import ARROW_FOCUS

# (what the shopper typed) -> the store's products matching it, or None if not known
ProductSearch = Callable[[str], Awaitable[CatalogPage | None]]
SEARCH_FROM = 3  # letters typed before the catalog is searched
SEARCH_PAUSE_S = 0.15
# (categories, the shopper's stated preferences) -> their products, or None if not known
ProductLookup = Callable[[list[str], frozenset[str]], Awaitable[ProductSuggestions | None]]
WHY_KEYS = {"usual": "item.why_usual", "popular": "item.why_popular", "bought-before": "item.why_bought_before",
            "in-range": "item.why_in_range", "chosen": "item.why_chosen"}  # fmt: skip


def product_line(s: ProductSuggestion, currency: str) -> Content:
    """ "Whole milk 1l  €1.09 (€1.09/l) · your usual" in the kiosk's language."""
    p = s.product
    unit = t(f"item.unit_{p.unit}") if p.unit in ("kg", "l", "each") else None
    text = Content.from_markup("$name  [b]$price[/b]", name=p.name, price=money(p.price, currency))
    if p.unit_price is not None and unit is not None:
        text += Content(f" · {t('item.per_unit', price=money(p.unit_price, currency), unit=unit)}")
    if s.why == "cheaper-per-unit" and s.saving is not None and unit is not None:
        why = t("item.why_cheaper", percent=round(s.saving * 100), unit=unit)
    elif s.why == "on-offer" and s.promotion:
        why = t("item.why_on_offer", offer=with_currency(s.promotion, currency))
    else:
        why = t(WHY_KEYS.get(s.why, "item.why_in_range"))
    return text + Content(f" · {why}")


class DialogScroll(VerticalScroll, can_focus=False, inherit_bindings=False):
    """A dialog body that scrolls on a small screen to show the focused control; the arrow keys keep
    moving the focus (the kiosk has arrows and Enter only), they do not scroll."""


class ItemActions(ModalScreen[str]):
    """What to do with one list entry: see its products (with prices), rate it or remove it; or, for one
    in season that is not on the list, add it."""

    BINDINGS = [*ARROW_FOCUS, Binding("escape", "dismiss('back')", "Back", show=False)]

    def __init__(
        self,
        category: str,
        *,
        votes: bool = True,
        products: ProductLookup | None = None,
        currency: str = "EUR",
        preferences: frozenset[str] = frozenset(),
        addable: bool = False,
    ) -> None:
        super().__init__()
        self._addable = addable  # not on the list (in season): "Add to my list" instead of "Remove"
        self._category = category
        self._preferences = preferences  # the labels the shopper asked for (kiosk.screens.preferences)
        self._votes = votes  # an unverified session cannot rate (a vote is about the household)
        self._products = products
        self._currency = currency

    def compose(self) -> ComposeResult:
        with DialogScroll(classes="dialog item-actions"):  # scrolls at 80x24 with products shown
            yield Static(
                Content.from_markup("[b]$name[/b]", name=category_name(self._category)), classes="title"
            )
            if self._products is not None:
                yield Static(t("item.products_loading"), id="products", classes="hint")
            if self._votes:
                yield Button(t("item.up"), id="up")
                yield Button(t("item.down"), id="down")
            if self._addable:
                yield Button(t("item.add_to_list"), id="add", variant="primary")
            else:
                yield Button(t("item.remove"), id="remove")
            if self._products is not None:
                yield Button(t("item.prefer"), id="prefer")
            yield Button(t("common.back"), id="back")

    def on_mount(self) -> None:
        if self._products is not None:
            self._look_up(self._products)

    @work(exclusive=True, exit_on_error=False)
    async def _look_up(self, lookup: ProductLookup) -> None:
        found = await lookup([self._category], self._preferences)
        mine = [
            s
            for c in (found.categories if found else [])
            if c.category == self._category
            for s in c.suggestions
        ]
        lines = [product_line(s, self._currency) for s in mine]
        # A promotion for the whole category is on every product: say it once, above them.
        offers = {s.promotion for s in mine}
        offer = next(iter(offers)) if len(offers) == 1 else None
        if self._preferences:
            labels = ", ".join(t(f"prefs.{p}") for p in sorted(self._preferences))
            heading = t("item.products_for", labels=labels)
        elif offer:
            heading = t("item.products_offer", offer=with_currency(offer, self._currency))
        else:
            heading = t("item.products")
        text = Content(heading)
        for line in lines:
            text += Content("\n") + line
        self.query_one("#products", Static).update(text if lines else Content(t("item.products_none")))

    @on(Button.Pressed)
    def _chosen(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "back")


def matches(categories: list[str], typed: str) -> list[str]:
    """The categories whose name (in the kiosk's language) or code contains `typed`; starts first."""
    query = typed.strip().casefold()
    if not query:
        return list(categories)
    found = [c for c in categories if query in category_name(c).casefold() or query in c.casefold()]
    return sorted(found, key=lambda c: not category_name(c).casefold().startswith(query))


class AddItem(ModalScreen[str | Product | None]):
    """Pick what to add: type to filter the store's categories; from three letters on, the store's
    products matching every word follow them (with prices). Enter adds the highlighted category, or a
    product's category with that product on the list's row."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Back", show=False),
        Binding("down", "to_list", "List", show=False),
    ]

    def __init__(
        self,
        categories: list[str],
        on_list: list[str],
        search: ProductSearch | None = None,
        currency: str = "EUR",
    ) -> None:
        super().__init__()
        self._categories = sorted(categories, key=lambda c: category_name(c).casefold())
        self._on_list = set(on_list)
        self._search = search
        self._currency = currency
        self.shown: list[str | Product | None] = []  # per row: a category, a product, or a heading

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tall"):
            yield Static(t("add.title"), classes="title")
            yield Input(placeholder=t("add.filter_placeholder"), id="filter", max_length=40)
            yield Static("", id="no-match", classes="hint")
            yield OptionList(id="categories")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#filter", Input).focus()

    def _fill(self, typed: str, products: list[Product] | None = None) -> None:
        found: list[str | Product | None] = list(matches(self._categories, typed))
        view = self.query_one("#categories", OptionList)
        view.clear_options()
        for code in found:
            assert isinstance(code, str)
            prompt = Content(category_name(code))
            if code in self._on_list:
                prompt += Content(f"  {t('add.on_list')}")
            view.add_option(Option(prompt))
        if products:
            found.append(None)
            view.add_option(
                Option(Content.from_markup("[b]$title[/b]", title=t("add.products")), disabled=True)
            )
            for product in products:
                found.append(product)
                where = category_name(product.category)
                view.add_option(
                    Option(Content(f"{product.name}  {money(product.price, self._currency)} · {where}"))
                )
        self.shown = found
        view.highlighted = next((i for i, row in enumerate(found) if row is not None), None)
        nothing = self.query_one("#no-match", Static)
        nothing.update(t("add.nothing"))
        nothing.display = not found
        if products is None and self._search is not None and len(typed.strip()) >= SEARCH_FROM:
            self._find_products(typed)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _find_products(self, typed: str) -> None:
        await asyncio.sleep(SEARCH_PAUSE_S)  # typing on: only the last word typed is searched
        assert self._search is not None
        page = await self._search(typed.strip())
        if page is not None and page.products and self.query_one("#filter", Input).value == typed:
            self._fill(typed, page.products)

    @on(Input.Changed, "#filter")
    def _typed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#filter")
    def _enter_in_filter(self) -> None:
        view = self.query_one("#categories", OptionList)
        if view.highlighted is not None and self.shown and self.shown[view.highlighted] is not None:
            self.dismiss(self.shown[view.highlighted])

    @on(OptionList.OptionSelected, "#categories")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if self.shown[event.option_index] is not None:
            self.dismiss(self.shown[event.option_index])

    def action_to_list(self) -> None:
        self.query_one("#categories", OptionList).focus()

    def on_key(self, event: events.Key) -> None:
        # Typing while the list has the focus goes on filtering (a kiosk has no mouse to click back).
        typed = self.query_one("#filter", Input)
        if event.character and event.is_printable and self.focused is not typed:
            typed.focus()
            typed.insert_text_at_cursor(event.character)
            event.stop()
