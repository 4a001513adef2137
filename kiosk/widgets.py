"""Small widgets shared by the kiosk's screens."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary, WeakSet

from textual.app import App
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Checkbox, Static

from kiosk.strings import t


class ConnectionBanner(Static):
    """ "Reconnecting to the store…": shown while the daemon does not answer.

    The app owns the state (`KioskApp.reconnecting`) and shows it on every banner of every screen
    (`show_connection`). Banners are held weakly and dropped when unmounted: a Textual `watch` on the app
    would keep every screen's banner (and its widget caches, ~1,100 objects a session) until the
    connection next changed, which in a store with a steady network is never (tests/kiosk/test_kiosk_heap.py).
    """

    def __init__(self) -> None:
        super().__init__(t("common.reconnecting"), classes="banner")
        self.display = False

    def on_mount(self) -> None:
        _banners.setdefault(self.app, WeakSet()).add(self)
        self.display = bool(getattr(self.app, "reconnecting", False))

    def on_unmount(self) -> None:
        _banners.get(self.app, WeakSet()).discard(self)


_banners: WeakKeyDictionary[App[Any], WeakSet[ConnectionBanner]] = WeakKeyDictionary()


def show_connection(app: App[Any], reconnecting: bool) -> None:
    """Show or hide "Reconnecting…" on every mounted banner of ``app``."""
    for banner in list(_banners.get(app, ())):
        banner.display = reconnecting


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
