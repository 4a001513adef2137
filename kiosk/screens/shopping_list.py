"""The smart shopping list: urgent / upcoming / usual, each with its reason; edit it, rate it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, ListItem, ListView, OptionList, Static
from textual.widgets.option_list import Option

from kiosk.schemas import ListEntry, ShoppingList, Vote
from kiosk.widgets import ARROW_FOCUS, ConnectionBanner, KioskScreen, days_left_text

GROUPS = (("urgent", "Running out"), ("upcoming", "Coming up"), ("usual", "Usually in your basket"))


def entry_prompt(entry: ListEntry) -> Content:
    when = days_left_text(entry.days_left)
    text = Content.from_markup("[b]$category[/b]", category=entry.category)
    if when:
        text += Content(f"  ({when})")
    if entry.reason:
        text += Content(f"\n  {entry.reason}")
    return text


class ItemActions(ModalScreen[str]):
    """What to do with one list entry: rate it or remove it."""

    BINDINGS = [*ARROW_FOCUS, Binding("escape", "dismiss('back')", "Back", show=False)]

    def __init__(self, category: str, *, votes: bool = True) -> None:
        super().__init__()
        self._category = category
        self._votes = votes  # an unverified session cannot rate (a vote is about the household)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self._category}[/b]", classes="title")
            if self._votes:
                yield Button("Useful suggestion (thumbs up)", id="up")
                yield Button("Not useful (thumbs down)", id="down")
            yield Button("Remove from my list", id="remove")
            yield Button("Back", id="back")

    @on(Button.Pressed)
    def _chosen(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "back")


class AddItem(ModalScreen[str | None]):
    """Pick a category the store sells to add to the list."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back", show=False)]

    def __init__(self, categories: list[str]) -> None:
        super().__init__()
        self._categories = categories

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tall"):
            yield Static("Add to your list (Enter to add, Escape to go back)", classes="title")
            yield ListView(*(ListItem(Label(name), name=name) for name in self._categories), id="categories")

    @on(ListView.Selected, "#categories")
    def _picked(self, event: ListView.Selected) -> None:
        self.dismiss(event.item.name)


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
    ) -> None:
        super().__init__()
        self._listing = listing
        self._verified = verified  # False: a typed number; no privacy choices, no "forget me", no votes
        self._greeting_name = greeting_name
        self._categories = categories
        self.groups: dict[str, list[ListEntry]] = {
            "urgent": list(listing.urgent),
            "upcoming": list(listing.upcoming),
            "usual": list(listing.usual),
        }

    @property
    def items(self) -> list[str]:
        return [e.category for group in self.groups.values() for e in group]

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        hello = f"Hello {self._greeting_name}" if self._greeting_name else "Hello"
        if not self._verified:
            note = "Popular in this store this week. Scan your card to see your own list and privacy choices."
        elif self._listing.personalised:
            note = "Your list, from what you usually buy here."
        else:
            note = "Popular in this store this week (you have not turned on a personal list)."
        yield Static(f"{hello}. {note}", id="list-title", classes="title")
        yield OptionList(*self._rows(), id="list")
        with Horizontal(classes="actions"):
            yield Button("Add item", id="add")
            yield Button("Route", id="route", variant="primary")
            yield Button("Offers", id="offers")
            if self._verified:
                yield Button("Privacy", id="privacy")
                yield Button("Forget me", id="forget", variant="error")
            yield Button("Finish", id="finish")

    def on_mount(self) -> None:
        view = self.query_one("#list", OptionList)
        view.highlighted = self._first_entry(view)
        view.focus()

    def _rows(self) -> list[Option]:
        # One OptionList rather than a widget per row: a list screen mounts in a fraction of the time.
        rows: list[Option] = []
        self.row_categories: list[str | None] = []
        for key, title in GROUPS:
            entries = self.groups[key]
            if not entries:
                continue
            rows.append(Option(Content.from_markup(f"[b]{title}[/b]"), disabled=True))
            self.row_categories.append(None)
            for entry in entries:
                rows.append(Option(entry_prompt(entry)))
                self.row_categories.append(entry.category)
        if not rows:
            rows.append(Option("Your list is empty: choose Add item.", disabled=True))
            self.row_categories.append(None)
        return rows

    @staticmethod
    def _first_entry(view: OptionList) -> int | None:
        return next((i for i, row in enumerate(view.options) if not row.disabled), None)

    def _refill(self) -> None:
        """Redraw the list after an edit, keeping the highlight near where it was."""
        view = self.query_one("#list", OptionList)
        index = view.highlighted
        view.clear_options()
        view.add_options(self._rows())
        if index is not None:
            view.highlighted = min(index, view.option_count - 1)
        if view.highlighted is None or view.options[view.highlighted].disabled:
            view.highlighted = self._first_entry(view)

    @on(OptionList.OptionSelected, "#list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        category = self.row_categories[event.option_index]
        if category is not None:
            self.app.push_screen(
                ItemActions(category, votes=self._verified), lambda choice: self._act(category, choice)
            )

    def _act(self, category: str, choice: str | None) -> None:
        if choice in ("up", "down"):
            self.post_message(self.Feedback(category, "up" if choice == "up" else "down"))
            self.notify("Thank you, noted.", timeout=3)
        elif choice == "remove":
            for entries in self.groups.values():
                entries[:] = [e for e in entries if e.category != category]
            self._refill()

    def _add(self, category: str | None) -> None:
        if category and category not in self.items:
            self.groups["usual"].append(ListEntry(category, "added by you"))
            self._refill()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        match event.button.id:
            case "add":
                self.app.push_screen(AddItem(self._categories), self._add)
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
