"""Consent on first use: what is used, for what; opt in or out per purpose."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Static

from kiosk.schemas import Consent
from kiosk.widgets import ConnectionBanner, KioskScreen

EXPLANATION = (
    "This store keeps what you bought here under a code made from your card number - never your name "
    "or the number itself. You choose what it may be used for. Saying no still gets you a list of "
    "popular items and the route round the store."
)
PERSONALISATION = "Use my purchases to predict what I am running out of and which offers fit me."
ANALYTICS = "My purchases may be used, without my name, to improve the store's forecasts."


class ConsentScreen(KioskScreen):
    class Decided(Message):
        def __init__(self, personalisation: bool, analytics: bool) -> None:
            super().__init__()
            self.personalisation = personalisation
            self.analytics = analytics

    def __init__(self, current: Consent | None = None) -> None:
        super().__init__()
        self._current = current or Consent()

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        with VerticalScroll(id="consent"):
            yield Static("Your privacy, your choice", classes="title")
            yield Static(EXPLANATION, classes="lead")
            yield Checkbox(
                "Personal shopping list and offers",
                self._current.personalisation is True,
                id="personalisation",
            )
            yield Static(PERSONALISATION, classes="purpose")
            yield Checkbox("Store analytics", self._current.analytics is True, id="analytics")
            yield Static(ANALYTICS, classes="purpose")
            yield Static("You can change this, or ask us to forget you, at any time here.", classes="hint")
            with Horizontal(classes="actions"):
                yield Button("Save my choices", id="save", variant="primary")
                yield Button("No thanks", id="decline")

    def on_mount(self) -> None:
        self.query_one("#personalisation", Checkbox).focus()

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.post_message(
            self.Decided(
                self.query_one("#personalisation", Checkbox).value,
                self.query_one("#analytics", Checkbox).value,
            )
        )

    @on(Button.Pressed, "#decline")
    def _decline(self) -> None:
        self.post_message(self.Decided(personalisation=False, analytics=False))
