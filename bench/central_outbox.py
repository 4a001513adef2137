"""The stores' outboxes for bench/central.py: one store's changes in the daemon's exact row shapes.

The demo planogram's shelves, fridges, zones and tills, the mix of change kinds, and `StoreOutbox`,
which writes each kind as the body of the daemon's `OutboxEntry(...)` (readings, compaction aggregates,
purchases and their prediction outcomes, consents, list feedback, alerts, device status, erasures,
bundle reports). Imported as `bench.central_outbox` (bench/central.py puts the repo root on sys.path).
"""

from __future__ import annotations

import functools
import hashlib
import random
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from edge.state.alerts import AlertEvent
from sensors.schemas import (
    DeviceStatus,
    FootfallCount,
    FridgeTemperature,
    ShelfEvent,
    ShelfWeight,
)
from sync.schemas import BundleReport, ReadingAggregate

REPO = Path(__file__).resolve().parent.parent

PLANOGRAM = tomllib.loads((REPO / "simulators" / "demo_store" / "planogram.toml").read_text())
SHELVES = [(s["id"], s["sku"], s["category"]) for s in PLANOGRAM["shelves"]]
FRIDGES = [f["id"] for f in PLANOGRAM["fridges"]]
ZONES = [z["id"] for z in PLANOGRAM["zones"]]
LANES = [t["lane"] for t in PLANOGRAM["tills"]]
CATEGORIES = sorted({c for _, _, c in SHELVES})
DEVICES = (
    [f"shelf-{s}" for s, _, _ in SHELVES]
    + [f"fridge-{f}" for f in FRIDGES]
    + [f"footfall-{z}" for z in ZONES]
    + [f"pos-{lane}" for lane in LANES]
)
ALERT_KINDS = [
    "low_stock",
    "empty_shelf",
    "stockout_soon",
    "fridge_excursion",
    "device_offline",
    "sensor_silent",
]
MODEL = "next_purchase-2024-10-01-39fb781b-b7ddebe9"
BASKET_MODEL = "next_basket-2024-10-01-5c2e07aa-1d9b3f60"

# The mix, by share of changes (cumulative thresholds below). Raw readings are the busy store of
# bench/sync.py (70/10/10/7 of its readings); customer-facing changes are a few percent.
MIX = (
    ("shelf_weight", 0.638),
    ("shelf_event", 0.090),
    ("fridge_temperature", 0.090),
    ("footfall", 0.063),
    ("reading_aggregate", 0.002),  # blocks of 100, as a compaction step writes them (--aggregates)
    ("purchase", 0.030),  # and ~1 prediction_outcome per purchase of a household with predictions
    ("consent", 0.003),
    ("list_feedback", 0.005),
    ("alert", 0.004),
    ("device_status", 0.003),
    ("erasure", 0.00002),
)
AGGREGATE_BLOCK = 100
HOUSEHOLDS = 100_000  # the chain's customers (DESIGN.md)
encoder = msgspec.json.Encoder()


@functools.lru_cache(maxsize=4)
def household_ids(n: int, seed: int) -> list[str]:
    """``n`` pseudonyms in the daemon's shape (``hh_`` + 32 hex of an HMAC; here a hash of the index)."""
    return [f"hh_{hashlib.sha256(f'{seed}:{i}'.encode()).hexdigest()[:32]}" for i in range(n)]


# -- a store's outbox ---------------------------------------------------------------------------------

Row = tuple[int, int, str, str, bytes]  # seq, created_ms, kind, entity, body


class StoreOutbox:
    """One store's outbox, generated in the daemon's row shapes, in seq order.

    Households: the chain's ``households`` are split by home store (``index % stores``); 90% of a store's
    loyalty baskets are its own households, 10% any household of the chain (households span stores).
    Compaction: every `AGGREGATE_BLOCK` aggregates stand for raw readings the store compacted away
    before central saw them (their seqs are skipped and listed in ``replaces``, 5-20 each)."""

    def __init__(
        self,
        index: int,
        stores: int,
        seed: int,
        households: list[str],
        seq0: int = 1,
        ids0: int = 1,
        aggregates: float = 0.002,
    ) -> None:
        self.index = index
        self.name = f"store-{index:03d}"
        self.rng = random.Random(seed * 1_000_003 + index * 7919 + seq0)
        self.seq = seq0
        self.ids = ids0  # alert ids, basket numbers, device seqs: unique per generator instance
        self.own = households[index::stores] or households
        self.households = households
        self.thresholds: list[tuple[str, float]] = []
        acc = 0.0
        for kind, share in MIX:  # a roll that starts an aggregate block brings AGGREGATE_BLOCK changes
            acc += aggregates / AGGREGATE_BLOCK if kind == "reading_aggregate" else share
            self.thresholds.append((kind, acc))
        self.pending_aggregates = 0

    def _next(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq

    def _household(self) -> str:
        pool = self.own if self.rng.random() < 0.9 else self.households
        return pool[self.rng.randrange(len(pool))]

    def rows(self, n: int, start_ms: int, end_ms: int) -> list[Row]:
        """``n`` changes created between ``start_ms`` and ``end_ms`` (evenly), in seq order."""
        out: list[Row] = []
        step = (end_ms - start_ms) / max(n, 1)
        for i in range(n):
            ts = int(start_ms + i * step)
            if self.pending_aggregates:
                self.pending_aggregates -= 1
                out.append(self._aggregate(ts))
                continue
            roll = self.rng.random()
            kind = next((k for k, t in self.thresholds if roll < t), "shelf_weight")
            if kind == "reading_aggregate":
                self.pending_aggregates = AGGREGATE_BLOCK - 1
                out.append(self._aggregate(ts))
            elif kind == "purchase":
                out.extend(self._purchase(ts))
            else:
                out.append(getattr(self, "_" + kind)(ts))
        return out

    # -- each kind, as the daemon writes it ------------------------------------------------------------
    def _reading(self, ts: int, reading: Any) -> Row:
        return (self._next(), ts, "reading", reading.device, encoder.encode(reading))

    def _shelf_weight(self, ts: int) -> Row:
        shelf = SHELVES[self.seq % len(SHELVES)][0]
        self.ids += 1
        r = ShelfWeight(f"shelf-{shelf}", shelf, self.ids, ts, round(self.rng.uniform(0, 5000), 1))
        return self._reading(ts, r)

    def _shelf_event(self, ts: int) -> Row:
        shelf = SHELVES[self.rng.randrange(len(SHELVES))][0]
        self.ids += 1
        action = "pick" if self.rng.random() < 0.8 else "put"
        return self._reading(
            ts, ShelfEvent(f"shelf-{shelf}", shelf, self.ids, ts, action, self.rng.randint(1, 3))
        )

    def _fridge_temperature(self, ts: int) -> Row:
        unit = FRIDGES[self.rng.randrange(len(FRIDGES))]
        self.ids += 1
        r = FridgeTemperature(f"fridge-{unit}", unit, self.ids, ts, round(self.rng.uniform(1, 6), 2))
        return self._reading(ts, r)

    def _footfall(self, ts: int) -> Row:
        zone = ZONES[self.rng.randrange(len(ZONES))]
        self.ids += 1
        r = FootfallCount(
            f"footfall-{zone}", zone, self.ids, ts, self.rng.randint(0, 9), self.rng.randint(0, 9), 60.0
        )
        return self._reading(ts, r)

    def _aggregate(self, ts: int) -> Row:
        """A compaction aggregate of one device-minute an hour or more before ``ts``."""
        replaces = [self._next() for _ in range(self.rng.randint(5, 20))]  # compacted away, never sent
        minute = (ts - 3_600_000 - self.rng.randrange(0, 86_400_000)) // 60_000 * 60_000
        n = len(replaces)
        pick = self.rng.random()
        if pick < 0.6:
            shelf = SHELVES[self.rng.randrange(len(SHELVES))][0]
            lo = self.rng.uniform(0, 4000)
            agg = ReadingAggregate(
                "shelf_weight", f"shelf-{shelf}", shelf, minute, n, minute + 1000, minute + 59_000, replaces,
                min=round(lo, 1), max=round(lo + 200, 1), sum=round(n * (lo + 100), 1), last=round(lo + 50, 1),
            )  # fmt: skip
        elif pick < 0.75:
            shelf = SHELVES[self.rng.randrange(len(SHELVES))][0]
            agg = ReadingAggregate(
                "shelf_event", f"shelf-{shelf}", shelf, minute, n, minute + 1000, minute + 59_000, replaces,
                picks=self.rng.randint(0, n), puts=self.rng.randint(0, 2),
            )  # fmt: skip
        elif pick < 0.9:
            unit = FRIDGES[self.rng.randrange(len(FRIDGES))]
            agg = ReadingAggregate(
                "fridge_temperature", f"fridge-{unit}", unit, minute, n, minute + 1000, minute + 59_000, replaces,
                min=2.1, max=4.9, sum=round(n * 3.5, 2), last=3.4,
            )  # fmt: skip
        else:
            zone = ZONES[self.rng.randrange(len(ZONES))]
            agg = ReadingAggregate(
                "footfall", f"footfall-{zone}", zone, minute, n, minute + 1000, minute + 59_000, replaces,
                entered=self.rng.randint(0, 40), exited=self.rng.randint(0, 40), interval_s=60.0 * n,
            )  # fmt: skip
        return (self._next(), ts, "reading_aggregate", agg.device, encoder.encode(agg))

    def _purchase(self, ts: int) -> list[Row]:
        rng = self.rng
        self.ids += 1
        basket = f"{self.name}-b{self.ids}"
        household = self._household() if rng.random() < 0.7 else None
        lines = [SHELVES[rng.randrange(len(SHELVES))] for _ in range(rng.randint(1, 8))]
        items = [
            {"sku": sku, "qty": rng.randint(1, 3), "unit_price": round(rng.uniform(0.5, 9), 2)}
            for _, sku, _ in lines
        ]
        total = round(sum(i["qty"] * i["unit_price"] for i in items), 2)  # type: ignore[misc]
        body = {
            "lane": LANES[rng.randrange(len(LANES))],
            "basket_id": basket,
            "household": household,
            "ts_ms": ts,
            "total": total,
            "items": items,
        }
        rows: list[Row] = [(self._next(), ts, "purchase", basket, encoder.encode(body))]
        if household is not None and rng.random() < 0.5:  # its predictions meet their outcome
            for category in sorted({c for _, _, c in lines})[: rng.randint(1, 3)]:
                scored = ts - rng.randrange(3_600_000, 7 * 86_400_000)
                outcome = {
                    "household": household,
                    "category": category,
                    "model_version": MODEL,
                    "basket_model_version": BASKET_MODEL,
                    "scored_ms": scored,
                    "expected_days": round(rng.uniform(1, 20), 2),
                    "p7": round(rng.random(), 4),
                    "basket_probability": round(rng.random(), 4),
                    "urgency": rng.choice(["urgent", "upcoming", "usual"]),
                    "list_rank": rng.randint(1, 12),
                    "purchased_ms": ts,
                    "actual_days": (ts - scored) // 86_400_000,
                }
                rows.append(
                    (
                        self._next(),
                        ts,
                        "prediction_outcome",
                        f"{household}:{category}",
                        encoder.encode(outcome),
                    )
                )
        return rows

    def _consent(self, ts: int) -> Row:
        household = self._household()
        body = {
            "household": household,
            "personalisation": self.rng.random() < 0.7,
            "analytics": self.rng.random() < 0.8,
            "ts_ms": ts,
        }
        return (self._next(), ts, "consent", household, encoder.encode(body))

    def _list_feedback(self, ts: int) -> Row:
        household = self._household()
        body = {
            "household": household,
            "category": CATEGORIES[self.rng.randrange(len(CATEGORIES))],
            "vote": "up" if self.rng.random() < 0.7 else "down",
            "model_version": MODEL,
            "ts_ms": ts,
        }
        return (self._next(), ts, "list_feedback", household, encoder.encode(body))

    def _alert(self, ts: int) -> Row:
        self.ids += 1
        kind = ALERT_KINDS[self.rng.randrange(len(ALERT_KINDS))]
        subject = SHELVES[self.rng.randrange(len(SHELVES))][0]
        resolved = self.rng.random() < 0.5
        event = AlertEvent(
            id=self.ids,
            kind=kind,
            subject=subject,
            severity="warning",
            state="resolved" if resolved else "open",
            message=f"{subject}: {kind.replace('_', ' ')}",
            opened_ms=ts - 600_000 if resolved else ts,
            updated_ms=ts,
            detail={"shelf": subject},
            resolved_ms=ts if resolved else None,
            resolved_by="system" if resolved else None,
        )
        return (self._next(), ts, "alert", f"{kind}:{subject}", encoder.encode(event))

    def _device_status(self, ts: int) -> Row:
        device = DEVICES[self.rng.randrange(len(DEVICES))]
        status = DeviceStatus(device, self.rng.random() < 0.7, ts)
        return (self._next(), ts, "device_status", device, encoder.encode(status))

    def _erasure(self, ts: int) -> Row:
        household = self._household()
        return (
            self._next(),
            ts,
            "erasure",
            household,
            encoder.encode({"household": household, "ts_ms": ts}),
        )

    def bundle(self, ts: int) -> Row:
        report = BundleReport("model", 3, "ab" * 32, "activated")
        return (self._next(), ts, "bundle", "model", encoder.encode(report))
