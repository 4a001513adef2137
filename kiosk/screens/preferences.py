"""What the shopper wants the suggested products to be (organic, vegetarian, ...): asked here, used for
this visit's product suggestions and budget only, never sent to be stored and never inferred."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from kiosk.screens.list_dialogs import DialogScroll
from kiosk.strings import t
from kiosk.widgets import ARROW_FOCUS, YesNoBox

# The labels the daemon's catalog knows (edge.catalog.schemas.Attribute), in the order shown.
PREFERENCES = ("organic", "vegetarian", "gluten-free", "lactose-free", "own-brand")


class PreferencesDialog(ModalScreen[frozenset[str] | None]):
    """Tick what the products should be; Save returns the set, Back (or Escape) None: unchanged."""

    BINDINGS = [*ARROW_FOCUS, Binding("escape", "dismiss(None)", "Back", show=False)]

    def __init__(self, current: frozenset[str]) -> None:
        super().__init__()
        self._current = current

    def compose(self) -> ComposeResult:
        with DialogScroll(classes="dialog item-actions"):
            yield Static(t("prefs.title"), classes="title")
            for name in PREFERENCES:
                yield YesNoBox(t(f"prefs.{name}"), name in self._current, id=f"prefer-{name}")
            yield Static(t("prefs.note"), classes="hint")
            with Horizontal(classes="actions"):
                yield Button(t("prefs.save"), id="save", variant="primary")
                yield Button(t("common.back"), id="back")

    def on_mount(self) -> None:
        self.query_one(f"#prefer-{PREFERENCES[0]}", YesNoBox).focus()

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.dismiss(frozenset(n for n in PREFERENCES if self.query_one(f"#prefer-{n}", YesNoBox).value))

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.dismiss(None)
