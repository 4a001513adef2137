"""The attract screen: what the kiosk does, "scan your card", or type the number.

In a browser (`--serve`) it also offers larger text: the toggle reloads the page with a larger font
(`kiosk.serve.PageFont`). No card has been scanned here, so the reload loses nothing. In a terminal
the terminal's own font sets the size, so there is no toggle (docs/kiosk.md).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Center, Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Static

from kiosk.serve import PageFont, page_font
from kiosk.strings import t
from kiosk.widgets import ConnectionBanner, KioskScreen


class AttractScreen(KioskScreen):
    store_name: reactive[str] = reactive("")
    notice: reactive[str] = reactive("")

    class CardEntered(Message):
        def __init__(self, card: str) -> None:
            super().__init__()
            self.card = card

    class StaffRequested(Message):
        pass

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        with Vertical(id="attract"):
            yield Static("", id="store-name", classes="title")
            yield Static(t("attract.lead"), classes="lead")
            yield Static(t("attract.scan"), id="scan-prompt", classes="prompt")
            yield Static(t("attract.type_hint"), classes="hint")
            with Center():
                yield Input(placeholder=t("attract.card_placeholder"), id="card", max_length=64)
            font = self.page_font
            if font is None:
                with Center():
                    yield Button(t("attract.staff"), id="staff")
            else:
                with Horizontal(id="attract-actions"):
                    text_size = "attract.normal_text" if font.is_large else "attract.larger_text"
                    yield Button(t(text_size), id="text-size")
                    yield Button(t("attract.staff"), id="staff")
            yield Static("", id="notice", classes="notice")

    @property
    def page_font(self) -> PageFont | None:
        """The browser page's font, when the kiosk is in one that `--serve` served (else no toggle)."""
        return page_font() if self.app.is_web else None

    def on_mount(self) -> None:
        self.query_one("#card", Input).focus()

    def watch_store_name(self, name: str) -> None:
        for title in self.query("#store-name").results(Static):
            title.update(t("attract.welcome_to", store=name) if name else t("attract.welcome"))

    def watch_notice(self, notice: str) -> None:
        for line in self.query("#notice").results(Static):
            line.update(notice)

    @property
    def has_input(self) -> bool:
        # query, not query_one: the app asks while the screen may be composing or going away
        return any(card.value for card in self.query("#card").results(Input))

    def reset(self) -> None:
        """Forget whatever was typed (the idle wipe)."""
        for card in self.query("#card").results(Input):
            card.value = ""
            card.focus()

    @on(Input.Submitted, "#card")
    def _submitted(self, event: Input.Submitted) -> None:
        card = event.value.strip()
        event.input.value = ""
        if card:
            self.notice = ""
            self.post_message(self.CardEntered(card))

    @on(Button.Pressed, "#text-size")
    def _text_size(self) -> None:
        font = self.page_font
        if font is not None:
            self.app.open_url(font.toggled_url(), new_tab=False)

    @on(Button.Pressed, "#staff")
    def _staff(self) -> None:
        self.post_message(self.StaffRequested())
