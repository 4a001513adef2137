"""A fake daemon API for the kiosk's unit and snapshot tests (the integration tests use a real one)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from textual.pilot import Pilot

from kiosk.app import KioskApp, build_app
from kiosk.client import StreamState
from kiosk.errors import NotAuthorizedError
from kiosk.schemas import (
    Alert,
    Budget,
    CatalogPage,
    CategoryProducts,
    Consent,
    Fridge,
    Holiday,
    KioskInfo,
    ListEntry,
    Offer,
    Offers,
    Product,
    ProductSuggestion,
    ProductSuggestions,
    Quarantine,
    RouteStop,
    RouteView,
    SeasonalEntry,
    Session,
    Shelf,
    ShoppingList,
    StaffOverview,
    SyncStatus,
    ZoneOccupancy,
)
from kiosk.screens.attract import AttractScreen
from kiosk.screens.list_dialogs import AddItem
from kiosk.settings import KioskSettings
from kiosk.staff_insights import (
    ChurnPart,
    Economic,
    Habit,
    Habits,
    Insights,
    Part,
    SegmentPart,
    SegmentRow,
    Segments,
    ValuePart,
)
from kiosk.visit import PickView, SectionView, VisitView

CUSTOMER = "hh_" + "ab" * 16
STAFF = "staff-secret"

LISTING = ShoppingList(
    customer=CUSTOMER,
    personalised=True,
    urgent=[ListEntry("milk", "you buy milk about every 3 days; last time was 4 days ago", 0.0, 0.91)],
    upcoming=[ListEntry("bread", "you buy bread about every 5 days; last time was 3 days ago", 2.0, 0.6)],
    usual=[ListEntry("ice cream", "in most of your baskets", 6.0, 0.4)],
    model_version="next_basket@2",
    generated_ms=1_764_000_000_000,
    seasonal=[SeasonalEntry("chocolate", "holiday", 2.31, holiday="Christmas Day"),
              SeasonalEntry("soup", "trend", 1.6)],
    holidays=[Holiday("2026-12-25", "Christmas Day", "Erster Weihnachtstag", 9),
              Holiday("2026-12-26", "Second Day of Christmas", "Zweiter Weihnachtstag", 10)],
)  # fmt: skip
ROUTE = RouteView(
    start="kiosk-1",
    end="checkout-1",
    stops=[
        RouteStop("A2-s1", "A2-1", ["bread"], "ambient", "left"),
        RouteStop("A7-s1", "A7-1", ["milk"], "chilled", "left"),
        RouteStop("A8-s1", "A8-1", ["ice cream"], "frozen", "left"),
    ],
    path=[],  # filled from the real planner by `real_route()`
    distance_m=84.0,
    minutes=3.4,
)
MILK_PRODUCTS = [
    ProductSuggestion(Product("1031", "Whole milk 1l", 1.09, "Own brand", "l", 1.09), "usual", "Milk 2 for 1.50"),
    ProductSuggestion(Product("cj-1", "Fluid milk white only 1 ga", 2.99, "Maker 1", "l", 0.79), "cheaper-per-unit",
                      "Milk 2 for 1.50", 0.2752),
    ProductSuggestion(Product("cj-2", "Fluid milk white only 1/2 gal", 1.99, "Maker 2", "l", 1.05), "popular",
                      "Milk 2 for 1.50"),
]  # fmt: skip

CATALOG = [
    Product("2001", "Oat drink 1l", 1.49, "Own brand", "l", 1.49, category="milk"),
    Product("1031", "Whole milk 1l", 1.09, "Own brand", "l", 1.09, category="milk"),
    Product("2002", "Rice pudding 200g", 0.89, "Maker 7", "kg", 4.45, category="yogurt"),
    Product("2003", "Basmati rice 1kg", 2.49, "Maker 3", "kg", 2.49, category="rice"),
]

SEGMENTS = Segments(
    True,
    [
        SegmentRow("weekly big-basket shoppers", 1240, 812.5, 0.08),
        SegmentRow("occasional top-up shoppers", None, None, None, suppressed=True),
    ],
)


def _part(reasoning: str) -> Part:
    return Part(reasoning, 0.8)


INSIGHTS = Insights(
    CUSTOMER,
    "52 weeks of purchases in this store",
    SegmentPart("closest to the centre of weekly big-basket shoppers", 0.8, "weekly big-basket shoppers"),
    ChurnPart("your usual weekly trip happened 4 days ago", 0.9, "active"),
    ValuePart("BG/NBD and Gamma-Gamma on 48 trips", 0.7, 812.5, 365),
    Economic(
        _part("34.10 a basket; the store's loyalty baskets average 28.40"),
        _part("buys the cheaper products of a category as often as others"),
        _part("a quarter of its lines were on promotion"),
        _part("weekly spend varies little"),
    ),
    Habits("3 categories bought often", 0.8, [Habit("milk", 40, "milk about every 3 days, steady")]),
    _part("its segment often buys eggs, which it does not"),
)

OFFERS = Offers(
    personalised=True,
    offers=[
        Offer("p-12", "milk", "Milk 2 for 1.50", "Any 1 l semi-skimmed", 25, None, "milk is on your list"),
    ],
)
ALERT = Alert(
    id=7,
    kind="empty_shelf",
    subject="A3-2",
    severity="critical",
    state="open",
    message="shelf A3-2 is empty",
    opened_ms=1,
    updated_ms=1,
)


def real_route(items: list[str], start: str | None = None, *, accessible: bool = False) -> RouteView:
    """The demo layout's real route for `items` (from kiosk-1 unless `start`), as the API would send it."""
    from routing import load_demo_layout, plan_route

    route = plan_route(load_demo_layout(), items, start=start or "kiosk-1", accessible=accessible)
    import msgspec

    return msgspec.convert(route.to_dict(), RouteView)


def visit_from_route(view: RouteView) -> VisitView:
    """A route as the visit document (GET .../personalization) carries it, on the demo layout's words."""
    from routing import load_demo_layout, normalize_name

    layout = load_demo_layout()
    sections = [
        SectionView(
            order=order,
            section=stop.section,
            place=layout.place_name(stop.node) if layout.has_node(stop.node) else stop.section,
            side=stop.side,
            storage=stop.storage,
            priority="usual",
            minutes_from_start=0.0,
            items=[PickView(layout.resolve_item(i) or normalize_name(i), "on your list") for i in stop.items],
            node=stop.node,
        )
        for order, stop in enumerate(view.stops, start=1)
    ]
    return VisitView(
        household=CUSTOMER,
        personalised=True,
        sections=sections,
        distance_m=view.distance_m,
        minutes=view.minutes,
        directions=view.directions,
        unreachable=[gap.item for gap in view.unreachable],
        start=view.start,
        end=view.end,
        path=view.path,
    )


@dataclass
class FakeApi:
    """Answers like the daemon would; records what was asked."""

    consent: Consent = field(default_factory=Consent)
    verified: bool = True  # sessions as a scanned card opens them
    calls: list[tuple[str, Any]] = field(default_factory=list)
    alerts: asyncio.Queue[Alert | StreamState] | None = None
    connected: bool = True
    on_connection: Callable[[bool], None] | None = None

    async def info(self) -> KioskInfo:
        return KioskInfo("demo", "Demo Store", 60, 30, 900, ["bread", "eggs", "milk", "rice"])

    async def layout_text(self) -> str:
        from routing import demo_layout_path

        return demo_layout_path().read_text()

    async def open_session(self, card: str) -> Session:
        self.calls.append(("open_session", card))
        return Session(CUSTOMER, "session-token", 0, True, None, self.consent, verified=self.verified)

    async def close_session(self, session: Session) -> None:
        self.calls.append(("close_session", session.customer))

    async def set_consent(self, session: Session, *, personalisation: bool, analytics: bool) -> Consent:
        self.calls.append(("set_consent", (personalisation, analytics)))
        self.consent = Consent(personalisation, analytics, 1)
        return self.consent

    async def shopping_list(self, session: Session) -> ShoppingList:
        self.calls.append(("shopping_list", session.customer))
        return LISTING

    async def products(
        self, session: Session, categories: list[str], prefer: Collection[str] = ()
    ) -> ProductSuggestions:
        self.calls.append(("products", (list(categories), sorted(prefer))))
        found = [CategoryProducts(c, MILK_PRODUCTS if c == "milk" else []) for c in categories]
        priced = sum(1 for c in found if c.suggestions)
        return ProductSuggestions(
            session.verified, found, Budget(1.09 * priced, priced, len(found) - priced, 0.31)
        )

    async def search_products(self, session: Session, query: str, limit: int = 6) -> CatalogPage:
        self.calls.append(("search_products", query))
        words = query.casefold().split()
        found = [p for p in CATALOG if all(w in f"{p.name} {p.category}".casefold() for w in words)]
        return CatalogPage(len(found), found[:limit])

    async def feedback(self, session: Session, category: str, vote: str) -> None:
        self.calls.append(("feedback", (category, vote)))

    async def offers(self, session: Session) -> Offers:
        self.calls.append(("offers", None))
        return OFFERS

    async def route(self, token: str, items: list[str], start: str | None = None) -> RouteView:
        self.calls.append(("route", list(items)))
        return real_route(items, start)

    async def visit(
        self, session: Session, items: list[str], start: str | None = None, *, accessible: bool = False
    ) -> VisitView:
        self.calls.append(("visit", (list(items), start, accessible)))
        if accessible:
            return visit_from_route(real_route(items, start, accessible=True))
        return visit_from_route(await self.route(session.token, items, start))

    async def forget(self, session: Session) -> None:
        self.calls.append(("forget", session.customer))

    async def verify_staff(self, token: str) -> None:
        if token != STAFF:
            raise NotAuthorizedError(401, "missing or wrong bearer token")

    async def acknowledge(self, token: str, alert_id: int, by: str = "kiosk") -> Alert:
        self.calls.append(("acknowledge", alert_id))
        return Alert(alert_id, "empty_shelf", "A3-2", "critical", "acked", "shelf A3-2 is empty", 1, 2)

    async def segments(self, token: str) -> Segments:
        self.calls.append(("segments", None))
        return SEGMENTS

    async def insights(self, token: str, household: str) -> Insights:
        self.calls.append(("insights", household))
        return INSIGHTS

    async def staff_overview(self, token: str) -> StaffOverview:
        return StaffOverview(
            shelves=[Shelf("A3-2", "A3", "Rice 1 kg", "rice", 20, 0, True)],
            fridges=[Fridge("F1", "chilled", 0, 5, 3.5, True)],
            zones=[ZoneOccupancy("entrance", 40, False, 3)],
            quarantine=Quarantine(2, {"bad_json": 2}),
            sync=SyncStatus("demo", 12, False, 4.0, 10.0),
        )

    async def alert_stream(self, token: str) -> AsyncIterator[Alert | StreamState]:
        if self.alerts is None:
            self.alerts = asyncio.Queue()
        yield StreamState(True)
        while True:
            yield await self.alerts.get()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_app(api: FakeApi | None = None, clock: FakeClock | None = None, **settings: Any) -> KioskApp:
    return build_app(
        KioskSettings(api="http://fake", clock=clock or FakeClock(), tick_s=0.05, **settings),
        api or FakeApi(),
    )


def screen_text(app: KioskApp) -> str:
    """Everything visible, as plain text lines (for 'is this shown / is this gone' checks)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def wait_for_screen(pilot: Pilot[Any], kind: type, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if isinstance(pilot.app.screen, kind):
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError(f"expected {kind.__name__}, on {type(pilot.app.screen).__name__}")


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = 5.0
) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def has_products(dialog: AddItem) -> bool:
    """The "Add item" dialog shows the catalog's products (they follow the categories once searched)."""
    return any(isinstance(row, Product) for row in dialog.shown)


def assert_no_personal_data(app: KioskApp) -> None:
    assert app.session is None
    assert app.staff_token is None
    assert app.current_mode == "shopper"
    assert [type(s) for s in app.screen_stack] == [AttractScreen]
    assert "staff" not in app._screen_stacks  # the staff stack was dropped with its tables
    text = screen_text(app)
    for secret in ("milk", "bread", CUSTOMER, "12345", "A3-2"):
        assert secret not in text
    assert not app.attract.has_input
