"""Offers that fit the household (or all of the store's offers without personalisation)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Button, Static

from kiosk.schemas import Budget, Offer, Offers
from kiosk.strings import DEFAULT_CURRENCY, money, name_in, t, with_currency
from kiosk.widgets import ConnectionBanner, KioskScreen


def offer_text(offer: Offer, currency: str = DEFAULT_CURRENCY) -> Content:
    """One offer as a shopper reads it: prices in the store's money, the discount said once."""
    title = with_currency(offer.title, currency)
    text = Content.from_markup("[b]$title[/b]", title=title)
    if offer.discount_pct and f"{offer.discount_pct:g}%" not in title.replace(" %", "%"):
        text += Content(f"  {t('offers.off', pct=f'{offer.discount_pct:g}')}")
    if offer.detail:
        text += Content(f"\n{with_currency(offer.detail, currency)}")
    if offer.reason:
        text += Content.from_markup("\n[i]$reason[/i]", reason=name_in(offer.reason, offer.category))
    return text


def budget_text(budget: Budget, currency: str = DEFAULT_CURRENCY) -> str:
    """The list in money: its estimated total, what is not priced, and what cheaper equivalents save."""
    total = money(budget.estimated_total, currency)
    words = [
        t("offers.budget_one", total=total)
        if budget.priced == 1
        else t("offers.budget_many", total=total, items=budget.priced)
    ]
    if budget.unpriced:
        words.append(t("offers.budget_unpriced", count=budget.unpriced))
    if budget.saving >= 0.01:
        words.append(t("offers.budget_saving", saving=money(budget.saving, currency)))
    return " ".join(words)


class OffersScreen(KioskScreen):
    BINDINGS = [*KioskScreen.BINDINGS, Binding("escape", "back", "Back", show=False)]

    def __init__(
        self, offers: Offers, currency: str = DEFAULT_CURRENCY, budget: Budget | None = None
    ) -> None:
        super().__init__()
        self._offers = offers
        self._currency = currency
        self._budget = budget  # the list's estimated total (None: nothing priced, or no catalog)

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        yield Static(t("offers.for_you" if self._offers.personalised else "offers.in_store"), classes="title")
        if self._budget is not None and self._budget.priced:
            yield Static(budget_text(self._budget, self._currency), id="budget", classes="lead")
        with VerticalScroll(id="offer-list"):
            if not self._offers.offers:
                yield Static(t("offers.none"), classes="lead")
            for offer in self._offers.offers:
                yield Static(offer_text(offer, self._currency), classes="offer")
        yield Button(t("common.back_to_list"), id="back", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#back", Button).focus()

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss()
