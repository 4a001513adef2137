"""What the HTTP API returns: msgspec structs, encoded as JSON. The kiosk and staff views read these."""

from __future__ import annotations

import msgspec


class ShelfView(msgspec.Struct, frozen=True):
    id: str
    aisle: str
    zone: str
    sku: str
    product: str
    category: str
    capacity: int
    grams: float | None
    items: int | None
    updated_ms: int | None
    picks: int
    puts: int
    low: bool
    facings: int = 1
    mixed: bool = False  # shares the shelf with other products: items is an estimate, not a count
    settled: bool = False  # the latest reading came from a still shelf


class FridgeView(msgspec.Struct, frozen=True):
    id: str
    storage: str
    min_c: float
    max_c: float
    celsius: float | None
    updated_ms: int | None
    in_range: bool | None


class ZoneView(msgspec.Struct, frozen=True):
    id: str
    capacity: int
    checkout: bool
    occupancy: int
    entered_total: int
    exited_total: int
    updated_ms: int | None


class DeviceView(msgspec.Struct, frozen=True):
    id: str
    kind: str
    online: bool | None
    status_ms: int | None
    last_seen_ms: int | None
    last_ts_ms: int | None
    messages: int


class QuarantineView(msgspec.Struct, frozen=True):
    id: int
    received_ms: int
    source: str
    origin: str
    device: str | None
    reason: str
    detail: str
    payload: str  # decoded as UTF-8 with replacement, for reading; the raw bytes stay in the table


class QuarantineSummary(msgspec.Struct, frozen=True):
    total: int
    by_reason: dict[str, int]
    rows: list[QuarantineView]


class SuspiciousView(msgspec.Struct, frozen=True):
    """A reading stored as sent but flagged for staff (edge/store/quarantine.py); today always a purchase."""

    id: int
    received_ms: int
    ts_ms: int
    device: str
    kind: str
    reason: str
    detail: str
    purchase_id: int | None
    lane: str | None
    basket_id: str | None
    total: float | None


class SuspiciousSummary(msgspec.Struct, frozen=True):
    total: int
    by_reason: dict[str, int]
    rows: list[SuspiciousView]


class StoreSummary(msgspec.Struct, frozen=True):
    store_id: str
    readings: int
    purchases: int
    households: int
    outbox_rows: int
    quarantined: int


class RestockItem(msgspec.Struct, frozen=True):
    shelf: str
    aisle: str
    sku: str
    product: str
    items: int
    capacity: int
    bring: int  # items to bring to fill the shelf
    urgency: str  # empty, low, soon
    stockout_ms: int | None
    pick_rate_per_h: float | None


class FootfallHour(msgspec.Struct, frozen=True):
    zone: str
    hour_ms: int
    entered: int
    exited: int
    peak_occupancy: int
    mean_occupancy: float
    mean_dwell_s: float | None  # Little's law: person-seconds / people who entered; None if nobody did
