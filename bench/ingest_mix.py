"""The realistic sensor mix for bench/ingest.py: the demo store's devices, in the simulators' wire format.

Proportions follow the simulators' cadences on the demo store (simulators/runner.py,
simulators/demo_store/planogram.toml): 35 MQTT load cells at 1 Hz (35 msg/s), 4 fridges every 5 s
(0.8/s), 6 footfall zones every 10 s (0.6/s), and from shoppers about 1.5 pick/put events and 0.6
baskets a second in a busy hour. Per 1,000 messages: 900 shelf weights, 40 shelf events, 25 fridge
temperatures, 20 footfall counts, 15 till baskets (1-25 lines, 70% with a loyalty card out of 500).
Weights come from `simulators.devices.LoadCell` (noise and drift on tare + items x unit) and drop when
a pick event takes items off that shelf; temperatures from `FridgeThermometer`; baskets from
`basket_items`. Payloads are the `sensors.schemas` structs encoded with msgspec, as the simulators send
them (`simulators.messages.SensorMessage.encode`). ``ts`` is the publish time (epoch ms).

Each publisher process owns a disjoint set of devices (device i goes to publisher i % publishers), so
per-device ``seq`` counters stay exact.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from sensors.planogram import Planogram, load_planogram
from sensors.schemas import (
    FootfallPayload,
    FridgeTemperaturePayload,
    PosTransactionPayload,
    ShelfEventPayload,
    ShelfWeightPayload,
)
from simulators.devices import FridgeThermometer, LoadCell, SequenceCounter, basket_items

REPO = Path(__file__).resolve().parent.parent
PLANOGRAM = REPO / "simulators" / "demo_store" / "planogram.toml"
STORE = "demo"
# Per 1,000 messages (see the module docstring).
MIX: tuple[tuple[str, int], ...] = (
    ("weight", 900),
    ("event", 40),
    ("temperature", 25),
    ("footfall", 20),
    ("transaction", 15),
)
CARDS = [f"4000{n:012d}" for n in range(500)]

Message = tuple[str, bytes]  # (topic, payload)


@dataclass(slots=True)
class _Shelf:
    cell: LoadCell
    items: int
    seq: SequenceCounter = field(default_factory=SequenceCounter)


@dataclass
class MixSource:
    """Builds the next message of one publisher's share of the store, stamped at the time it is built."""

    index: int
    publishers: int
    seed: int = 1
    planogram: Planogram = field(default_factory=lambda: load_planogram(PLANOGRAM))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed * 1_000 + self.index)
        p = self.planogram
        mqtt_shelves = [s.id for s in p.shelves.values() if s.transport == "mqtt"]
        self._shelves = {
            sid: _Shelf(LoadCell(p.shelves[sid], self._rng), p.shelves[sid].capacity)
            for sid in self._mine(mqtt_shelves)
        }
        self._fridges = {
            fid: (FridgeThermometer.for_fridge(p.fridges[fid], self._rng), SequenceCounter())
            for fid in self._mine(list(p.fridges))
        }
        self._zones = {zid: SequenceCounter() for zid in self._mine(list(p.zones))}
        self._tills = {lane: SequenceCounter() for lane in self._mine(list(p.tills))}
        self._skus = sorted({s.sku for s in p.shelves.values()})
        # A publisher that owns no device of a kind (more publishers than fridges) sends none of it.
        owned = {"event": self._shelves, "temperature": self._fridges, "footfall": self._zones,
                 "transaction": self._tills, "weight": self._shelves}  # fmt: skip
        self._kinds = [kind for kind, _ in MIX if owned[kind]]
        self._weights = [weight for kind, weight in MIX if owned[kind]]
        self._baskets = 0
        self._started = time.monotonic()

    def _mine(self, ids: list[str]) -> list[str]:
        return [d for i, d in enumerate(sorted(ids)) if i % self.publishers == self.index]

    def next(self) -> Message:
        kind = self._rng.choices(self._kinds, self._weights)[0]
        now_ms = int(time.time() * 1000)
        if kind == "event":
            return self._event(now_ms)
        if kind == "temperature":
            unit = self._rng.choice(list(self._fridges))
            thermometer, seq = self._fridges[unit]
            body = FridgeTemperaturePayload(
                now_ms, seq.next(), thermometer.read(time.monotonic() - self._started)
            )
            return f"store/{STORE}/fridge/{unit}/temperature", msgspec.json.encode(body)
        if kind == "footfall":
            zone = self._rng.choice(list(self._zones))
            entered, exited = self._rng.randint(0, 8), self._rng.randint(0, 8)
            body_f = FootfallPayload(now_ms, self._zones[zone].next(), entered, exited, 10.0)
            return f"store/{STORE}/footfall/{zone}", msgspec.json.encode(body_f)
        if kind == "transaction":
            return self._basket(now_ms)
        shelf_id = self._rng.choice(list(self._shelves))
        shelf = self._shelves[shelf_id]
        grams = shelf.cell.read(shelf.items, time.monotonic() - self._started)
        body_w = ShelfWeightPayload(now_ms, shelf.seq.next(), grams)
        return f"store/{STORE}/shelf/{shelf_id}/weight", msgspec.json.encode(body_w)

    def _event(self, now_ms: int) -> Message:
        shelf_id = self._rng.choice(list(self._shelves))
        shelf = self._shelves[shelf_id]
        if shelf.items == 0:  # restocked by staff, the controller reports the put-back
            count, action = shelf.cell.shelf.capacity, "put"
            shelf.items = count
        else:
            count, action = min(shelf.items, self._rng.choice((1, 1, 1, 2))), "pick"
            shelf.items -= count
        body = ShelfEventPayload(now_ms, shelf.seq.next(), action, count)  # type: ignore[arg-type]
        return f"store/{STORE}/shelf/{shelf_id}/event", msgspec.json.encode(body)

    def _basket(self, now_ms: int) -> Message:
        lane = self._rng.choice(list(self._tills))
        lines = [
            (self._rng.choice(self._skus), self._rng.randint(1, 3)) for _ in range(self._rng.randint(1, 25))
        ]
        items, total = basket_items(lines)
        self._baskets += 1
        card = self._rng.choice(CARDS) if self._rng.random() < 0.7 else None
        body = PosTransactionPayload(
            now_ms,
            self._tills[lane].next(),
            f"bench-{self.index}-{lane}-{self._baskets}",
            items,
            total,
            card,
        )
        return f"store/{STORE}/pos/{lane}/transaction", msgspec.json.encode(body)


def flood_message(index: int, n: int, shelves: list[str]) -> Message:
    """The single-topic flood's message: shelf weights of a constant 1 kg (and ``t``, the publish time)."""
    shelf = shelves[n % len(shelves)]
    body = msgspec.json.encode(
        {"ts": int(time.time() * 1000), "seq": n // len(shelves) + 1, "grams": 1000.0, "t": time.time()}
    )
    del index
    return f"store/{STORE}/shelf/{shelf}/weight", body
