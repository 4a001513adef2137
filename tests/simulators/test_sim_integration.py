"""End to end: `run_simulation` against a real broker, with the legacy controller on a real PTY."""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import serial

from sensors.decode import Decoder
from sensors.planogram import Planogram
from sensors.schemas import (
    DeviceStatus,
    FootfallCount,
    FridgeTemperature,
    PosTransaction,
    Rejection,
    SequencedReading,
    ShelfEvent,
    ShelfWeight,
)
from simulators import SimulatorSettings, run_simulation
from simulators.faults import FAULTS_BY_KIND, FaultKind

STORE_ID = "it-store"
NOON = int(datetime(2025, 3, 3, 12, tzinfo=UTC).timestamp() * 1000)


def _read_serial(link: Path, lines: list[bytes], stop: threading.Event) -> None:
    """Read the controller's port as the daemon would, until told to stop or the port goes away."""
    deadline = time.monotonic() + 5
    while not link.exists():
        if stop.is_set() or time.monotonic() > deadline:
            return
        time.sleep(0.02)
    try:
        with serial.Serial(str(link), timeout=0.1) as port:
            while not stop.is_set():
                if line := port.readline():
                    lines.append(line)
    except serial.SerialException:
        pass  # the simulator closed the PTY: the port hung up, as a USB bridge being unplugged would


async def _collect(client: aiomqtt.Client, into: list[tuple[str, bytes]]) -> None:
    async for message in client.messages:
        payload = message.payload
        assert isinstance(payload, bytes | bytearray)
        into.append((str(message.topic), bytes(payload)))


@pytest.mark.integration
async def test_every_kind_of_traffic_arrives(broker: Any, tmp_path: Path, demo_planogram: Planogram) -> None:
    port = broker.port
    link = tmp_path / "ttySHELVES"
    truth_path = tmp_path / "truth.json"
    settings = SimulatorSettings(
        store_id=STORE_ID,
        planogram_path=Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml",
        mqtt_host="127.0.0.1",
        mqtt_port=port,
        serial_link=link,
        seed=1,
        speed=1_200.0,  # 5 real seconds = 100 minutes of lunchtime
        fault_rate=0.05,
        duration_s=5.0,
        ground_truth_path=truth_path,
        start_time_ms=NOON,
    )
    received: list[tuple[str, bytes]] = []
    serial_lines: list[bytes] = []
    stop_reading = threading.Event()
    async with aiomqtt.Client("127.0.0.1", port, identifier="it-subscriber") as subscriber:
        await subscriber.subscribe(f"store/{STORE_ID}/#", qos=1)
        collector = asyncio.create_task(_collect(subscriber, received))
        reader = asyncio.create_task(asyncio.to_thread(_read_serial, link, serial_lines, stop_reading))
        try:
            summary = await run_simulation(settings)
        finally:
            stop_reading.set()
            await reader
        # Everything the broker acknowledged is on its way to us; give it a moment to arrive.
        expected = sum(summary.published.values()) + sum(
            n
            for kind, n in summary.malformed_sent.items()
            if FAULTS_BY_KIND[FaultKind(kind)].transport == "mqtt"
        )
        for _ in range(50):
            if len(received) >= expected:
                break
            await asyncio.sleep(0.05)
        collector.cancel()

    decoder = Decoder(STORE_ID, demo_planogram)
    sequenced: list[SequencedReading] = []
    statuses: list[DeviceStatus] = []
    rejections: collections.Counter[str] = collections.Counter()
    for topic, payload in received:
        result = decoder.decode_mqtt(topic, payload)
        if isinstance(result, Rejection):
            rejections[result.reason.value] += 1
        elif isinstance(result, DeviceStatus):
            statuses.append(result)
        else:
            sequenced.append(result)
    arrived = collections.Counter(type(reading) for reading in sequenced)

    # Every kind arrived, and exactly as many as the broker acknowledged.
    published = dict(summary.published)
    assert arrived[ShelfWeight] == published["weight"] > 0
    assert arrived[ShelfEvent] == published["event"] > 0
    assert arrived[FridgeTemperature] == published["temperature"] > 0
    assert arrived[FootfallCount] == published["footfall"] > 0
    assert arrived[PosTransaction] == published["transaction"] > 0
    assert len(statuses) == published["status"]
    assert summary.baskets == published["transaction"]
    assert any(r.loyalty_id for r in sequenced if isinstance(r, PosTransaction))

    # Malformed messages were rejected for exactly the reasons their kinds declare.
    expected_rejections: collections.Counter[str] = collections.Counter()
    for kind, count in summary.malformed_sent.items():
        spec = FAULTS_BY_KIND[FaultKind(kind)]
        if spec.transport == "mqtt":
            expected_rejections[spec.expected.value] += count
    assert rejections == expected_rejections
    assert sum(expected_rejections.values()) > 0

    # Per device, seq only goes up and ts never goes back.
    by_device: dict[str, list[SequencedReading]] = collections.defaultdict(list)
    for reading in sequenced:
        by_device[reading.device].append(reading)
    for device, readings in by_device.items():
        readings.sort(key=lambda r: r.seq)
        assert len({r.seq for r in readings}) == len(readings), device
        assert [r.ts_ms for r in readings] == sorted(r.ts_ms for r in readings), device

    # Each of the 49 MQTT devices came online and, stopping cleanly, went offline last.
    histories: dict[str, list[bool]] = collections.defaultdict(list)
    for status in statuses:
        histories[status.device].append(status.online)
    assert len(histories) == 49
    assert all(history[0] and not history[-1] for history in histories.values())

    # The legacy controller's frames came through the PTY: weights from all five serial shelves, picks too.
    assert serial_lines
    serial_results = [decoder.decode_serial(str(link), line) for line in serial_lines]
    serial_ok = [r for r in serial_results if not isinstance(r, Rejection)]
    assert {r.device for r in serial_ok if isinstance(r, ShelfWeight)} == {
        f"shelf-A6-{n}" for n in range(1, 6)
    }
    assert any(isinstance(r, ShelfEvent) for r in serial_ok)
    serial_malformed = summary.malformed_sent.get("bad_checksum", 0) + summary.malformed_sent.get(
        "garbage_line", 0
    )
    assert len(serial_lines) == summary.serial_frames_written
    assert len(serial_results) - len(serial_ok) == serial_malformed
    assert summary.serial_frames_dropped == 0
    assert not link.exists()

    # Ground truth: written atomically, final, and the same as the summary's.
    truth = json.loads(truth_path.read_text())
    assert truth["final"] is True
    assert truth["shelves"] == dict(summary.ground_truth)
    assert set(truth["shelves"]) == set(demo_planogram.shelves)
    assert summary.mqtt_messages_dropped == 0
    assert summary.real_seconds >= 5.0
    assert 5.0 * 1_200 <= summary.simulated_seconds < 5.5 * 1_200
