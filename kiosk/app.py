"""The kiosk app: shopper flow (attract -> consent -> list -> route/offers), staff mode, idle wipe.

`build_app(settings)` is the one way to make it (the CLI and the tests both use it). The app owns the
flow and the session; screens only show what they are given and post messages back up.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from textual import events, on, work
from textual.app import App
from textual.reactive import reactive
from textual.worker import get_current_worker

from kiosk.client import KioskApi, KioskClient
from kiosk.errors import KioskError, NotAuthorizedError
from kiosk.guard import guard
from kiosk.heap import settle
from kiosk.idle import IdlePhase, IdleTracker
from kiosk.maps import daemon_layout, draws
from kiosk.scanner import ScannerReader
from kiosk.schemas import Consent, KioskInfo, Session
from kiosk.screens.attract import AttractScreen
from kiosk.screens.consent import ConsentScreen
from kiosk.screens.dialogs import ForgetScreen, IdleWarningScreen
from kiosk.screens.offers import OffersScreen
from kiosk.screens.route import RouteScreen
from kiosk.screens.shopping_list import ShoppingListScreen
from kiosk.screens.staff import StaffLoginScreen, StaffScreen
from kiosk.settings import KioskSettings
from kiosk.strings import DEFAULT_CURRENCY, t, use
from kiosk.theme import HIGH_CONTRAST
from kiosk.visit import VisitView
from kiosk.widgets import show_connection
from routing import Layout, load_layout

__all__ = ["KioskApp", "build_app"]

log = logging.getLogger(__name__)

DEFAULT_IDLE_S = 60.0
DEFAULT_COUNTDOWN_S = 30.0
INPUT_EVENTS = (events.Key, events.MouseDown, events.MouseUp, events.MouseMove, events.MouseScrollDown,
                events.MouseScrollUp, events.Paste)  # fmt: skip


class KioskApp(App[int]):
    CSS_PATH = "kiosk.tcss"
    TITLE = "storeedge kiosk"
    MODES = {"shopper": AttractScreen, "staff": StaffLoginScreen}
    DEFAULT_MODE = "shopper"
    ENABLE_COMMAND_PALETTE = False

    reconnecting: reactive[bool] = reactive(False)

    def __init__(
        self, settings: KioskSettings, api: KioskApi, layout: Layout | None, *, owns_api: bool = False
    ) -> None:
        super().__init__()
        self._owns_api = owns_api
        self.settings = settings
        self.api = api
        self.layout = layout
        self.info: KioskInfo | None = None
        self.session: Session | None = None
        self.staff_token: str | None = None
        self._wiping = False
        self.idle = IdleTracker(
            settings.idle_s or DEFAULT_IDLE_S, settings.countdown_s or DEFAULT_COUNTDOWN_S, settings.clock
        )
        if not settings.public:
            self.use_command_palette = True
        api.on_connection = self._connection_changed

    # -- life cycle --------------------------------------------------------------------------------

    async def on_mount(self) -> None:
        self.register_theme(HIGH_CONTRAST)
        self.theme = HIGH_CONTRAST.name
        self.set_interval(self.settings.tick_s, self.idle_tick)
        self.load_info()
        if self.settings.scanner:
            self.read_scanner(self.settings.scanner)
        if self.settings.staff:
            await self.switch_mode("staff")

    async def on_unmount(self) -> None:
        if self._owns_api and isinstance(self.api, KioskClient):
            await self.api.aclose()

    def _connection_changed(self, connected: bool) -> None:
        self.reconnecting = not connected

    def watch_reconnecting(self, reconnecting: bool) -> None:
        show_connection(self, reconnecting)

    @property
    def attract(self) -> AttractScreen:
        screen = self.get_screen_stack("shopper")[0]
        assert isinstance(screen, AttractScreen)
        return screen

    @work(exclusive=True, group="info", exit_on_error=False)
    async def load_info(self) -> None:
        info = await guard(self, self.api.info, retry_forever=True)
        if info is None:
            return
        self.info = info
        self.idle.configure(
            self.settings.idle_s or info.idle_s, self.settings.countdown_s or info.countdown_s
        )
        self.attract.store_name = info.name
        if self.settings.layout is None:
            await self._load_daemon_layout()
        settle()  # started: collect once while nobody waits, then leave the long-lived app alone

    async def _load_daemon_layout(self) -> None:
        self.layout = await daemon_layout(self.api, f"{self.settings.api}/api/v1/kiosk/layout", self.layout)

    # -- idle: real input only -----------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, INPUT_EVENTS):
            self.idle.touch()
        await super().on_event(event)

    @property
    def in_use(self) -> bool:
        """Anything on screen or in memory that the next person must not see."""
        return (
            self.session is not None
            or self.staff_token is not None
            or self.current_mode != "shopper"
            or len(self.screen_stack) > 1
            or any(
                isinstance(s, AttractScreen) and s.has_input for s in self._screen_stacks.get("shopper", [])
            )
        )

    async def idle_tick(self) -> None:
        if not self.screen_stack or not self.in_use:  # no screens: the app is shutting down
            return
        phase = self.idle.phase()
        warning = self.screen if isinstance(self.screen, IdleWarningScreen) else None
        if phase is IdlePhase.ACTIVE:
            if warning is not None:
                warning.dismiss()
        elif phase is IdlePhase.WARNING:
            if warning is None:
                warning = IdleWarningScreen()
                await self.push_screen(warning)
            warning.seconds_left = round(self.idle.seconds_left())
        else:
            self.end_session()

    def end_session(self, notice: str | None = None) -> None:
        """Stop whatever the shopper flow was doing and wipe (from any handler or worker)."""
        if self._wiping:
            return
        self._wiping = True
        self.workers.cancel_group(self, "flow")
        self.run_worker(self.wipe(notice), group="wipe")

    async def wipe(self, notice: str | None = None) -> None:
        """Back to the attract screen with no personal data left in any widget or in the app."""
        self._wiping = True
        try:
            await self._wipe(t("app.ended") if notice is None else notice)
        finally:
            self._wiping = False

    async def _wipe(self, notice: str) -> None:
        session, self.session, self.staff_token = self.session, None, None
        if session is not None:
            self.revoke(session)
        if self.current_mode != "shopper":
            await self.switch_mode("shopper")
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        if "staff" in self._screen_stacks:
            await self.remove_mode("staff")
            self.add_mode("staff", StaffLoginScreen)
        self.clear_notifications()
        self.attract.reset()
        self.attract.notice = notice
        self.idle.touch()
        settle()  # the shopper has gone: collect now rather than during the next one's scan

    @work(group="revoke", exit_on_error=False)
    async def revoke(self, session: Session) -> None:
        try:
            await self.api.close_session(session)
        except KioskError as exc:  # the token expires on its own anyway
            log.info("session_revoke_failed", extra={"error": str(exc)})

    # -- the scanner -------------------------------------------------------------------------------

    @work(exclusive=True, group="scanner", exit_on_error=False)
    async def read_scanner(self, path: str) -> None:
        async for code in ScannerReader(path).codes():
            self.idle.touch()
            self.scanned(code)

    def scanned(self, code: str) -> None:
        """A card or a staff badge was scanned: what it means depends on the screen."""
        if isinstance(self.screen, StaffLoginScreen):
            self.staff_login(code)
        elif isinstance(self.screen, AttractScreen) and self.session is None:
            self.attract.notice = ""
            self.start_session(code)
        elif self.session is not None and self.current_mode == "shopper":
            self.staff_login(code, beside_shopper=True)  # staff helping the shopper: their insights

    # -- the shopper flow --------------------------------------------------------------------------

    @on(AttractScreen.CardEntered)
    def _card_entered(self, message: AttractScreen.CardEntered) -> None:
        self.start_session(message.card)

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def start_session(self, card: str) -> None:
        session = await guard(self, lambda: self.api.open_session(card))
        if session is None or get_current_worker().is_cancelled:
            return
        self.session = session
        self.idle.touch()
        if session.verified and (session.consent is None or session.consent.never_asked):
            await self.push_screen(ConsentScreen(session.consent or Consent()))
        else:  # an unverified session (a typed number) gets the store's list, and is told why
            await self._show_list(session)

    @property
    def currency(self) -> str:
        """The store's money: `--currency`, else what the daemon says, else EUR."""
        return self.settings.currency or (self.info and self.info.currency) or DEFAULT_CURRENCY

    async def _show_list(self, session: Session) -> None:
        listing = await guard(self, lambda: self.api.shopping_list(session))
        if listing is None or self.session is not session:
            return
        personalisation = session.consent is not None and session.consent.personalisation is True
        shown = next((s for s in self.screen_stack if isinstance(s, ShoppingListScreen)), None)
        if shown is not None:  # back from Privacy: the same list screen, so the shopper's edits stay
            while self.screen is not shown:
                await self.pop_screen()
            shown.show_listing(listing, personalisation=personalisation)
            return
        categories = self.info.categories if self.info else []
        screen = ShoppingListScreen(
            listing,
            session.first_name,
            categories,
            verified=session.verified,
            personalisation=personalisation,
            products=lambda categories, prefer: guard(
                self, lambda: self.api.products(session, categories, prefer)
            ),
            currency=self.currency,
            search=lambda typed: guard(self, lambda: self.api.search_products(session, typed)),
        )
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        if len(self.screen_stack) == 2:
            await self.switch_screen(screen)  # replaces the consent screen: no flash of the welcome screen
        else:
            await self.push_screen(screen)

    @on(ConsentScreen.Decided)
    def _consent_decided(self, message: ConsentScreen.Decided) -> None:
        self.save_consent(message.personalisation, message.analytics)

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def save_consent(self, personalisation: bool, analytics: bool) -> None:
        session = self.session
        if session is None:
            return
        asked = session
        consent = await guard(
            self, lambda: self.api.set_consent(asked, personalisation=personalisation, analytics=analytics)
        )
        if consent is None or self.session is not asked:
            return
        self.session = updated = msgspec.structs.replace(asked, consent=consent)
        await self._show_list(updated)

    @on(ConsentScreen.Back)
    def _consent_back(self) -> None:
        """Leave the consent screen unsaved: back to the list, or (first use) to the welcome screen."""
        if any(isinstance(s, ShoppingListScreen) for s in self.screen_stack):
            self.pop_screen()
        else:
            self.end_session("")

    @on(ShoppingListScreen.Feedback)
    def _feedback(self, message: ShoppingListScreen.Feedback) -> None:
        self.send_feedback(message.category, message.vote)

    @work(group="feedback", exit_on_error=False)
    async def send_feedback(self, category: str, vote: str) -> None:
        session = self.session
        if session is not None and session.verified:
            await guard(self, lambda: self.api.feedback(session, category, "up" if vote == "up" else "down"))

    @on(ShoppingListScreen.RouteWanted)
    def _route_wanted(self, message: ShoppingListScreen.RouteWanted) -> None:
        self.show_route(message.items)

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def show_route(self, items: list[str]) -> None:
        session = self.session
        if session is None:
            return
        if not items:
            self.notify(t("app.empty_list"), timeout=4)
            return
        start = self.settings.start_node

        async def replan(left: list[str], here: str | None, step_free: bool) -> VisitView | None:
            return await guard(
                self, lambda: self.api.visit(session, left, here or start, accessible=step_free)
            )

        visit = await replan(items, None, False)
        if visit is None or self.session is not session:
            return
        if self.settings.layout is None and not draws(self.layout, visit.path):
            # The daemon routed on a layout this kiosk's map is not: central sent it a new one.
            await self._load_daemon_layout()
        if self.session is session:
            await self.push_screen(RouteScreen(self.layout, visit, items, replan))

    @on(ShoppingListScreen.OffersWanted)
    def _offers_wanted(self) -> None:
        self.show_offers()

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def show_offers(self) -> None:
        session = self.session
        if session is None:
            return
        shown = next((s for s in self.screen_stack if isinstance(s, ShoppingListScreen)), None)
        items = shown.items[:60] if shown is not None else []
        prefer = shown.preferences if shown is not None else frozenset()
        asked = guard(self, lambda: self.api.offers(session))
        if items:  # the list's budget, asked for at the same time
            offers, products = await asyncio.gather(
                asked, guard(self, lambda: self.api.products(session, items, prefer))
            )
        else:
            offers, products = await asked, None
        if offers is not None and self.session is session:
            budget = products.budget if products is not None else None
            await self.push_screen(OffersScreen(offers, self.currency, budget))

    @on(ShoppingListScreen.PrivacyWanted)
    def _privacy_wanted(self) -> None:
        if self.session is not None and self.session.verified:
            self.push_screen(ConsentScreen(self.session.consent or Consent()))

    @on(ShoppingListScreen.ForgetWanted)
    def _forget_wanted(self) -> None:
        self.push_screen(ForgetScreen(), self._forget_answered)

    def _forget_answered(self, erase: bool | None) -> None:
        if erase:
            self.forget()

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def forget(self) -> None:
        session = self.session
        if session is None:
            return
        try:
            await self.api.forget(session)
        except KioskError as exc:
            log.warning("forget_failed", extra={"error": str(exc)})
            self.notify(t("app.forget_failed"), severity="error")
            return
        self.session = None  # erasing revoked the token
        self.end_session(t("app.forgotten"))

    @on(ShoppingListScreen.Finished)
    def _finished(self) -> None:
        self.end_session()

    # -- staff ---------------------------------------------------------------------------------------

    @on(AttractScreen.StaffRequested)
    async def _staff_requested(self) -> None:
        await self.switch_mode("staff")

    @on(StaffLoginScreen.Cancelled)
    @on(StaffScreen.Exit)
    def _staff_done(self) -> None:
        self.end_session("")

    @on(StaffLoginScreen.Submitted)
    def _staff_submitted(self, message: StaffLoginScreen.Submitted) -> None:
        self.staff_login(message.token)

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def staff_login(self, token: str, *, beside_shopper: bool = False) -> None:
        """A staff badge or PIN. ``beside_shopper``: scanned during a shopper's session, to help them:
        staff mode then shows that household's insights; a code that is not a badge is ignored."""
        login = self.screen
        try:
            await self.api.verify_staff(token)
        except KioskError as exc:
            if isinstance(login, StaffLoginScreen):
                refused = isinstance(exc, NotAuthorizedError)
                login.refuse(
                    "That badge or PIN was not accepted." if refused else f"Cannot check it now: {exc}"
                )
            return
        if beside_shopper:
            await self.switch_mode("staff")
        self.staff_token = token
        self.idle.touch()
        shopper = self.session.customer if self.session is not None and self.session.verified else None
        await self.push_screen(StaffScreen(self.api, token, shopper=shopper, currency=self.currency))


def build_app(settings: KioskSettings, api: KioskApi | None = None) -> KioskApp:
    """The kiosk app for `settings`; `api` defaults to a `KioskClient` for `settings.api`.

    The caller owns the client's life cycle when it passes one; otherwise the app closes its own
    when it exits.
    """
    use(settings.language)
    # With --layout the kiosk uses that file; otherwise it asks the daemon for its layout at start.
    layout = load_layout(settings.layout) if settings.layout is not None else None
    if api is None:
        return KioskApp(settings, KioskClient(settings.api, settings.token), layout, owns_api=True)
    return KioskApp(settings, api, layout)
