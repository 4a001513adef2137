"""Fixtures for the simulator tests: the demo planogram, valid messages of every kind, and a real
mosquitto comes from the shared `broker` fixture in tests/conftest.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sensors.decode import Decoder
from sensors.planogram import Planogram, load_planogram
from sensors.schemas import (
    FootfallPayload,
    FridgeTemperaturePayload,
    PosItem,
    PosTransactionPayload,
    ShelfEventPayload,
    ShelfWeightPayload,
)
from simulators.messages import MessageKind, SensorMessage

STORE_ID = "test-store"
DEMO_PLANOGRAM = Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"


@pytest.fixture(scope="session")
def demo_planogram() -> Planogram:
    return load_planogram(DEMO_PLANOGRAM)


@pytest.fixture(scope="session")
def store_id() -> str:
    return STORE_ID


@pytest.fixture
def decoder(demo_planogram: Planogram) -> Decoder:
    return Decoder(STORE_ID, demo_planogram)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def valid_message(
    kind: MessageKind, seq: int = 7, ts_ms: int | None = None, *, serial: bool = False
) -> SensorMessage:
    """A valid message of ``kind`` from a device of the demo store (a serial shelf if ``serial``), stamped now."""
    ts = now_ms() if ts_ms is None else ts_ms
    shelf = "A6-2" if serial else "A1-3"
    match kind:
        case MessageKind.WEIGHT:
            return SensorMessage(kind, shelf, ShelfWeightPayload(ts=ts, seq=seq, grams=4_180.3))
        case MessageKind.EVENT:
            return SensorMessage(kind, shelf, ShelfEventPayload(ts=ts, seq=seq, action="pick", count=2))
        case MessageKind.TEMPERATURE:
            return SensorMessage(kind, "F1", FridgeTemperaturePayload(ts=ts, seq=seq, celsius=3.21))
        case MessageKind.FOOTFALL:
            return SensorMessage(
                kind, "grocery", FootfallPayload(ts=ts, seq=seq, entered=4, exited=3, interval_s=10.0)
            )
        case MessageKind.TRANSACTION:
            items = [
                PosItem(sku="1001", qty=2.0, unit_price=1.29),
                PosItem(sku="1031", qty=1.0, unit_price=0.89),
            ]
            return SensorMessage(
                kind,
                "2",
                PosTransactionPayload(
                    ts=ts, seq=seq, basket_id="b-000001", items=items, total=3.47, loyalty_id="LOY-000042"
                ),
            )
    raise AssertionError(kind)


@pytest.fixture
def make_message() -> Callable[..., SensorMessage]:
    return valid_message


# -- mosquitto --------------------------------------------------------------------------------------
