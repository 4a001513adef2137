"""Small widgets shared by the kiosk's screens."""

from __future__ import annotations

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Checkbox, Static

from kiosk.strings import t


class ConnectionBanner(Static):
    """ "Reconnecting to the store…": shown while the daemon does not answer.

    The app owns the state (`KioskApp.reconnecting`); the banner only mirrors it.
    """

    def __init__(self) -> None:
        super().__init__(t("common.reconnecting"), classes="banner")
        self.display = False

    def on_mount(self) -> None:
        self.watch(self.app, "reconnecting", self._show, init=True)

    def _show(self, reconnecting: bool) -> None:
        self.display = reconnecting


class YesNoBox(Checkbox):
    """A checkbox that says its state in text ("[x] yes" / "[ ] no"), not by colour alone (WCAG 1.4.1)."""

    @property
    def _button(self) -> Content:
        return Content.styled(t("consent.yes" if self.value else "consent.no"), "bold")

    def watch_value(self) -> None:
        super().watch_value()
        self.refresh(layout=True)


# Arrow keys move between controls where the focused control does not use them itself, so the kiosk
# works with arrows + Enter (+ a scanner) only.
ARROW_FOCUS: list[BindingType] = [
    Binding("down", "app.focus_next", "Next", show=False),
    Binding("up", "app.focus_previous", "Previous", show=False),
    Binding("right", "app.focus_next", "Next", show=False),
    Binding("left", "app.focus_previous", "Previous", show=False),
]


class KioskScreen(Screen[None]):
    """Base of the full-screen kiosk screens: arrow-key focus movement."""

    BINDINGS = ARROW_FOCUS


def days_left_text(days: float | None) -> str:
    if days is None:
        return ""
    if days < 0.5:
        return t("list.needed_now")
    rounded = round(days)
    return t("list.one_day_left") if rounded == 1 else t("list.days_left", days=rounded)
