"""The smart shopping list: urgent / upcoming / usual / added by you, each with its reason; edit, rate;
then what is in season in the store (not on the list; Enter adds one) and the coming public holidays.

The shopper's edits (additions, removals, votes) belong to the screen for the whole session: a new
list from the daemon (after a privacy change) is merged under them by `show_listing`, not over them.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from kiosk.schemas import ListEntry, Product, ProductSuggestion, SeasonalEntry, ShoppingList, Vote
from kiosk.screens.list_dialogs import AddItem, ItemActions, ProductLookup, ProductSearch, product_line
from kiosk.screens.preferences import PreferencesDialog
from kiosk.season_words import holiday_line, seasonal_reason
from kiosk.strings import category_name, name_in, t
from kiosk.widgets import ConnectionBanner, KioskScreen, days_left_text

__all__ = ["AddItem", "ItemActions", "ShoppingListScreen", "entry_prompt"]

GROUPS = ("urgent", "upcoming", "usual", "added")
VOTE_MARKS = {"up": ("▲", "list.voted_up"), "down": ("▼", "list.voted_down")}


def entry_prompt(entry: ListEntry, vote: Vote | None = None, product: Content | None = None) -> Content:
    when = days_left_text(entry.days_left)
    text = Content.from_markup("[b]$name[/b]", name=category_name(entry.category))
    if when:
        text += Content(f"  ({when})")
    if vote is not None:
        glyph, words = VOTE_MARKS[vote]
        text += Content.from_markup("  [b]$mark[/b]", mark=f"{glyph} {t(words)}")
    if entry.reason:
        text += Content(f"\n  {name_in(entry.reason, entry.category)}")
    if product is not None:
        text += Content("\n  ") + product
    return text


def seasonal_prompt(entry: SeasonalEntry, listing: ShoppingList, product: Content | None = None) -> Content:
    text = Content.from_markup("[b]$name[/b]", name=category_name(entry.category))
    text += Content(f"\n  {seasonal_reason(entry, listing.holidays)}")
    return text if product is None else text + Content("\n  ") + product


class ShoppingListScreen(KioskScreen):
    BINDINGS = [*KioskScreen.BINDINGS, Binding("escape", "finish", "Finish", show=False)]

    class Feedback(Message):
        def __init__(self, category: str, vote: Vote) -> None:
            super().__init__()
            self.category = category
            self.vote = vote

    class RouteWanted(Message):
        def __init__(self, items: list[str]) -> None:
            super().__init__()
            self.items = items

    class OffersWanted(Message):
        pass

    class PrivacyWanted(Message):
        pass

    class ForgetWanted(Message):
        pass

    class Finished(Message):
        pass

    def __init__(
        self,
        listing: ShoppingList,
        greeting_name: str | None,
        categories: list[str],
        *,
        verified: bool = True,
        personalisation: bool = False,
        products: ProductLookup | None = None,
        currency: str = "EUR",
        search: ProductSearch | None = None,
    ) -> None:
        super().__init__()
        self._search = search  # the catalog, for "Add item"
        self._products = products  # an item's products and prices, asked for when its dialog opens
        self._currency = currency
        self.preferences: frozenset[str] = frozenset()  # stated for this visit (organic, ...), never stored
        self._listing = listing
        self._verified = verified  # False: a typed number; no privacy choices, no "forget me", no votes
        self._personalisation = personalisation  # the shopper said yes to a personal list
        self._greeting_name = greeting_name
        self._categories = categories
        # Each row's leading product with its price (the household's usual first), once the daemon answers.
        self.leading: dict[str, Content] = {}
        self.products_shown = False  # the answer came (or there is nothing to ask)
        self.added: list[str] = []  # the shopper's own additions, in the order added
        self.removed: set[str] = set()  # suggestions the shopper took off the list
        self.votes: dict[str, Vote] = {}
        self.groups: dict[str, list[ListEntry]] = self._merge()

    def _merge(self) -> dict[str, list[ListEntry]]:
        """The daemon's list without what the shopper removed, plus what they added (kept apart)."""
        listing, own = self._listing, set(self.added)
        groups = {
            key: [e for e in entries if e.category not in self.removed and e.category not in own]
            for key, entries in (("urgent", listing.urgent), ("upcoming", listing.upcoming),
                                 ("usual", listing.usual))
        }  # fmt: skip
        groups["added"] = [ListEntry(category) for category in self.added]
        return groups

    @property
    def items(self) -> list[str]:
        return [e.category for key in GROUPS for e in self.groups[key]]

    def note(self) -> str:
        hello = t("list.hello_name", name=self._greeting_name) if self._greeting_name else t("list.hello")
        if not self._verified:
            note = t("list.popular_unverified")
        elif self._listing.personalised:
            note = t("list.personal")
        elif self._personalisation:  # consent given, nothing to predict from yet
            note = t("list.popular_preparing")
        else:
            note = t("list.popular_off")
        return f"{hello}. {note}"

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        yield Static(self.note(), id="list-title", classes="title")
        yield Static(t("list.hint"), id="list-hint", classes="hint")
        yield OptionList(*self._rows(), id="list")
        with Horizontal(classes="actions"):
            yield Button(t("list.add"), id="add")
            yield Button(t("list.route"), id="route", variant="primary")
            yield Button(t("list.offers"), id="offers")
            if self._verified:
                yield Button(t("list.privacy"), id="privacy")
                yield Button(t("list.forget"), id="forget", variant="error")
            yield Button(t("list.finish"), id="finish")

    def on_mount(self) -> None:
        view = self.query_one("#list", OptionList)
        view.highlighted = self._first_entry(view)
        view.focus()
        self._show_products()

    @work(exclusive=True, group="products", exit_on_error=False)
    async def _show_products(self) -> None:
        """Ask for every row's products in one request after the list is on screen (the list does not
        wait for them), then show each row's leading product and its price."""
        wanted = [c for c in [*self.items, *(e.category for e in self.seasonal)] if c not in self.leading]
        if self._products is None or not wanted:
            self.products_shown = True
            return
        found = await self._products(wanted, self.preferences)
        for products in found.categories if found is not None else []:
            if products.suggestions:
                self.leading[products.category] = product_line(products.suggestions[0], self._currency)
        self.products_shown = True
        if self.is_attached:  # the session may have ended while the daemon answered
            self._refill()

    def show_listing(self, listing: ShoppingList, *, personalisation: bool) -> None:
        """A new list from the daemon (the shopper changed their privacy choices); edits stay."""
        self._listing = listing
        self._personalisation = personalisation
        self.groups = self._merge()
        self.query_one("#list-title", Static).update(self.note())
        self._refill()
        self._show_products()

    @property
    def seasonal(self) -> list[SeasonalEntry]:
        """In season and not on the list (as the shopper has edited it)."""
        listed = set(self.items)
        return [e for e in self._listing.seasonal if e.category not in listed]

    def _rows(self) -> list[Option]:
        # One OptionList rather than a widget per row: a list screen mounts in a fraction of the time.
        rows: list[Option] = []
        self.row_categories: list[str | None] = []
        self.seasonal_rows: set[int] = set()
        for key in GROUPS:
            entries = self.groups[key]
            if not entries:
                continue
            rows.append(Option(Content.from_markup("[b]$title[/b]", title=t(f"list.{key}")), disabled=True))
            self.row_categories.append(None)
            for entry in entries:
                product = self.leading.get(entry.category)
                rows.append(Option(entry_prompt(entry, self.votes.get(entry.category), product)))
                self.row_categories.append(entry.category)
        if not rows:
            rows.append(Option(t("list.empty"), disabled=True))
            self.row_categories.append(None)
        seasonal = self.seasonal
        if seasonal or self._listing.holidays:
            rows.append(Option(Content.from_markup("[b]$title[/b]", title=t("list.seasonal")), disabled=True))
            self.row_categories.append(None)
            for holiday in self._listing.holidays[:2]:
                rows.append(Option(Content(f"  {holiday_line(holiday)}"), disabled=True))
                self.row_categories.append(None)
            for in_season in seasonal:
                self.seasonal_rows.add(len(rows))
                rows.append(
                    Option(seasonal_prompt(in_season, self._listing, self.leading.get(in_season.category)))
                )
                self.row_categories.append(in_season.category)
        return rows

    @staticmethod
    def _first_entry(view: OptionList) -> int | None:
        return next((i for i, option in enumerate(view.options) if not option.disabled), None)

    def _refill(self) -> None:
        """Redraw the list after an edit, keeping the highlight near where it was."""
        view = self.query_one("#list", OptionList)
        index = view.highlighted
        view.clear_options()
        view.add_options(self._rows())
        if index is not None:
            view.highlighted = min(index, view.option_count - 1)
        if view.highlighted is None or view.options[view.highlighted].disabled:
            before = [i for i in range(view.highlighted or 0) if not view.options[i].disabled]
            view.highlighted = before[-1] if before else self._first_entry(view)

    @on(OptionList.OptionSelected, "#list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        category = self.row_categories[event.option_index]
        if category is not None:
            self._open_item(category, seasonal=event.option_index in self.seasonal_rows)

    def _open_item(self, category: str, *, seasonal: bool = False) -> None:
        dialog = ItemActions(
            category,
            votes=self._verified and not seasonal,
            addable=seasonal,
            products=self._products,
            currency=self._currency,
            preferences=self.preferences,
        )
        self.app.push_screen(dialog, lambda choice: self._act(category, choice))

    def _preferences_chosen(self, category: str, chosen: frozenset[str] | None) -> None:
        if chosen is not None and chosen != self.preferences:
            self.preferences = chosen
            self.leading.clear()  # the rows' products follow the stated preferences too
            self._show_products()
        self._open_item(category)  # back to the item, its products now as the shopper asked

    def _act(self, category: str, choice: str | None) -> None:
        if choice == "prefer":
            self.app.push_screen(
                PreferencesDialog(self.preferences), lambda chosen: self._preferences_chosen(category, chosen)
            )
        elif choice in ("up", "down"):
            vote: Vote = "up" if choice == "up" else "down"
            self.votes[category] = vote
            self.post_message(self.Feedback(category, vote))
            self.notify(t("list.thanks"), timeout=3)
            self._refill()
        elif choice == "add":
            self._add(category)
        elif choice == "remove":
            if category in self.added:
                self.added.remove(category)
            else:
                self.removed.add(category)
            self.groups = self._merge()
            self._refill()

    def _add(self, choice: str | Product | None) -> None:
        if isinstance(choice, Product):  # a product found in the catalog: its category, with it on the row
            category = choice.category
            if not category:
                return
            self.leading[category] = product_line(ProductSuggestion(choice, "chosen"), self._currency)
            if category in self.items:
                self._refill()
                self.notify(
                    t("list.product_noted", product=choice.name, item=category_name(category)), timeout=4
                )
                return
        elif not choice:
            return
        else:
            category = choice
        if category in self.items:
            self.notify(t("list.already", item=category_name(category)), timeout=4)
            return
        self.added.append(category)
        self.groups = self._merge()
        self._refill()
        self._show_products()
        self.notify(t("list.added_note", item=category_name(category)), timeout=3)

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        match event.button.id:
            case "add":
                self.app.push_screen(
                    AddItem(self._categories, self.items, self._search, self._currency), self._add
                )
            case "route":
                self.post_message(self.RouteWanted(self.items))
            case "offers":
                self.post_message(self.OffersWanted())
            case "privacy":
                self.post_message(self.PrivacyWanted())
            case "forget":
                self.post_message(self.ForgetWanted())
            case "finish":
                self.post_message(self.Finished())

    def action_finish(self) -> None:
        self.post_message(self.Finished())
