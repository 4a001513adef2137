"""Fault mode: malformed messages of every kind the daemon must quarantine without falling over.

Each fault kind is declared as data (`FAULTS`): the transport it is sent on, the message kinds it can
corrupt, how to build it from a valid message, and the `RejectReason` the daemon's decoder must give
it (the tests check every kind against `sensors.decode.Decoder`).

Sequence numbers: a malformed message takes the ``seq`` (and ``ts``) of the valid message it replaces,
so the device's counter has moved on and no later valid message ever reuses a ``seq`` already seen on
the wire; the daemon sees a gap where the rejected message was. Sampled messages (weights,
temperatures) are simply replaced: the next sample supersedes them. Accounting messages (shelf events,
footfall intervals, baskets) are re-sent validly right after, with the next ``seq``, as a device retries
after a garbled transmission, so fault mode never makes the ground truth and the daemon's totals
disagree.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import msgspec

from sensors.frames import checksum
from sensors.schemas import RejectReason, device_id
from simulators.messages import MESSAGE_KINDS, MessageKind, MqttOut, SensorMessage, SerialOut, sensor_topic

Transport = Literal["mqtt", "serial"]


class FaultKind(enum.StrEnum):
    """Kinds of malformed message. Values label the counts in `SimulationSummary.malformed_sent`."""

    BAD_JSON = "bad_json"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    UNKNOWN_DEVICE = "unknown_device"
    IMPOSSIBLE_VALUE = "impossible_value"
    EPOCH_SECONDS = "epoch_seconds"
    OVERSIZED = "oversized"
    BAD_CHECKSUM = "bad_checksum"
    GARBAGE_LINE = "garbage_line"


@dataclass(frozen=True, slots=True)
class FaultContext:
    store_id: str
    known_devices: frozenset[str]
    rng: random.Random


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: FaultKind
    transport: Transport
    expected: RejectReason  # what `sensors.decode.Decoder` must answer
    applies_to: frozenset[MessageKind]
    build: Callable[[FaultContext, SensorMessage], MqttOut | SerialOut]


# -- MQTT -------------------------------------------------------------------------------------------

# The field whose type a WRONG_TYPE fault breaks, and the word put there instead of a number.
_VALUE_FIELDS: dict[MessageKind, tuple[str, str]] = {
    MessageKind.WEIGHT: ("grams", "heavy"),
    MessageKind.EVENT: ("count", "two"),
    MessageKind.TEMPERATURE: ("celsius", "cold"),
    MessageKind.FOOTFALL: ("in", "many"),
    MessageKind.TRANSACTION: ("total", "lots"),
}
_REQUIRED_FIELDS: dict[MessageKind, tuple[str, ...]] = {
    MessageKind.WEIGHT: ("ts", "seq", "grams"),
    MessageKind.EVENT: ("ts", "seq", "action"),
    MessageKind.TEMPERATURE: ("ts", "seq", "celsius"),
    MessageKind.FOOTFALL: ("ts", "seq", "in", "out"),
    MessageKind.TRANSACTION: ("ts", "seq", "basket_id", "items", "total"),
}
# Physically impossible readings: a load cell cannot weigh less than nothing, a fridge is not an oven.
_IMPOSSIBLE_VALUES: dict[MessageKind, tuple[str, tuple[float, ...]]] = {
    MessageKind.WEIGHT: ("grams", (-500.0, -2_750.5, 9_900_000.0)),
    MessageKind.TEMPERATURE: ("celsius", (200.0, 85.5, -90.0)),
}
_OVERSIZE_PADDING_BYTES = 70_000  # the daemon's limit is 64 KiB


def _mqtt(message: SensorMessage, ctx: FaultContext, payload: bytes, kind: FaultKind) -> MqttOut:
    return MqttOut(message.device, message.topic(ctx.store_id), payload, message.kind, kind.value)


def _bad_json(ctx: FaultContext, message: SensorMessage) -> MqttOut:
    valid = message.encode()
    variants = (
        valid[: ctx.rng.randint(1, len(valid) - 1)],  # cut off mid-transmission
        repr(message.fields()).encode("utf-8"),  # a Python dict repr: single quotes
        b"\xff\xfe" + valid[1:],  # line noise on the first bytes
    )
    return _mqtt(message, ctx, ctx.rng.choice(variants), FaultKind.BAD_JSON)


def _wrong_type(ctx: FaultContext, message: SensorMessage) -> MqttOut:
    name, word = _VALUE_FIELDS[message.kind]
    fields = message.fields() | {name: word}
    return _mqtt(message, ctx, msgspec.json.encode(fields), FaultKind.WRONG_TYPE)


def _missing_field(ctx: FaultContext, message: SensorMessage) -> MqttOut:
    fields = message.fields()
    del fields[ctx.rng.choice(_REQUIRED_FIELDS[message.kind])]
    return _mqtt(message, ctx, msgspec.json.encode(fields), FaultKind.MISSING_FIELD)


def _unknown_device(ctx: FaultContext, message: SensorMessage) -> MqttOut:
    device_kind = MESSAGE_KINDS[message.kind].device_kind
    prefix = {"shelf": "Z9-", "fridge": "F9", "footfall": "zone-", "pos": "9"}.get(device_kind, "ghost-")
    number = ctx.rng.randint(1, 9)
    while device_id(device_kind, f"{prefix}{number}") in ctx.known_devices:
        number += 1
    topic = sensor_topic(ctx.store_id, message.kind, f"{prefix}{number}")
    return MqttOut(message.device, topic, message.encode(), message.kind, FaultKind.UNKNOWN_DEVICE.value)


def _impossible_value(ctx: FaultContext, message: SensorMessage) -> MqttOut:
    name, values = _IMPOSSIBLE_VALUES[message.kind]
    fields = message.fields() | {name: ctx.rng.choice(values)}
    return _mqtt(message, ctx, msgspec.json.encode(fields), FaultKind.IMPOSSIBLE_VALUE)


def _epoch_seconds(ctx: FaultContext, message: SensorMessage) -> MqttOut:
    fields = message.fields() | {"ts": message.ts_ms // 1000}
    return _mqtt(message, ctx, msgspec.json.encode(fields), FaultKind.EPOCH_SECONDS)


def _oversized(ctx: FaultContext, message: SensorMessage) -> MqttOut:
    padding = "x" * (_OVERSIZE_PADDING_BYTES + ctx.rng.randint(0, 4096))
    fields = message.fields() | {"firmware_dump": padding}
    return _mqtt(message, ctx, msgspec.json.encode(fields), FaultKind.OVERSIZED)


# -- serial -----------------------------------------------------------------------------------------

# Line noise never contains '$' (a frame start), CR or LF (a line end): one garbage line stays one line.
_NOISE_ALPHABET = bytes(b for b in range(256) if b not in b"$\r\n")


def _bad_checksum(ctx: FaultContext, message: SensorMessage) -> SerialOut:
    frame = message.frame().rstrip(b"\r\n")
    body = frame[1:].rpartition(b"*")[0]
    wrong = checksum(body) ^ ctx.rng.randint(1, 255)
    line = b"$" + body + b"*" + f"{wrong:02X}".encode("ascii") + b"\r\n"
    return SerialOut(message.device, line, message.kind, FaultKind.BAD_CHECKSUM.value)


def _garbage_line(ctx: FaultContext, message: SensorMessage) -> SerialOut:
    frame = message.frame()
    star = frame.index(b"*")
    variants = (
        bytes(ctx.rng.choices(_NOISE_ALPHABET, k=ctx.rng.randint(4, 60))),  # noise on the line
        frame[: ctx.rng.randint(1, star - 1)],  # frame cut short, no checksum trailer
        frame[1:star],  # lost its '$' and checksum trailer
    )
    return SerialOut(
        message.device, ctx.rng.choice(variants) + b"\r\n", message.kind, FaultKind.GARBAGE_LINE.value
    )


_ALL_MQTT = frozenset(MessageKind)
_LOAD_CELL = frozenset({MessageKind.WEIGHT, MessageKind.EVENT})

FAULTS: tuple[FaultSpec, ...] = (
    FaultSpec(FaultKind.BAD_JSON, "mqtt", RejectReason.BAD_JSON, _ALL_MQTT, _bad_json),
    FaultSpec(FaultKind.WRONG_TYPE, "mqtt", RejectReason.BAD_SCHEMA, _ALL_MQTT, _wrong_type),
    FaultSpec(FaultKind.MISSING_FIELD, "mqtt", RejectReason.BAD_SCHEMA, _ALL_MQTT, _missing_field),
    FaultSpec(FaultKind.UNKNOWN_DEVICE, "mqtt", RejectReason.UNKNOWN_DEVICE, _ALL_MQTT, _unknown_device),
    FaultSpec(
        FaultKind.IMPOSSIBLE_VALUE,
        "mqtt",
        RejectReason.OUT_OF_RANGE,
        frozenset(_IMPOSSIBLE_VALUES),
        _impossible_value,
    ),
    FaultSpec(FaultKind.EPOCH_SECONDS, "mqtt", RejectReason.BAD_TIMESTAMP, _ALL_MQTT, _epoch_seconds),
    FaultSpec(FaultKind.OVERSIZED, "mqtt", RejectReason.OVERSIZED, _ALL_MQTT, _oversized),
    FaultSpec(FaultKind.BAD_CHECKSUM, "serial", RejectReason.BAD_CHECKSUM, _LOAD_CELL, _bad_checksum),
    FaultSpec(FaultKind.GARBAGE_LINE, "serial", RejectReason.BAD_FRAME, _LOAD_CELL, _garbage_line),
)
FAULTS_BY_KIND: dict[FaultKind, FaultSpec] = {spec.kind: spec for spec in FAULTS}


class FaultInjector:
    """Decides which messages to corrupt (``rate`` of them) and how. Seeded; no I/O."""

    def __init__(self, rate: float, store_id: str, known_devices: frozenset[str], rng: random.Random) -> None:
        self._rate = rate
        self._ctx = FaultContext(store_id, known_devices, rng)
        self._choices: dict[tuple[Transport, MessageKind], tuple[FaultSpec, ...]] = {
            (transport, kind): tuple(s for s in FAULTS if s.transport == transport and kind in s.applies_to)
            for transport in ("mqtt", "serial")
            for kind in MessageKind
        }

    def should_corrupt(self) -> bool:
        # No draw at rate 0, so turning faults off does not change the other random streams.
        return self._rate > 0 and self._ctx.rng.random() < self._rate

    def corrupt(self, message: SensorMessage, transport: Transport) -> MqttOut | SerialOut | None:
        """A malformed stand-in for ``message`` of a kind chosen at random, or None if none applies."""
        choices = self._choices[(transport, message.kind)]
        if not choices:
            return None
        return self.corrupt_as(self._ctx.rng.choice(choices).kind, message)

    def corrupt_as(self, kind: FaultKind, message: SensorMessage) -> MqttOut | SerialOut:
        spec = FAULTS_BY_KIND[kind]
        if message.kind not in spec.applies_to:
            raise ValueError(f"fault {kind} does not apply to {message.kind} messages")
        return spec.build(self._ctx, message)
