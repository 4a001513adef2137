"""Offers that fit the household (or all of the store's offers without personalisation)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Button, Static

from kiosk.schemas import Offers
from kiosk.widgets import ConnectionBanner, KioskScreen


class OffersScreen(KioskScreen):
    BINDINGS = [*KioskScreen.BINDINGS, Binding("escape", "back", "Back", show=False)]

    def __init__(self, offers: Offers) -> None:
        super().__init__()
        self._offers = offers

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        title = "Offers for you" if self._offers.personalised else "Offers in store today"
        yield Static(title, classes="title")
        with VerticalScroll(id="offer-list"):
            if not self._offers.offers:
                yield Static("No offers running right now.", classes="lead")
            for offer in self._offers.offers:
                text = f"[b]{offer.title}[/b]"
                if offer.discount_pct:
                    text += f"  -{offer.discount_pct:g}%"
                if offer.detail:
                    text += f"\n{offer.detail}"
                if offer.reason:
                    text += f"\n[i]{offer.reason}[/i]"
                yield Static(text, classes="offer", markup=True)
        yield Button("Back to my list", id="back", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#back", Button).focus()

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss()
