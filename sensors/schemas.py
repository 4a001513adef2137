"""Wire formats of every sensor message, in one place.

Payloads are JSON over MQTT (see docs/protocols.md). Every sequenced message carries ``ts`` (RFC 3339
text or epoch milliseconds) and ``seq`` (a per-device counter). These structs describe the payload as
it arrives; `sensors.decode` turns them into the typed readings at the bottom of this module.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

# ---------------------------------------------------------------------------------------------------
# Payloads as they arrive on the wire.

Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Timestamp = int | str  # epoch ms or RFC 3339; normalised by sensors.timeparse


class ShelfWeightPayload(msgspec.Struct, forbid_unknown_fields=False, frozen=True):
    """`store/{store}/shelf/{shelf}/weight`: the load cell's gross weight in grams."""

    ts: Timestamp
    seq: Seq
    grams: float


class ShelfEventPayload(msgspec.Struct, frozen=True):
    """`store/{store}/shelf/{shelf}/event`: the controller saw items picked up or put back."""

    ts: Timestamp
    seq: Seq
    action: Literal["pick", "put"]
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1


class FridgeTemperaturePayload(msgspec.Struct, frozen=True):
    """`store/{store}/fridge/{unit}/temperature`: degrees Celsius."""

    ts: Timestamp
    seq: Seq
    celsius: float


class FootfallPayload(msgspec.Struct, frozen=True, rename={"entered": "in", "exited": "out"}):
    """`store/{store}/footfall/{zone}`: people who entered and left the zone during the interval."""

    ts: Timestamp
    seq: Seq
    entered: Annotated[int, msgspec.Meta(ge=0, le=100_000)]
    exited: Annotated[int, msgspec.Meta(ge=0, le=100_000)]
    interval_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 60.0


class PosItem(msgspec.Struct, frozen=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    qty: Annotated[float, msgspec.Meta(gt=0, le=10_000)]
    unit_price: Annotated[float, msgspec.Meta(ge=0, le=100_000)]


class PosTransactionPayload(msgspec.Struct, frozen=True):
    """`store/{store}/pos/{lane}/transaction`: a till's completed basket.

    ``loyalty_id`` is pseudonymised (keyed HMAC) by the daemon before anything touches disk.
    """

    ts: Timestamp
    seq: Seq
    basket_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    items: Annotated[list[PosItem], msgspec.Meta(min_length=1, max_length=500)]
    total: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]
    loyalty_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class DeviceStatusPayload(msgspec.Struct, frozen=True):
    """`store/{store}/device/{device}/status` (retained). Plain `online`/`offline` text is accepted too."""

    status: Literal["online", "offline"]
    ts: Timestamp | None = None


# ---------------------------------------------------------------------------------------------------
# Typed readings: what the transports hand to the daemon after decoding and validation.


class Source(enum.StrEnum):
    MQTT = "mqtt"
    SERIAL = "serial"


class ShelfWeight(msgspec.Struct, frozen=True, tag="shelf_weight"):
    device: str
    shelf: str
    seq: int
    ts_ms: int
    grams: float


class ShelfEvent(msgspec.Struct, frozen=True, tag="shelf_event"):
    device: str
    shelf: str
    seq: int
    ts_ms: int
    action: Literal["pick", "put"]
    count: int


class FridgeTemperature(msgspec.Struct, frozen=True, tag="fridge_temperature"):
    device: str
    unit: str
    seq: int
    ts_ms: int
    celsius: float


class FootfallCount(msgspec.Struct, frozen=True, tag="footfall"):
    device: str
    zone: str
    seq: int
    ts_ms: int
    entered: int
    exited: int
    interval_s: float


class PosTransaction(msgspec.Struct, frozen=True, tag="pos_transaction"):
    device: str
    lane: str
    seq: int
    ts_ms: int
    basket_id: str
    items: tuple[PosItem, ...]
    total: float
    loyalty_id: str | None


class DeviceStatus(msgspec.Struct, frozen=True, tag="device_status"):
    device: str
    online: bool
    ts_ms: int


SequencedReading = ShelfWeight | ShelfEvent | FridgeTemperature | FootfallCount | PosTransaction
Reading = SequencedReading | DeviceStatus


class RejectReason(enum.StrEnum):
    """Why an input was quarantined. Values are stable: they label metrics and quarantine rows."""

    BAD_JSON = "bad_json"
    BAD_SCHEMA = "bad_schema"
    BAD_TIMESTAMP = "bad_timestamp"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_DEVICE = "unknown_device"
    OVERSIZED = "oversized"
    BAD_FRAME = "bad_frame"
    BAD_CHECKSUM = "bad_checksum"
    INTERNAL_ERROR = "internal_error"  # valid input the daemon failed to store (a bug); kept for replay
    # The decoder itself failed on this input (an exception nobody raised on purpose: a decoder bug or
    # a library surprise). Distinct from internal_error: the input was never found valid.
    DECODE_ERROR = "decode_error"


class Rejection(msgspec.Struct, frozen=True):
    """An input that was not accepted, with the reason and enough context to inspect it later."""

    source: Source
    origin: str  # MQTT topic or serial port name
    reason: RejectReason
    detail: str
    payload: bytes
    device: str | None = None


def device_id(kind: str, subject: str) -> str:
    """The registry id of the device behind a topic: `shelf-A1-1`, `fridge-F1`, `footfall-entrance`."""
    return f"{kind}-{subject}"
