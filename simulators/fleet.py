"""The store's devices as one fleet: world events and samples in, wire messages out. No I/O.

`StoreDevices` owns every device model (`simulators.devices`), every device's ``seq`` counter and the
fault injector, and decides which transport each message takes: load cells on shelves with
``transport = "serial"`` speak through the legacy controller, everything else has its own MQTT
connection. The runner only moves the resulting `Outgoing` messages.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from sensors.planogram import Planogram
from sensors.schemas import (
    FootfallPayload,
    FridgeTemperaturePayload,
    PosTransactionPayload,
    ShelfEventPayload,
    ShelfWeightPayload,
    device_id,
)
from simulators.clock import SimClock
from simulators.devices import FootfallCounter, FridgeThermometer, LoadCell, SequenceCounter, basket_items
from simulators.faults import FaultInjector, Transport
from simulators.messages import (
    MESSAGE_KINDS,
    MessageKind,
    Outgoing,
    SensorMessage,
    SensorPayload,
    as_mqtt,
    as_serial,
)
from simulators.store import (
    BasketPaid,
    FridgeDoorOpened,
    ItemsPicked,
    ItemsPutBack,
    ShelfRestocked,
    WorldEvent,
    ZoneCrossed,
)

# Builds a kind's payload around a seq, so a message displaced by a fault can be rebuilt with the next one.
PayloadBuilder = Callable[[int], SensorPayload]


class StoreDevices:
    """Every simulated device of one store: its model, its ``seq`` counter and its transport."""

    def __init__(
        self,
        store_id: str,
        planogram: Planogram,
        clock: SimClock,
        seed: int,
        fault_rate: float = 0.0,
        *,
        serial_enabled: bool = True,
        prices: Mapping[str, float] | None = None,
    ) -> None:
        self._store_id = store_id
        self._planogram = planogram
        self._clock = clock
        self._faults = FaultInjector(fault_rate, store_id, planogram.devices, random.Random(f"{seed}/faults"))
        self._sequences: dict[str, SequenceCounter] = {
            device: SequenceCounter() for device in planogram.devices
        }
        self._load_cells = {
            shelf.id: LoadCell(shelf, random.Random(f"{seed}/load-cell/{shelf.id}"))
            for shelf in planogram.shelves.values()
        }
        self._thermometers = {
            fridge.id: FridgeThermometer.for_fridge(fridge, random.Random(f"{seed}/thermometer/{fridge.id}"))
            for fridge in planogram.fridges.values()
        }
        self._footfall = {zone_id: FootfallCounter() for zone_id in planogram.zones}
        self._footfall_reported_s = dict.fromkeys(planogram.zones, 0.0)
        self._serial_shelves = frozenset(s.id for s in planogram.shelves.values() if s.transport == "serial")
        self._serial_enabled = serial_enabled
        self._prices = prices  # the store catalog's shelf prices (sku -> price); None: derived from the SKU
        self._baskets_per_lane = dict.fromkeys(planogram.tills, 0)
        # Basket ids must differ between runs (same seed, same lane, same count) or the daemon would
        # take a rerun's baskets for duplicates: prefix them with the run's start time.
        self._run_tag = f"{clock.wall_start_ms:x}"

    # -- what exists --------------------------------------------------------------------------------
    @property
    def mqtt_devices(self) -> tuple[str, ...]:
        """Devices with their own MQTT connection, in planogram order."""
        shelves = [device_id("shelf", s) for s in self._planogram.shelves if s not in self._serial_shelves]
        return (
            *shelves,
            *(device_id("fridge", f) for f in self._planogram.fridges),
            *(device_id("footfall", z) for z in self._planogram.zones),
            *(device_id("pos", lane) for lane in self._planogram.tills),
        )

    @property
    def serial_shelves(self) -> frozenset[str]:
        return self._serial_shelves

    def last_seq(self, device: str) -> int:
        return self._sequences[device].last

    def thermometer(self, fridge_id: str) -> FridgeThermometer:
        return self._thermometers[fridge_id]

    # -- inputs -------------------------------------------------------------------------------------
    def on_world_events(self, events: Iterable[WorldEvent]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for event in events:
            match event:
                case ItemsPicked(sim_ms, shelf_id, count):
                    out += self._shelf_event(shelf_id, "pick", count, self._clock.wire_ts_for_sim(sim_ms))
                case ItemsPutBack(sim_ms, shelf_id, count):
                    out += self._shelf_event(shelf_id, "put", count, self._clock.wire_ts_for_sim(sim_ms))
                case ZoneCrossed(_, zone_id, entered):
                    self._footfall[zone_id].record(entered=entered)
                case BasketPaid():
                    out += self._basket(event)
                case FridgeDoorOpened(sim_ms, fridge_id):
                    self._thermometers[fridge_id].open_door(self._clock.elapsed_for_sim(sim_ms))
                case ShelfRestocked():
                    pass  # staff do not press a button: the load cell's weight jump is the only trace
        return out

    def sample_weight(self, shelf_id: str, items: int, elapsed_s: float) -> list[Outgoing]:
        grams = self._load_cells[shelf_id].read(items, elapsed_s)
        ts_ms = self._clock.wire_ts_ms(elapsed_s)
        return self._emit(
            MessageKind.WEIGHT,
            shelf_id,
            lambda seq: ShelfWeightPayload(ts=ts_ms, seq=seq, grams=grams),
        )

    def sample_temperature(self, fridge_id: str, elapsed_s: float) -> list[Outgoing]:
        celsius = self._thermometers[fridge_id].read(elapsed_s)
        ts_ms = self._clock.wire_ts_ms(elapsed_s)
        return self._emit(
            MessageKind.TEMPERATURE,
            fridge_id,
            lambda seq: FridgeTemperaturePayload(ts=ts_ms, seq=seq, celsius=celsius),
        )

    def report_footfall(self, zone_id: str, elapsed_s: float) -> list[Outgoing]:
        entered, exited = self._footfall[zone_id].take()
        # interval_s is the real time since the last report: the daemon reads rates against ts.
        interval_s = round(max(0.001, elapsed_s - self._footfall_reported_s[zone_id]), 3)
        self._footfall_reported_s[zone_id] = elapsed_s
        ts_ms = self._clock.wire_ts_ms(elapsed_s)
        return self._emit(
            MessageKind.FOOTFALL,
            zone_id,
            lambda seq: FootfallPayload(
                ts=ts_ms, seq=seq, entered=entered, exited=exited, interval_s=interval_s
            ),
        )

    # -- helpers ------------------------------------------------------------------------------------
    def _shelf_event(
        self, shelf_id: str, action: Literal["pick", "put"], count: int, ts_ms: int
    ) -> list[Outgoing]:
        return self._emit(
            MessageKind.EVENT,
            shelf_id,
            lambda seq: ShelfEventPayload(ts=ts_ms, seq=seq, action=action, count=count),
        )

    def _basket(self, basket: BasketPaid) -> list[Outgoing]:
        items, total = basket_items(basket.lines, self._prices)
        if not items:
            return []
        self._baskets_per_lane[basket.lane] += 1
        lane_tag = basket.lane if len(basket.lane) <= 32 else f"{zlib.crc32(basket.lane.encode()):08x}"
        basket_id = f"{self._run_tag}-{lane_tag}-{self._baskets_per_lane[basket.lane]:06d}"
        ts_ms = self._clock.wire_ts_for_sim(basket.sim_ms)
        return self._emit(
            MessageKind.TRANSACTION,
            basket.lane,
            lambda seq: PosTransactionPayload(
                ts=ts_ms, seq=seq, basket_id=basket_id, items=items, total=total, loyalty_id=basket.loyalty_id
            ),
        )

    def _emit(self, kind: MessageKind, subject: str, build: PayloadBuilder) -> list[Outgoing]:
        transport: Transport = (
            "serial"
            if kind in (MessageKind.WEIGHT, MessageKind.EVENT) and (subject in self._serial_shelves)
            else "mqtt"
        )
        if transport == "serial" and not self._serial_enabled:
            return []  # no serial link configured: the legacy controller is unplugged
        sequence = self._sequences[device_id(MESSAGE_KINDS[kind].device_kind, subject)]
        message = SensorMessage(kind, subject, build(sequence.next()))
        if self._faults.should_corrupt():
            malformed = self._faults.corrupt(message, transport)
            if malformed is not None:
                # The malformed message has consumed ``message``'s seq (see simulators.faults).
                if MESSAGE_KINDS[kind].sampled:
                    return [malformed]
                message = SensorMessage(kind, subject, build(sequence.next()))
                return [malformed, self._wrap(message, transport)]
        return [self._wrap(message, transport)]

    def _wrap(self, message: SensorMessage, transport: Transport) -> Outgoing:
        return as_serial(message) if transport == "serial" else as_mqtt(message, self._store_id)
