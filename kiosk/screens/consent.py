"""Consent on first use: what is used, for what; opt in or out per purpose; Back leaves unsaved."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Static

from kiosk.schemas import Consent
from kiosk.strings import t
from kiosk.widgets import ConnectionBanner, KioskScreen, YesNoBox


class ConsentScreen(KioskScreen):
    BINDINGS = [*KioskScreen.BINDINGS, Binding("escape", "back", "Back", show=False)]

    class Decided(Message):
        def __init__(self, personalisation: bool, analytics: bool) -> None:
            super().__init__()
            self.personalisation = personalisation
            self.analytics = analytics

    class Back(Message):
        """Leave without saving: back to the list, or (on first use) to the welcome screen."""

    def __init__(self, current: Consent | None = None) -> None:
        super().__init__()
        self._current = current or Consent()

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        with VerticalScroll(id="consent"):
            yield Static(t("consent.title"), classes="title")
            yield Static(t("consent.explanation"), classes="lead")
            yield YesNoBox(
                t("consent.personalisation"), self._current.personalisation is True, id="personalisation"
            )
            yield Static(t("consent.personalisation_detail"), classes="purpose")
            yield YesNoBox(t("consent.analytics"), self._current.analytics is True, id="analytics")
            yield Static(t("consent.analytics_detail"), classes="purpose")
            yield Static(t("consent.later"), classes="hint")
            with Horizontal(classes="actions"):
                yield Button(t("consent.save"), id="save", variant="primary")
                yield Button(t("consent.decline"), id="decline")
                yield Button(t("common.back"), id="back")

    def on_mount(self) -> None:
        self.query_one("#personalisation", YesNoBox).focus()

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.post_message(
            self.Decided(
                self.query_one("#personalisation", YesNoBox).value,
                self.query_one("#analytics", YesNoBox).value,
            )
        )

    @on(Button.Pressed, "#decline")
    def _decline(self) -> None:
        self.post_message(self.Decided(personalisation=False, analytics=False))

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.post_message(self.Back())
