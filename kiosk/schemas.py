"""What the kiosk reads from the daemon: msgspec structs for every response it uses.

They mirror docs/customers.md (shopper endpoints) and the staff API. Unknown fields are ignored, so
the daemon can add fields without breaking a kiosk already installed.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class KioskInfo(msgspec.Struct, frozen=True):
    store: str
    name: str
    idle_s: float
    countdown_s: float
    session_s: float
    categories: list[str] = []
    currency: str | None = None  # ISO code of the store's money, if the daemon says (else the kiosk's)


class Consent(msgspec.Struct, frozen=True):
    personalisation: bool | None = None
    analytics: bool | None = None
    updated_ms: int | None = None

    @property
    def never_asked(self) -> bool:
        return self.personalisation is None or self.analytics is None


class Session(msgspec.Struct, frozen=True):
    customer: str
    token: str
    expires_ms: int
    known: bool | None  # None for an unverified session: it is told nothing about the household
    first_name: str | None
    consent: Consent | None  # None for an unverified session
    # Opened with the card's barcode (number and check code): the household's own data may be shown.
    # A typed bare number is not verified: the store's generic list, offers and route only.
    verified: bool = False


class ListEntry(msgspec.Struct, frozen=True):
    category: str
    reason: str = ""
    days_left: float | None = None
    probability: float | None = None


class SeasonalEntry(msgspec.Struct, frozen=True):
    """In season in the store (not on the household's list): the daemon's `edge.predictions.seasonal`."""

    category: str
    kind: Literal["holiday", "season", "trend"]
    lift: float
    reason: str = ""
    holiday: str | None = None


class Holiday(msgspec.Struct, frozen=True):
    date: str
    name: str
    local_name: str
    days_away: int


class ShoppingList(msgspec.Struct, frozen=True):
    customer: str
    personalised: bool
    urgent: list[ListEntry]
    upcoming: list[ListEntry]
    usual: list[ListEntry]
    model_version: str | None = None
    generated_ms: int | None = None
    seasonal: list[SeasonalEntry] = []
    holidays: list[Holiday] = []


class Product(msgspec.Struct, frozen=True):
    sku: str
    name: str
    price: float
    brand: str = ""
    unit: str | None = None  # "kg", "l" or "each"
    unit_price: float | None = None
    category: str = ""


class CatalogPage(msgspec.Struct, frozen=True):
    """Products matching a search (`GET /api/v1/catalog/products?q=`)."""

    total: int
    products: list[Product]


class ProductSuggestion(msgspec.Struct, frozen=True):
    product: Product
    why: str  # usual, cheaper-per-unit, popular, bought-before, in-range (the kiosk words it)
    promotion: str | None = None
    saving: float | None = None  # cheaper-per-unit: the share less per unit


class CategoryProducts(msgspec.Struct, frozen=True):
    category: str
    suggestions: list[ProductSuggestion]


class Budget(msgspec.Struct, frozen=True):
    estimated_total: float
    priced: int
    unpriced: int
    saving: float
    on_offer: int = 0


class ProductSuggestions(msgspec.Struct, frozen=True):
    personalised: bool
    categories: list[CategoryProducts]
    budget: Budget | None = None


class Offer(msgspec.Struct, frozen=True):
    id: str
    category: str
    title: str
    detail: str = ""
    discount_pct: float | None = None
    ends_ms: int | None = None
    reason: str | None = None


class Offers(msgspec.Struct, frozen=True):
    personalised: bool
    offers: list[Offer]


class RouteStop(msgspec.Struct, frozen=True):
    node: str
    section: str
    items: list[str]
    storage: str
    side: str | None = None


class RouteGap(msgspec.Struct, frozen=True):
    item: str
    reason: str


class RouteView(msgspec.Struct, frozen=True):
    start: str
    end: str
    stops: list[RouteStop]
    path: list[str]
    distance_m: float
    minutes: float
    directions: list[str] = []
    unreachable: list[RouteGap] = []
    optimal: bool = False
    solver: str = ""
    items: list[str] = []


class Alert(msgspec.Struct, frozen=True):
    id: int
    kind: str
    subject: str
    severity: str
    state: str  # open, acked, resolved
    message: str
    opened_ms: int
    updated_ms: int
    detail: dict[str, object] = {}
    acked_ms: int | None = None
    acked_by: str | None = None
    resolved_ms: int | None = None


class EventMessage(msgspec.Struct, frozen=True):
    """One frame on the `/api/v1/events` WebSocket."""

    type: str
    alert: Alert | None = None


class Shelf(msgspec.Struct, frozen=True):
    id: str
    aisle: str
    product: str
    category: str
    capacity: int
    items: int | None
    low: bool


class Fridge(msgspec.Struct, frozen=True):
    id: str
    storage: str
    min_c: float
    max_c: float
    celsius: float | None
    in_range: bool | None


class ZoneOccupancy(msgspec.Struct, frozen=True):
    id: str
    capacity: int
    checkout: bool
    occupancy: int


class Quarantine(msgspec.Struct, frozen=True):
    total: int
    by_reason: dict[str, int]


class SyncStatus(msgspec.Struct, frozen=True):
    store: str
    pending_rows: int
    over_bound: bool
    last_ack_age_s: float | None = None
    oldest_pending_age_s: float | None = None


class AbTest(msgspec.Struct, frozen=True):
    """An A/B test of model versions at this store (``GET /api/v1/ab-tests``), as staff see it."""

    id: str
    name: str
    state: str
    challenger_share: float
    reason: str


class StaffOverview(msgspec.Struct, frozen=True):
    """Everything on the staff screen apart from the live alerts, read in one go."""

    shelves: list[Shelf]
    fridges: list[Fridge]
    zones: list[ZoneOccupancy]
    quarantine: Quarantine
    sync: SyncStatus | None
    tests: list[AbTest] = msgspec.field(default_factory=list)


Vote = Literal["up", "down"]
