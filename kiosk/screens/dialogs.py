"""Modal dialogs: "forget me" confirmation and the idle countdown."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from kiosk.widgets import ARROW_FOCUS


class ForgetScreen(ModalScreen[bool]):
    """Confirm erasing the household; "No" has the focus."""

    BINDINGS = [*ARROW_FOCUS, Binding("escape", "dismiss(False)", "Back", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Forget me?", classes="title")
            yield Static(
                "This erases what this store holds about your card: your choices, your list, "
                "predictions and feedback. Your past purchases stay only as anonymous sales. "
                "It cannot be undone.",
                classes="lead",
            )
            with Horizontal(classes="actions"):
                yield Button("Yes, forget me", id="yes", variant="error")
                yield Button("No", id="no", variant="primary")

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
            yield Static("Are you still there?", classes="title")
            yield Static("", id="countdown", classes="lead")
            yield Static("Press any key or touch the screen to continue.", classes="hint")

    def watch_seconds_left(self, seconds: int) -> None:
        self.query_one("#countdown", Static).update(
            f"To protect your privacy this screen clears in {seconds} seconds."
        )
