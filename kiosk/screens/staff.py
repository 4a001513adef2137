"""Staff mode: badge/PIN login, then live alerts (acknowledge with Enter) and the store's state."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Static, TabbedContent, TabPane

from kiosk.errors import KioskError, NotAuthorizedError
from kiosk.schemas import AbTest, Alert, StaffOverview
from kiosk.staff_insights import insights_text, segment_rows
from kiosk.strings import DEFAULT_CURRENCY
from kiosk.widgets import ConnectionBanner, KioskScreen

if TYPE_CHECKING:
    from kiosk.client import KioskApi

log = logging.getLogger(__name__)

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
KIND_WORDS = {
    "empty_shelf": "Shelf empty",
    "low_stock": "Shelf low",
    "stockout_soon": "Empty soon",
    "stockout_predicted": "Empty soon (forecast)",
    "misplaced_item": "Misplaced item",
    "fridge_excursion": "Fridge temperature",
    "device_offline": "Device offline",
    "sensor_silent": "Sensor silent",
    "sensor_stuck": "Sensor stuck",
    "queue_pressure": "Queue",
}


def alert_row(alert: Alert) -> tuple[str, str, str, str, str]:
    # The daemon's message already says "empty in about N min"; a clock time stays true as time passes.
    what = alert.message
    empty_at = alert.detail.get("empty_at_ms")
    if isinstance(empty_at, int | float):
        what += f" - empty by {datetime.fromtimestamp(empty_at / 1000).astimezone():%H:%M}"
    return (
        alert.severity.upper(),
        KIND_WORDS.get(alert.kind, alert.kind),
        alert.subject,
        "ACKED" if alert.state == "acked" else "OPEN",
        what,
    )


def test_line(test: AbTest) -> str:
    """A running A/B test on the staff screen: its name, state, the challenger's share and the last reason."""
    line = f"A/B test {test.name}: {test.state}, challenger on {test.challenger_share:.0%} of lists"
    return f"{line} ({test.reason})" if test.reason else line


class StaffLoginScreen(KioskScreen):
    """Scan a staff badge or type the staff PIN; the app checks it against the daemon."""

    class Submitted(Message):
        def __init__(self, token: str) -> None:
            super().__init__()
            self.token = token

    class Cancelled(Message):
        pass

    BINDINGS = [*KioskScreen.BINDINGS, Binding("escape", "cancel", "Back", show=False)]

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        with Vertical(id="staff-login"):
            yield Static("Staff", classes="title")
            yield Static("Scan your staff badge, or type the staff PIN and press Enter.", classes="lead")
            with Center():
                yield Input(placeholder="PIN", password=True, id="pin", max_length=128)
            with Center():
                yield Button("Back", id="cancel")
            yield Static("", id="login-error", classes="notice")

    def on_mount(self) -> None:
        self.query_one("#pin", Input).focus()

    def refuse(self, why: str) -> None:
        self.query_one("#login-error", Static).update(why)
        self.query_one("#pin", Input).focus()

    @on(Input.Submitted, "#pin")
    def _submitted(self, event: Input.Submitted) -> None:
        token = event.value.strip()
        event.input.value = ""
        if token:
            self.post_message(self.Submitted(token))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class StaffScreen(KioskScreen):
    """Live alerts from the WebSocket (no refresh needed) and tables refreshed every few seconds."""

    class Exit(Message):
        pass

    BINDINGS = [*KioskScreen.BINDINGS, Binding("escape", "exit", "Exit", show=False)]

    def __init__(
        self,
        api: KioskApi,
        token: str,
        refresh_s: float = 5.0,
        *,
        shopper: str | None = None,
        currency: str = DEFAULT_CURRENCY,
    ) -> None:
        super().__init__()
        self._api = api
        self._token = token
        self._refresh_s = refresh_s
        self._shopper = shopper  # the household a shopper has opened at this kiosk, if any
        self._currency = currency
        self.alerts: dict[int, Alert] = {}

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        yield Static("Staff: live store status", classes="title", id="staff-title")
        with TabbedContent(id="staff-tabs"):
            with TabPane("Alerts", id="tab-alerts"):
                yield Static("Connecting to the live alert stream…", id="alerts-state", classes="hint")
                yield DataTable(id="alerts", cursor_type="row", zebra_stripes=True)
            with TabPane("Shelves", id="tab-shelves"):
                yield DataTable(id="shelves", cursor_type="row")
            with TabPane("Fridges", id="tab-fridges"):
                yield DataTable(id="fridges", cursor_type="row")
            with TabPane("Store", id="tab-store"):
                yield DataTable(id="zones", cursor_type="row")
                yield Static("", id="store-status", classes="lead")
            with TabPane("Customers", id="tab-customers"):
                yield DataTable(id="segments", cursor_type="row")
                yield Static("", id="shopper-insights", classes="lead")
        yield Button("Exit staff mode", id="exit")

    def on_mount(self) -> None:
        self.query_one("#alerts", DataTable).add_columns("Severity", "What", "Where", "State", "Detail")
        self.query_one("#shelves", DataTable).add_columns(
            "Shelf", "Aisle", "Product", "Items", "Capacity", "Low"
        )
        self.query_one("#fridges", DataTable).add_columns("Fridge", "Storage", "°C", "Range", "OK")
        self.query_one("#zones", DataTable).add_columns("Zone", "People", "Capacity", "Checkout")
        self.query_one("#segments", DataTable).add_columns("Segment", "Households", "Mean CLV", "Churn risk")
        self.query_one("#alerts", DataTable).focus()
        self.follow_alerts()
        self.refresh_overview()
        self.load_customers()
        self.set_interval(self._refresh_s, self.refresh_overview)

    # -- live alerts -------------------------------------------------------------------------------

    @work(exclusive=True, group="alerts", exit_on_error=False)
    async def follow_alerts(self) -> None:
        state = self.query_one("#alerts-state", Static)
        try:
            async for item in self._api.alert_stream(self._token):
                if isinstance(item, Alert):
                    self.show_alert(item)
                elif item.connected:
                    self.alerts.clear()  # the daemon replays every active alert on connect
                    self._redraw_alerts()
                    state.update("Live: alerts appear here as they happen. Enter acknowledges one.")
                else:
                    state.update("Reconnecting to the store…")
        except NotAuthorizedError:
            state.update("The staff token is no longer accepted. Exit and log in again.")

    def show_alert(self, alert: Alert) -> None:
        if alert.state == "resolved":
            self.alerts.pop(alert.id, None)
        else:
            self.alerts[alert.id] = alert
        self._redraw_alerts()

    def _redraw_alerts(self) -> None:
        table = self.query_one("#alerts", DataTable)
        selected = table.cursor_row
        table.clear()
        ordered = sorted(
            self.alerts.values(),
            key=lambda a: (a.state == "acked", SEVERITY_ORDER.get(a.severity, 9), -a.updated_ms),
        )
        for alert in ordered:
            table.add_row(*alert_row(alert), key=str(alert.id))
        if ordered:
            table.move_cursor(row=min(selected, len(ordered) - 1))

    @on(DataTable.RowSelected, "#alerts")
    def _acknowledge_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.acknowledge(int(event.row_key.value))

    @work(group="ack", exit_on_error=False)
    async def acknowledge(self, alert_id: int) -> None:
        alert = self.alerts.get(alert_id)
        if alert is None or alert.state != "open":
            return
        try:
            self.show_alert(await self._api.acknowledge(self._token, alert_id, "kiosk"))
        except KioskError as exc:
            self.notify(f"Could not acknowledge: {exc}", severity="warning", timeout=5)

    # -- tables ------------------------------------------------------------------------------------

    @work(exclusive=True, group="overview", exit_on_error=False)
    async def refresh_overview(self) -> None:
        try:
            overview = await self._api.staff_overview(self._token)
        except KioskError as exc:
            log.warning("staff_overview_failed", extra={"error": str(exc)})
            return
        self.show_overview(overview)

    def show_overview(self, overview: StaffOverview) -> None:
        shelves = self.query_one("#shelves", DataTable)
        shelves.clear()
        for s in sorted(overview.shelves, key=lambda s: (not s.low, s.id)):
            items = "?" if s.items is None else str(s.items)
            shelves.add_row(s.id, s.aisle, s.product, items, str(s.capacity), "LOW" if s.low else "")
        fridges = self.query_one("#fridges", DataTable)
        fridges.clear()
        for f in overview.fridges:
            celsius = "?" if f.celsius is None else f"{f.celsius:.1f}"
            ok = {True: "ok", False: "OUT OF RANGE", None: "?"}[f.in_range]
            fridges.add_row(f.id, f.storage, celsius, f"{f.min_c:g}..{f.max_c:g}", ok)
        zones = self.query_one("#zones", DataTable)
        zones.clear()
        for z in overview.zones:
            zones.add_row(z.id, str(z.occupancy), str(z.capacity), "yes" if z.checkout else "")
        quarantine = ", ".join(f"{k}: {v}" for k, v in sorted(overview.quarantine.by_reason.items()))
        lines = [
            f"Quarantined messages: {overview.quarantine.total}" + (f" ({quarantine})" if quarantine else "")
        ]
        if overview.sync is None:
            lines.append("Sync: not configured")
        else:
            sync = overview.sync
            behind = "over its bound!" if sync.over_bound else "within bounds"
            age = "never" if sync.last_ack_age_s is None else f"{sync.last_ack_age_s:.0f} s ago"
            lines.append(
                f"Sync: {sync.pending_rows} changes waiting ({behind}); central last took data {age}"
            )
        lines += [test_line(t) for t in overview.tests if t.state in ("running", "scheduled")]
        self.query_one("#store-status", Static).update("\n".join(lines))

    @work(exclusive=True, group="customers", exit_on_error=False)
    async def load_customers(self) -> None:
        """The store's segments, and the insights of the household opened at this kiosk (if any)."""
        table = self.query_one("#segments", DataTable)
        try:
            segments = await self._api.segments(self._token)
            table.add_rows(segment_rows(segments, self._currency))
        except KioskError as exc:
            log.warning("staff_segments_failed", extra={"error": str(exc)})
        words = self.query_one("#shopper-insights", Static)
        if self._shopper is None:
            words.update("No shopper has a session open at this kiosk.")
            return
        try:
            insights = await self._api.insights(self._token, self._shopper)
        except NotAuthorizedError:
            words.update("This shopper has not agreed to store analytics: there is nothing to show.")
            return
        except KioskError as exc:
            words.update(f"No insights for this shopper now: {exc}")
            return
        words.update(insights_text(insights, self._currency))

    @on(Button.Pressed, "#exit")
    def action_exit(self) -> None:
        self.post_message(self.Exit())
