"""A till's transaction stored (inside the batch's transaction, `edge.store.apply`): the household (the
keyed hash of its loyalty id; none if the shopper asked to be forgotten after the purchase was made),
the purchase and its lines, each line filed under its category, a total that disagrees with the lines
flagged as suspicious, the outbox row, and the household hooks (predictions record outcomes, ...).

A line's category comes from the planogram (the shelves with sensors) or, for the rest of the store's
range, from the catalog (`SkuCategories`); a SKU in neither is stored without one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from edge.store import quarantine
from edge.store.hooks import HouseholdHooks, PurchaseApplied
from sensors.schemas import PosTransaction
from sync.outbox import OutboxEntry

_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class SkuCategories:
    """The planogram's SKUs, then those of ``more()`` (asked once per purchase: the live catalog)."""

    planogram: Mapping[str, str]
    more: Callable[[], Mapping[str, str]]

    def lookup(self) -> Callable[[str], str | None]:
        more = self.more()
        return lambda sku: self.planogram.get(sku) or more.get(sku)


@dataclass(frozen=True, slots=True)
class PurchaseContext:
    pseudonymiser: quarantine.Pseudonymiser
    hooks: HouseholdHooks
    categories: SkuCategories
    quarantine_max_rows: int


def store_purchase(
    conn: sqlite3.Connection,
    r: PosTransaction,
    reading_id: int | None,
    now_ms: int,
    ctx: PurchaseContext,
    outbox: list[OutboxEntry],
) -> str | None:
    """Store ``r``; returns the reason it is suspicious, if it is (stored and synced all the same)."""
    household = ctx.pseudonymiser.household_id(r.loyalty_id) if r.loyalty_id else None
    if (
        household is not None
        and conn.execute(
            "SELECT 1 FROM erasures WHERE household = ? AND erased_ms >= ?", (household, r.ts_ms)
        ).fetchone()
    ):
        household = None  # made before the shopper asked to be forgotten, delivered late: a sale, no one's
    if household is not None:
        conn.execute(
            "INSERT INTO households (id, first_seen_ms, last_seen_ms, purchases) VALUES (?, ?, ?, 1)"
            " ON CONFLICT (id) DO UPDATE SET purchases = purchases + 1,"
            " first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),"
            " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
            (household, r.ts_ms, r.ts_ms),
        )
    cursor = conn.execute(
        "INSERT INTO purchases (reading_id, lane, basket_id, household, ts_ms, total, lines)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (reading_id, r.lane, r.basket_id, household, r.ts_ms, r.total, len(r.items)),
    )
    purchase_id = cursor.lastrowid
    suspicion = quarantine.check_pos_total(r)
    if suspicion is not None:  # stored as the till sent it (and synced), flagged for staff
        quarantine.record_suspicious(conn, suspicion, r, purchase_id, now_ms, ctx.quarantine_max_rows)
    category_of = ctx.categories.lookup()
    categories = [category_of(item.sku) for item in r.items]
    conn.executemany(
        "INSERT INTO purchase_items (purchase_id, line, sku, category, qty, unit_price) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (purchase_id, line, item.sku, category, item.qty, item.unit_price)
            for line, (item, category) in enumerate(zip(r.items, categories, strict=True), start=1)
        ],
    )
    body = {
        "lane": r.lane,
        "basket_id": r.basket_id,
        "household": household,
        "ts_ms": r.ts_ms,
        "total": r.total,
        "items": [
            {"sku": i.sku, "qty": i.qty, "unit_price": i.unit_price, "category": category}
            for i, category in zip(r.items, categories, strict=True)
        ],
    }
    outbox.append(OutboxEntry("purchase", r.basket_id, _json.encode(body).decode()))
    if household is not None:  # e.g. predictions record outcomes and queue a rescore (edge.store.hooks)
        bought = frozenset(c for c in categories if c is not None)
        event = PurchaseApplied(household, bought, r.ts_ms, now_ms)
        outbox.extend(ctx.hooks.purchase_applied(conn, event))
    return suspicion.reason if suspicion is not None else None
