"""Decoding and validation: raw MQTT messages and serial frames -> typed readings or rejections.

Sensor kinds are declared as data (`SENSOR_KINDS`): the topic shape, the payload struct, how to check
plausibility and how to build the reading. Adding a sensor kind is adding a row. Both transports go
through the same `Decoder._accept`, so a serial weight and an MQTT weight are validated identically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from sensors.frames import Frame, FrameError, decode_frame
from sensors.planogram import Planogram
from sensors.schemas import (
    DeviceStatus,
    DeviceStatusPayload,
    FootfallCount,
    FootfallPayload,
    FridgeTemperature,
    FridgeTemperaturePayload,
    PosTransaction,
    PosTransactionPayload,
    Reading,
    Rejection,
    RejectReason,
    ShelfEvent,
    ShelfEventPayload,
    ShelfWeight,
    ShelfWeightPayload,
    Source,
    device_id,
)
from sensors.timeparse import TimestampError, to_epoch_ms


@dataclass(frozen=True, slots=True)
class Limits:
    """Plausibility bounds. Values outside are physically impossible for the device, not just unusual."""

    max_payload_bytes: int = 65_536
    max_clock_skew_s: float = 300.0
    shelf_max_grams: float = 200_000.0
    shelf_negative_tolerance_grams: float = 20.0
    fridge_min_c: float = -40.0
    fridge_max_c: float = 40.0


class _Reject(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise _Reject(RejectReason.OUT_OF_RANGE, f"{name} must be a finite number, got {value}")


def _check_weight(p: ShelfWeightPayload, limits: Limits) -> None:
    _finite("grams", p.grams)
    if p.grams < -limits.shelf_negative_tolerance_grams:
        raise _Reject(RejectReason.OUT_OF_RANGE, f"grams {p.grams} is negative")
    if p.grams > limits.shelf_max_grams:
        raise _Reject(RejectReason.OUT_OF_RANGE, f"grams {p.grams} exceeds {limits.shelf_max_grams}")


def _check_temperature(p: FridgeTemperaturePayload, limits: Limits) -> None:
    _finite("celsius", p.celsius)
    if not limits.fridge_min_c <= p.celsius <= limits.fridge_max_c:
        raise _Reject(
            RejectReason.OUT_OF_RANGE,
            f"celsius {p.celsius} outside plausible {limits.fridge_min_c}..{limits.fridge_max_c}",
        )


def _check_pos(p: PosTransactionPayload, limits: Limits) -> None:
    for index, item in enumerate(p.items):
        _finite(f"items[{index}].qty", item.qty)
        _finite(f"items[{index}].unit_price", item.unit_price)
    _finite("total", p.total)


def _no_check(_payload: Any, _limits: Limits) -> None:
    return None


@dataclass(frozen=True, slots=True)
class SensorKind:
    """One kind of sensor message: `store/{store}/{kind}/{subject}[/{leaf}]`."""

    kind: str
    leaf: str | None
    payload: type[msgspec.Struct]
    check: Callable[[Any, Limits], None]
    build: Callable[[Any, str, str, int], Reading]  # (payload, device, subject, ts_ms)
    frame_type: str | None = None  # the serial frame that carries the same reading
    frame_fields: tuple[str, ...] = ()


SENSOR_KINDS: tuple[SensorKind, ...] = (
    SensorKind(
        "shelf",
        "weight",
        ShelfWeightPayload,
        _check_weight,
        lambda p, dev, sub, ts: ShelfWeight(dev, sub, p.seq, ts, p.grams),
        frame_type="WGT",
        frame_fields=("seq", "ts", "grams"),
    ),
    SensorKind(
        "shelf",
        "event",
        ShelfEventPayload,
        _no_check,
        lambda p, dev, sub, ts: ShelfEvent(dev, sub, p.seq, ts, p.action, p.count),
        frame_type="EVT",
        frame_fields=("seq", "ts", "action", "count"),
    ),
    SensorKind(
        "fridge",
        "temperature",
        FridgeTemperaturePayload,
        _check_temperature,
        lambda p, dev, sub, ts: FridgeTemperature(dev, sub, p.seq, ts, p.celsius),
        frame_type="TMP",
        frame_fields=("seq", "ts", "celsius"),
    ),
    SensorKind(
        "footfall",
        None,
        FootfallPayload,
        _no_check,
        lambda p, dev, sub, ts: FootfallCount(dev, sub, p.seq, ts, p.entered, p.exited, p.interval_s),
    ),
    SensorKind(
        "pos",
        "transaction",
        PosTransactionPayload,
        _check_pos,
        lambda p, dev, sub, ts: PosTransaction(
            dev, sub, p.seq, ts, p.basket_id, tuple(p.items), p.total, p.loyalty_id
        ),
    ),
)
_BY_TOPIC = {(k.kind, k.leaf): k for k in SENSOR_KINDS}
_BY_FRAME = {k.frame_type: k for k in SENSOR_KINDS if k.frame_type}
_FRAME_FIELD_TYPES = {"seq": int, "ts": int, "count": int, "grams": float, "celsius": float}


def subscriptions(store_id: str) -> list[str]:
    """The MQTT topic filters that carry every sensor kind and device status for a store."""
    filters = [f"store/{store_id}/{k.kind}/+" + (f"/{k.leaf}" if k.leaf else "") for k in SENSOR_KINDS]
    return [*filters, f"store/{store_id}/device/+/status"]


class Decoder:
    """Turns raw input into a `Reading` or a `Rejection`. Pure apart from reading the clock."""

    def __init__(
        self,
        store_id: str,
        planogram: Planogram,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store_id = store_id
        self._planogram = planogram
        self._limits = limits or Limits()
        self._clock = clock
        self._decoders = {k.payload: msgspec.json.Decoder(k.payload) for k in SENSOR_KINDS}
        self._status_decoder = msgspec.json.Decoder(DeviceStatusPayload)

    # -- MQTT ---------------------------------------------------------------------------------------
    def decode_mqtt(self, topic: str, payload: bytes) -> Reading | Rejection:
        try:
            return self._decode_mqtt(topic, payload)
        except _Reject as rej:
            return Rejection(Source.MQTT, topic, rej.reason, rej.detail, payload[:4096], _topic_device(topic))

    def _decode_mqtt(self, topic: str, payload: bytes) -> Reading:
        if len(payload) > self._limits.max_payload_bytes:
            raise _Reject(
                RejectReason.OVERSIZED,
                f"payload of {len(payload)} bytes exceeds {self._limits.max_payload_bytes}",
            )
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != "store" or parts[1] != self._store_id:
            raise _Reject(RejectReason.UNKNOWN_TOPIC, f"topic {topic!r} is not in this store's tree")
        kind, subject = parts[2], parts[3]
        leaf = parts[4] if len(parts) == 5 else None
        if kind == "device" and leaf == "status":
            return self._device_status(subject, payload)
        spec = _BY_TOPIC.get((kind, leaf))
        if spec is None:
            raise _Reject(RejectReason.UNKNOWN_TOPIC, f"no sensor kind for topic {topic!r}")
        device = device_id(kind, subject)
        if device not in self._planogram.devices:
            raise _Reject(RejectReason.UNKNOWN_DEVICE, f"device {device!r} is not in the planogram")
        try:
            parsed = self._decoders[spec.payload].decode(payload)
        except msgspec.ValidationError as exc:
            raise _Reject(RejectReason.BAD_SCHEMA, str(exc)) from None
        except msgspec.DecodeError as exc:
            raise _Reject(RejectReason.BAD_JSON, str(exc)) from None
        return self._accept(spec, parsed, device, subject)

    def _device_status(self, device: str, payload: bytes) -> DeviceStatus:
        if device not in self._planogram.devices:
            raise _Reject(RejectReason.UNKNOWN_DEVICE, f"device {device!r} is not in the planogram")
        text = payload.strip()
        now_ms = int(self._clock() * 1000)
        if text in (b"online", b"offline"):
            return DeviceStatus(device, text == b"online", now_ms)
        try:
            status = self._status_decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise _Reject(RejectReason.BAD_SCHEMA, str(exc)) from None
        except msgspec.DecodeError as exc:
            raise _Reject(
                RejectReason.BAD_JSON, f"status is neither online/offline nor JSON: {exc}"
            ) from None
        ts_ms = self._timestamp(status.ts) if status.ts is not None else now_ms
        return DeviceStatus(device, status.status == "online", ts_ms)

    # -- serial -------------------------------------------------------------------------------------
    def decode_serial(self, port: str, line: bytes) -> Reading | Rejection:
        device: str | None = None
        try:
            frame = decode_frame(line)
            spec, subject, fields = self._frame_fields(frame)
            device = device_id(spec.kind, subject)
            if device not in self._planogram.devices:
                raise _Reject(RejectReason.UNKNOWN_DEVICE, f"device {device!r} is not in the planogram")
            try:
                parsed = msgspec.convert(fields, spec.payload)
            except msgspec.ValidationError as exc:
                raise _Reject(RejectReason.BAD_SCHEMA, str(exc)) from None
            return self._accept(spec, parsed, device, subject)
        except FrameError as exc:
            return Rejection(Source.SERIAL, port, exc.reason, exc.detail, line[:4096])
        except _Reject as rej:
            return Rejection(Source.SERIAL, port, rej.reason, rej.detail, line[:4096], device)

    def _frame_fields(self, frame: Frame) -> tuple[SensorKind, str, dict[str, object]]:
        spec = _BY_FRAME.get(frame.type)
        if spec is None:
            raise _Reject(RejectReason.BAD_FRAME, f"unknown frame type {frame.type!r}")
        if len(frame.fields) != 1 + len(spec.frame_fields):
            raise _Reject(
                RejectReason.BAD_FRAME,
                f"{frame.type} frame needs {1 + len(spec.frame_fields)} fields, got {len(frame.fields)}",
            )
        subject, *values = frame.fields
        fields: dict[str, object] = {}
        for name, text in zip(spec.frame_fields, values, strict=True):
            convert = _FRAME_FIELD_TYPES.get(name)
            if name == "action":
                fields[name] = text.lower()
                continue
            try:
                fields[name] = convert(text) if convert else text
            except ValueError:
                raise _Reject(
                    RejectReason.BAD_SCHEMA, f"{frame.type} field {name}={text!r} is not a number"
                ) from None
        return spec, subject, fields

    # -- shared -------------------------------------------------------------------------------------
    def _accept(self, spec: SensorKind, parsed: Any, device: str, subject: str) -> Reading:
        ts_ms = self._timestamp(parsed.ts)
        spec.check(parsed, self._limits)
        return spec.build(parsed, device, subject, ts_ms)

    def _timestamp(self, value: int | str) -> int:
        try:
            ts_ms = to_epoch_ms(value)
        except TimestampError as exc:
            raise _Reject(RejectReason.BAD_TIMESTAMP, str(exc)) from None
        skew_s = ts_ms / 1000 - self._clock()
        if skew_s > self._limits.max_clock_skew_s:
            raise _Reject(
                RejectReason.BAD_TIMESTAMP,
                f"ts is {skew_s:.0f}s in the future (max skew {self._limits.max_clock_skew_s:.0f}s)",
            )
        return ts_ms


def _topic_device(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != "store":
        return None
    return parts[3] if parts[2] == "device" else device_id(parts[2], parts[3])
