"""Sensor messages as the simulated devices send them: payload structs from `sensors.schemas`, the MQTT
topic they go to, and (for load cells) the legacy serial frame that carries the same reading.

Message kinds are declared as data (`MESSAGE_KINDS`), mirroring `sensors.decode.SENSOR_KINDS`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgspec

from sensors.frames import encode_frame
from sensors.schemas import (
    FootfallPayload,
    FridgeTemperaturePayload,
    PosTransactionPayload,
    ShelfEventPayload,
    ShelfWeightPayload,
    device_id,
)


class MessageKind(enum.StrEnum):
    """Kinds of sequenced message. Values label the counts in `SimulationSummary.published`."""

    WEIGHT = "weight"
    EVENT = "event"
    TEMPERATURE = "temperature"
    FOOTFALL = "footfall"
    TRANSACTION = "transaction"


STATUS_LABEL = "status"  # device status messages are counted under this label


@dataclass(frozen=True, slots=True)
class MessageKindSpec:
    kind: MessageKind
    device_kind: str  # first topic level after the store: "shelf", "fridge", "footfall", "pos"
    leaf: str | None  # last topic level, if any
    # A periodic sample that the next sample supersedes (losing one costs nothing), as opposed to an
    # accounting message (a pick, a footfall interval, a basket) whose loss corrupts totals.
    sampled: bool
    frame_type: str | None = None  # the legacy serial frame carrying the same reading


MESSAGE_KINDS: dict[MessageKind, MessageKindSpec] = {
    spec.kind: spec
    for spec in (
        MessageKindSpec(MessageKind.WEIGHT, "shelf", "weight", sampled=True, frame_type="WGT"),
        MessageKindSpec(MessageKind.EVENT, "shelf", "event", sampled=False, frame_type="EVT"),
        MessageKindSpec(MessageKind.TEMPERATURE, "fridge", "temperature", sampled=True),
        MessageKindSpec(MessageKind.FOOTFALL, "footfall", None, sampled=False),
        MessageKindSpec(MessageKind.TRANSACTION, "pos", "transaction", sampled=False),
    )
}

SensorPayload = (
    ShelfWeightPayload
    | ShelfEventPayload
    | FridgeTemperaturePayload
    | FootfallPayload
    | PosTransactionPayload
)


def sensor_topic(store_id: str, kind: MessageKind, subject: str) -> str:
    spec = MESSAGE_KINDS[kind]
    topic = f"store/{store_id}/{spec.device_kind}/{subject}"
    return f"{topic}/{spec.leaf}" if spec.leaf else topic


def status_topic(store_id: str, device: str) -> str:
    return f"store/{store_id}/device/{device}/status"


@dataclass(frozen=True, slots=True)
class SensorMessage:
    """One valid sequenced message from one device, before it is put on a transport."""

    kind: MessageKind
    subject: str  # shelf id, fridge unit, zone id or till lane
    payload: SensorPayload

    @property
    def spec(self) -> MessageKindSpec:
        return MESSAGE_KINDS[self.kind]

    @property
    def device(self) -> str:
        return device_id(self.spec.device_kind, self.subject)

    @property
    def seq(self) -> int:
        return self.payload.seq

    @property
    def ts_ms(self) -> int:
        ts = self.payload.ts
        if not isinstance(ts, int):
            raise TypeError("simulated devices stamp ts as epoch milliseconds")
        return ts

    def topic(self, store_id: str) -> str:
        return sensor_topic(store_id, self.kind, self.subject)

    def encode(self) -> bytes:
        return msgspec.json.encode(self.payload)

    def fields(self) -> dict[str, object]:
        """The payload as a JSON object with its wire names (``in``/``out`` for footfall)."""
        builtins = msgspec.to_builtins(self.payload)
        if not isinstance(builtins, dict):
            raise TypeError("payload structs encode as JSON objects")
        return builtins

    def frame(self) -> bytes:
        """The legacy serial frame carrying this reading (load cells only)."""
        payload = self.payload
        if isinstance(payload, ShelfWeightPayload):
            return encode_frame(
                "WGT", [self.subject, str(payload.seq), str(self.ts_ms), f"{payload.grams:.1f}"]
            )
        if isinstance(payload, ShelfEventPayload):
            return encode_frame(
                "EVT",
                [self.subject, str(payload.seq), str(self.ts_ms), payload.action.upper(), str(payload.count)],
            )
        raise ValueError(f"{self.kind} messages have no serial frame")


@dataclass(frozen=True, slots=True)
class MqttOut:
    """A message for a device's MQTT connection. ``device`` is the connection that sends it (a fault may
    put another device's id in the topic)."""

    device: str
    topic: str
    payload: bytes
    kind: MessageKind
    fault: str | None = None  # `FaultKind` value when the message is deliberately malformed


@dataclass(frozen=True, slots=True)
class SerialOut:
    """A line for the legacy controller's serial port."""

    device: str
    line: bytes
    kind: MessageKind
    fault: str | None = None


Outgoing = MqttOut | SerialOut


def as_mqtt(message: SensorMessage, store_id: str) -> MqttOut:
    return MqttOut(message.device, message.topic(store_id), message.encode(), message.kind)


def as_serial(message: SensorMessage) -> SerialOut:
    return SerialOut(message.device, message.frame(), message.kind)
