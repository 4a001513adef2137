"""The device fleet as the runner drives it, without I/O: seq, ts, fault accounting, routing."""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from sensors.decode import Decoder
from sensors.planogram import Planogram
from sensors.schemas import (
    DeviceStatus,
    FootfallCount,
    PosTransaction,
    Rejection,
    SequencedReading,
    ShelfEvent,
)
from simulators.clock import SimClock
from simulators.faults import FAULTS_BY_KIND, FaultKind
from simulators.fleet import StoreDevices
from simulators.messages import MqttOut, Outgoing, SerialOut
from simulators.store import StoreWorld, WorldStats

STORE_ID = "test-store"
NOON = int(datetime(2025, 3, 3, 12, tzinfo=UTC).timestamp() * 1000)
WALL_START = 1_800_000_000_000


@dataclass(frozen=True)
class Drive:
    outgoing: list[Outgoing]
    stats: WorldStats


def _drive(
    planogram: Planogram,
    *,
    seconds: float,
    speed: float = 600.0,
    fault_rate: float = 0.0,
    seed: int = 1,
    serial: bool = True,
) -> Drive:
    """What the runner does, in simulated real time: advance the world every 0.1 s, sample weights at
    1 Hz, temperatures every 5 s, footfall every 10 s and once more at the end."""
    clock = SimClock(NOON, WALL_START, speed)
    world = StoreWorld(planogram, seed, NOON, speed)
    fleet = StoreDevices(STORE_ID, planogram, clock, seed, fault_rate, serial_enabled=serial)
    out: list[Outgoing] = []
    for tick in range(round(seconds * 10) + 1):
        now = tick / 10
        out += fleet.on_world_events(world.advance_to(clock.sim_ms(now)))
        if tick % 10 == 0:
            for shelf_id in planogram.shelves:
                out += fleet.sample_weight(shelf_id, world.items_on(shelf_id), now)
        if tick % 50 == 0:
            for fridge_id in planogram.fridges:
                out += fleet.sample_temperature(fridge_id, now)
        if tick % 100 == 0 and tick:
            for zone_id in planogram.zones:
                out += fleet.report_footfall(zone_id, now)
    for zone_id in planogram.zones:
        out += fleet.report_footfall(zone_id, seconds)
    return Drive(out, world.stats())


def _decode(decoder: Decoder, out: Outgoing) -> SequencedReading | Rejection:
    result = (
        decoder.decode_mqtt(out.topic, out.payload)
        if isinstance(out, MqttOut)
        else decoder.decode_serial("pty", out.line)
    )
    assert not isinstance(result, DeviceStatus), "the fleet sends no status messages"
    return result


def _claimed_seq(out: Outgoing) -> int | None:
    """The seq a malformed message carries, where one can be read at all."""
    if isinstance(out, SerialOut):
        fields = out.line.split(b"*")[0].split(b",")
        return int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
    try:
        payload = json.loads(out.payload)
    except ValueError:
        return None
    seq = payload.get("seq") if isinstance(payload, dict) else None
    return seq if isinstance(seq, int) else None


@pytest.fixture(scope="module")
def faulty_run(demo_planogram: Planogram) -> Drive:
    return _drive(demo_planogram, seconds=60, fault_rate=0.25)


@pytest.fixture
def late_decoder(demo_planogram: Planogram) -> Decoder:
    # The drive is simulated; the decoder's "now" is just after it so no ts looks like it is in the future.
    return Decoder(STORE_ID, demo_planogram, clock=lambda: WALL_START / 1000 + 3_600)


def test_valid_messages_have_monotonic_seq_from_one_and_ordered_ts(
    faulty_run: Drive, late_decoder: Decoder
) -> None:
    by_device: dict[str, list[SequencedReading]] = collections.defaultdict(list)
    malformed_before_first_valid: collections.Counter[str] = collections.Counter()
    for out in faulty_run.outgoing:
        if out.fault is None:
            reading = _decode(late_decoder, out)
            assert not isinstance(reading, Rejection), (out, reading)
            by_device[reading.device].append(reading)
        elif out.device not in by_device:
            malformed_before_first_valid[out.device] += 1
    assert len(by_device) == 49 + 5  # every MQTT device and the five serial shelves
    for device, readings in by_device.items():
        seqs = [r.seq for r in readings]
        assert seqs == sorted(set(seqs)), device
        # Counting starts at 1; each malformed message sent before the first valid one used up a seq.
        assert seqs[0] == 1 + malformed_before_first_valid[device], device
        stamps = [r.ts_ms for r in readings]
        assert stamps == sorted(stamps), device


def test_malformed_messages_never_claim_a_seq_a_valid_message_uses(
    faulty_run: Drive, late_decoder: Decoder
) -> None:
    claimed: dict[str, list[int]] = collections.defaultdict(list)
    for out in faulty_run.outgoing:
        if out.fault is None:
            reading = _decode(late_decoder, out)
            assert not isinstance(reading, Rejection)
            claimed[reading.device].append(reading.seq)
        elif (seq := _claimed_seq(out)) is not None:
            claimed[out.device].append(seq)
    for device, seqs in claimed.items():
        duplicates = [seq for seq, n in collections.Counter(seqs).items() if n > 1]
        assert not duplicates, f"{device} reuses seq {duplicates}"


def test_every_malformed_message_is_rejected_for_its_declared_reason(
    faulty_run: Drive, late_decoder: Decoder
) -> None:
    faults = collections.Counter(out.fault for out in faulty_run.outgoing if out.fault)
    assert set(faults) == set(FaultKind.__members__.values()), "a minute at 25% exercises every kind"
    for out in faulty_run.outgoing:
        if out.fault is not None:
            result = _decode(late_decoder, out)
            assert isinstance(result, Rejection), out
            assert result.reason == FAULTS_BY_KIND[FaultKind(out.fault)].expected


def test_faults_never_lose_accounting_messages(faulty_run: Drive, late_decoder: Decoder) -> None:
    readings = [_decode(late_decoder, out) for out in faulty_run.outgoing if out.fault is None]
    events = [r for r in readings if isinstance(r, ShelfEvent)]
    stats = faulty_run.stats
    assert len([e for e in events if e.action == "pick"]) == stats.picks
    assert sum(e.count for e in events if e.action == "pick") == stats.items_picked
    assert len([e for e in events if e.action == "put"]) == stats.put_backs
    assert len([r for r in readings if isinstance(r, PosTransaction)]) == stats.baskets
    footfall = [r for r in readings if isinstance(r, FootfallCount)]
    assert (
        sum(f.entered for f in footfall if f.zone == "entrance")
        == 2 * stats.shoppers - stats.shoppers_in_store
    )
    assert sum(f.entered for f in footfall) - sum(f.exited for f in footfall) == stats.shoppers_in_store
    assert stats.baskets > 5
    assert stats.picks > 20


def test_fault_rate_zero_sends_nothing_malformed(demo_planogram: Planogram) -> None:
    assert not any(out.fault for out in _drive(demo_planogram, seconds=20).outgoing)


def test_same_seed_same_messages(demo_planogram: Planogram) -> None:
    first = _drive(demo_planogram, seconds=20, fault_rate=0.1, seed=5).outgoing
    second = _drive(demo_planogram, seconds=20, fault_rate=0.1, seed=5).outgoing
    other = _drive(demo_planogram, seconds=20, fault_rate=0.1, seed=6).outgoing
    assert first == second
    assert first != other


def test_serial_shelves_speak_serial_and_everything_else_mqtt(
    faulty_run: Drive, demo_planogram: Planogram
) -> None:
    serial_shelves = {s.id for s in demo_planogram.shelves.values() if s.transport == "serial"}
    assert serial_shelves == {f"A6-{n}" for n in range(1, 6)}
    serial_devices = {f"shelf-{s}" for s in serial_shelves}
    for out in faulty_run.outgoing:
        assert isinstance(out, SerialOut) == (out.device in serial_devices), out
    lines = [out.line for out in faulty_run.outgoing if isinstance(out, SerialOut) and out.fault is None]
    assert any(line.startswith(b"$WGT,") for line in lines)
    assert any(line.startswith(b"$EVT,") for line in lines)


def test_without_a_serial_link_the_legacy_shelves_are_silent(demo_planogram: Planogram) -> None:
    drive = _drive(demo_planogram, seconds=10, serial=False)
    assert not any(isinstance(out, SerialOut) for out in drive.outgoing)


def test_mqtt_devices_are_every_device_but_the_serial_shelves(demo_planogram: Planogram) -> None:
    fleet = StoreDevices(STORE_ID, demo_planogram, SimClock(NOON, WALL_START, 60.0), 1)
    devices = fleet.mqtt_devices
    assert len(devices) == len(set(devices)) == 35 + 4 + 6 + 4
    assert set(devices) | {f"shelf-A6-{n}" for n in range(1, 6)} == demo_planogram.devices
