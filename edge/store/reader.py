"""Read side of the store for the HTTP API: a read-only connection on its own thread (WAL lets it read
while the writer commits), so queries never block the event loop or the writer."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edge.state.alerts import AlertEvent, list_alerts
from edge.store.db import ReadThread
from edge.store.views import (
    DeviceView,
    FootfallHour,
    FridgeView,
    QuarantineSummary,
    QuarantineView,
    RestockItem,
    ShelfView,
    StoreSummary,
    SuspiciousSummary,
    SuspiciousView,
    ZoneView,
)


class StoreReader:
    def __init__(
        self, db_path: Path, store_id: str, low_stock_items: int, restock_horizon_min: float = 60.0
    ) -> None:
        self._restock_horizon_ms = int(restock_horizon_min * 60_000)
        self._store_id = store_id
        self._low = low_stock_items
        self._reads = ReadThread(db_path, "sqlite-reader")
        self._run = self._reads.run

    async def close(self) -> None:
        await self._reads.close()

    async def ping(self) -> bool:
        return await self._run(lambda c: c.execute("SELECT 1").fetchone() == (1,))

    async def shelves(self) -> list[ShelfView]:
        def q(c: sqlite3.Connection) -> list[ShelfView]:
            rows = c.execute(
                "SELECT s.id, s.aisle, s.zone, s.sku, p.name, p.category, s.capacity, st.grams, st.items,"
                " nullif(st.ts_ms, 0), coalesce(st.picks, 0), coalesce(st.puts, 0),"
                " st.items IS NOT NULL AND st.items <= ?, s.facings, s.mixed_with != '', coalesce(st.settled, 0)"
                " FROM shelves s JOIN products p ON p.sku = s.sku LEFT JOIN shelf_state st ON st.shelf = s.id"
                " ORDER BY s.id",
                (self._low,),
            ).fetchall()
            return [
                ShelfView(*r[:12], low=bool(r[12]), facings=r[13], mixed=bool(r[14]), settled=bool(r[15]))  # type: ignore[misc]
                for r in rows
            ]

        return await self._run(q)

    async def fridges(self) -> list[FridgeView]:
        def q(c: sqlite3.Connection) -> list[FridgeView]:
            rows = c.execute(
                "SELECT f.id, f.storage, f.min_c, f.max_c, s.celsius, s.ts_ms,"
                " CASE WHEN s.celsius IS NULL THEN NULL ELSE s.celsius BETWEEN f.min_c AND f.max_c END"
                " FROM fridges f"
                " LEFT JOIN fridge_state s ON s.unit = f.id ORDER BY f.id"
            ).fetchall()
            return [
                FridgeView(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]))
                for r in rows
            ]

        return await self._run(q)

    async def zones(self) -> list[ZoneView]:
        def q(c: sqlite3.Connection) -> list[ZoneView]:
            rows = c.execute(
                "SELECT z.id, z.capacity, z.checkout, coalesce(o.occupancy, 0), coalesce(o.entered_total, 0),"
                " coalesce(o.exited_total, 0), o.ts_ms FROM zones z LEFT JOIN zone_occupancy o ON o.zone = z.id"
                " ORDER BY z.id"
            ).fetchall()
            return [ZoneView(r[0], r[1], bool(r[2]), *r[3:]) for r in rows]

        return await self._run(q)

    async def devices(self) -> list[DeviceView]:
        def q(c: sqlite3.Connection) -> list[DeviceView]:
            rows = c.execute(
                "SELECT id, kind, online, status_ms, last_seen_ms, last_ts_ms, messages FROM devices ORDER BY id"
            ).fetchall()
            return [DeviceView(r[0], r[1], None if r[2] is None else bool(r[2]), *r[3:]) for r in rows]

        return await self._run(q)

    async def quarantine(self, reason: str | None = None, limit: int = 100) -> QuarantineSummary:
        def q(c: sqlite3.Connection) -> QuarantineSummary:
            by_reason = dict(c.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason").fetchall())
            rows = c.execute(
                "SELECT id, received_ms, source, origin, device, reason, detail, payload FROM quarantine"
                " WHERE ? IS NULL OR reason = ? ORDER BY id DESC LIMIT ?",
                (reason, reason, limit),
            ).fetchall()
            views = [
                QuarantineView(
                    r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7] or b"").decode("utf-8", "replace")
                )
                for r in rows
            ]
            return QuarantineSummary(total=sum(by_reason.values()), by_reason=by_reason, rows=views)

        return await self._run(q)

    async def suspicious(self, reason: str | None = None, limit: int = 100) -> SuspiciousSummary:
        def q(c: sqlite3.Connection) -> SuspiciousSummary:
            by_reason = dict(c.execute("SELECT reason, count(*) FROM suspicious GROUP BY reason").fetchall())
            rows = c.execute(
                "SELECT s.id, s.received_ms, s.ts_ms, s.device, s.kind, s.reason, s.detail, s.purchase_id,"
                " p.lane, p.basket_id, p.total FROM suspicious s LEFT JOIN purchases p ON p.id = s.purchase_id"
                " WHERE ? IS NULL OR s.reason = ? ORDER BY s.id DESC LIMIT ?",
                (reason, reason, limit),
            ).fetchall()
            views = [SuspiciousView(*r) for r in rows]
            return SuspiciousSummary(total=sum(by_reason.values()), by_reason=by_reason, rows=views)

        return await self._run(q)

    async def summary(self) -> StoreSummary:
        def q(c: sqlite3.Connection) -> StoreSummary:
            counts = [
                c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed table names
                for table in ("readings", "purchases", "households", "outbox", "quarantine")
            ]
            return StoreSummary(self._store_id, *counts)

        return await self._run(q)

    async def alerts(self, state: str | None, limit: int) -> list[AlertEvent]:
        return await self._run(lambda c: list_alerts(c, state, limit))

    async def restock(self) -> list[RestockItem]:
        """Shelves that need stock, most urgent first: empty, then by predicted stock-out, then lowest."""

        def q(c: sqlite3.Connection) -> list[RestockItem]:
            rows = c.execute(
                "SELECT s.id, s.aisle, p.sku, p.name, st.items, s.capacity, st.stockout_ms, st.pick_rate_per_h"
                " FROM shelves s JOIN products p ON p.sku = s.sku JOIN shelf_state st ON st.shelf = s.id"
                " WHERE st.items IS NOT NULL AND (st.items <= ? OR st.stockout_ms <= ?)"
                " ORDER BY st.items > 0, coalesce(st.stockout_ms, 9e18), st.items * 1.0 / s.capacity",
                (self._low, int(time.time() * 1000) + self._restock_horizon_ms),
            ).fetchall()
            items = []
            for shelf, aisle, sku, name, count, capacity, stockout_ms, rate in rows:
                urgency = "empty" if count == 0 else "low" if count <= self._low else "soon"
                items.append(
                    RestockItem(
                        shelf, aisle, sku, name, count, capacity, capacity - count, urgency, stockout_ms, rate
                    )
                )
            return [i for i in items if i.urgency != "soon" or i.bring > 0]

        return await self._run(q)

    async def footfall(self, since_ms: int) -> list[FootfallHour]:
        def q(c: sqlite3.Connection) -> list[FootfallHour]:
            rows = c.execute(
                "SELECT zone, hour_ms, entered, exited, peak_occupancy, person_seconds, observed_s"
                " FROM footfall_hourly WHERE hour_ms >= ? ORDER BY hour_ms, zone",
                (since_ms,),
            ).fetchall()
            return [
                FootfallHour(
                    zone,
                    hour,
                    entered,
                    exited,
                    peak,
                    round(person_s / observed_s, 2) if observed_s else 0.0,
                    round(person_s / entered, 1) if entered else None,
                )
                for zone, hour, entered, exited, peak, person_s, observed_s in rows
            ]

        return await self._run(q)
