"""Modal dialogs: "forget me" confirmation and the idle countdown."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from kiosk.strings import t
from kiosk.widgets import ARROW_FOCUS


class ForgetScreen(ModalScreen[bool]):
    """Confirm erasing the household; "No" has the focus."""

    BINDINGS = [*ARROW_FOCUS, Binding("escape", "dismiss(False)", "Back", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(t("forget.title"), classes="title")
            yield Static(t("forget.explanation"), classes="lead")
            with Horizontal(classes="actions"):
                yield Button(t("forget.yes"), id="yes", variant="error")
                yield Button(t("forget.no"), id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _answer(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class IdleWarningScreen(ModalScreen[None]):
    """ "Are you still there?": any key, click or scan extends (the app notices the input)."""

    seconds_left: reactive[int] = reactive(0)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="idle-warning"):
            yield Static(t("idle.title"), classes="title")
            yield Static("", id="countdown", classes="lead")
            yield Static(t("idle.hint"), classes="hint")

    def watch_seconds_left(self, seconds: int) -> None:
        self.query_one("#countdown", Static).update(t("idle.countdown", seconds=seconds))
