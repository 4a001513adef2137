"""Decoding and validation: raw MQTT messages and serial frames -> typed readings or rejections.

Sensor kinds are declared as data (`SENSOR_KINDS`): the topic shape, the payload struct, how to check
plausibility and how to build the reading. Adding a sensor kind is adding a row. Both transports go
through the same `Decoder._accept`, so a serial weight and an MQTT weight are validated identically.

The public `Decoder.decode_mqtt` and `Decoder.decode_serial` are total: every input, however broken,
becomes a `Reading` or a `Rejection`, never an exception. Expected problems raise `_Reject` with their
reason; anything else that escapes from inside (a library failing on an input nobody thought of) is
caught at those two entry points and becomes a `decode_error` rejection naming the exception, so an
ingest loop cannot die of its input and the broker cannot redeliver a poison message forever.
"""

from __future__ import annotations

import math
import re
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
    # Devices and tills buffer while the broker is down; older than this is a clock that was never set
    # (1970, 2000) or garbage, not a buffered reading.
    max_reading_age_s: float = 7 * 86_400.0
    shelf_max_grams: float = 200_000.0
    shelf_negative_tolerance_grams: float = 20.0
    fridge_min_c: float = -40.0
    fridge_max_c: float = 40.0


class _Reject(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# JSON nesting deeper than this is rejected before msgspec sees it (msgspec recurses and has no depth
# option: a ~2 KB payload nested 1,000 deep raised RecursionError). Real payloads nest 3 deep.
MAX_JSON_DEPTH = 32
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_LEAF_PAIR = re.compile(rb"\[\]|\{\}")
_OPENING = frozenset(b"[{")
_MAX_DETAIL = 500
_MAX_KEPT_PAYLOAD = 4096


def _check_json_text(payload: bytes) -> None:
    """What msgspec does not check on its own: UTF-8 everywhere (it skips unknown fields unread, and
    raises UnicodeDecodeError rather than DecodeError on a bad string), and bounded nesting."""
    if not payload.isascii():  # the common case costs one C scan, no copy
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Reject(
                RejectReason.BAD_JSON, f"payload is not UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
    # Depth can only exceed the limit if there are more opening brackets than the limit.
    if payload.count(b"[") + payload.count(b"{") > MAX_JSON_DEPTH and _nests_deeper_than(
        payload, MAX_JSON_DEPTH
    ):
        raise _Reject(RejectReason.BAD_JSON, f"JSON nests deeper than {MAX_JSON_DEPTH} levels")


def _nests_deeper_than(payload: bytes, limit: int) -> bool:
    """Whether JSON text nests deeper than ``limit``, brackets inside strings ignored. All C-speed bytes
    operations in the common case; the byte loop only runs on payloads that are deep or unbalanced."""
    # Drop escaped backslashes, then escaped quotes (left to right, as JSON reads them), and keep only
    # quotes and brackets. Removing adjacent quote pairs (strings without brackets, or the gap between
    # two strings) keeps every bracket on its side of the quotes; what is then left between quote pairs
    # was inside strings.
    if b"\\" in payload:
        payload = payload.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = payload.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(brackets.split(b'"')[::2])
    peeled = brackets
    for _ in range(limit):  # each pass removes the innermost level of every nest, exactly one level
        if not peeled:
            return False
        peeled = _LEAF_PAIR.sub(b"", peeled)
    if not peeled:
        return False
    depth = 0  # deeper than the limit, or unbalanced (invalid anyway): measure exactly
    for byte in brackets:
        depth += 1 if byte in _OPENING else -1
        if depth > limit:
            return True
    return False


def _unexpected(exc: Exception) -> tuple[RejectReason, str]:
    """The reason and detail for an exception nobody raised on purpose (no traceback: this is per input)."""
    # msgspec raises these for bad text and deep nesting; the checks above should come first, but if
    # one slips through it is still the payload's fault, not the decoder's.
    reason = (
        RejectReason.BAD_JSON
        if isinstance(exc, UnicodeDecodeError | RecursionError)
        else RejectReason.DECODE_ERROR
    )
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose message cannot be built is still an answer
        text = "<unprintable>"
    return reason, f"{type(exc).__name__}: {text}"[:_MAX_DETAIL]


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


@dataclass(frozen=True, slots=True)
class _FieldSyntax:
    pattern: re.Pattern[str]
    convert: Callable[[str], int | float]
    description: str


# Serial fields are ASCII (the frame is checked) and must match exactly; docs/protocols.md#serial.
_UNSIGNED = _FieldSyntax(re.compile(r"[0-9]+"), int, "an unsigned integer (digits only)")
_DECIMAL = _FieldSyntax(re.compile(r"-?[0-9]+(?:\.[0-9]+)?"), float, "a plain decimal like -12.5")
_FRAME_FIELD_SYNTAX = {
    "seq": _UNSIGNED,
    "ts": _UNSIGNED,
    "count": _UNSIGNED,
    "grams": _DECIMAL,
    "celsius": _DECIMAL,
}
_FRAME_ACTIONS = {"PICK": "pick", "PUT": "put"}


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
        """The reading in one MQTT message, or why it was rejected. Never raises."""
        try:
            return self._decode_mqtt(topic, payload)
        except _Reject as rej:
            reason, detail = rej.reason, rej.detail
        except Exception as exc:  # noqa: BLE001 - total by construction, see the module docstring
            reason, detail = _unexpected(exc)
        return Rejection(
            Source.MQTT, topic, reason, detail, payload[:_MAX_KEPT_PAYLOAD], _topic_device(topic)
        )

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
        _check_json_text(payload)
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
        _check_json_text(payload)
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
        """The reading in one serial line, or why it was rejected. Never raises."""
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
        except (FrameError, _Reject) as rej:
            reason, detail = rej.reason, rej.detail
        except Exception as exc:  # noqa: BLE001 - total by construction, see the module docstring
            reason, detail = _unexpected(exc)
        return Rejection(Source.SERIAL, port, reason, detail, line[:_MAX_KEPT_PAYLOAD], device)

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
            if name == "action":
                if text not in _FRAME_ACTIONS:
                    raise _Reject(
                        RejectReason.BAD_SCHEMA, f"{frame.type} field action={text!r} is not PICK or PUT"
                    )
                fields[name] = _FRAME_ACTIONS[text]
                continue
            syntax = _FRAME_FIELD_SYNTAX[name]
            # Strict on purpose: int() and float() would also take "1_0", " 10\r", "1e3" and "nan".
            if syntax.pattern.fullmatch(text) is None:
                raise _Reject(
                    RejectReason.BAD_SCHEMA, f"{frame.type} field {name}={text!r} is not {syntax.description}"
                )
            fields[name] = syntax.convert(text)
        return spec, subject, fields

    # -- shared -------------------------------------------------------------------------------------
    def _accept(self, spec: SensorKind, parsed: Any, device: str, subject: str) -> Reading:
        ts_ms = self._timestamp(parsed.ts)
        spec.check(parsed, self._limits)
        return spec.build(parsed, device, subject, ts_ms)

    def _timestamp(self, value: int | str) -> int:
        try:
            ts_ms = to_epoch_ms(value)
        except (TimestampError, ValueError, OverflowError) as exc:
            raise _Reject(RejectReason.BAD_TIMESTAMP, str(exc)) from None
        # Integer milliseconds: a serial ts of 240 digits must not overflow a float on the way.
        ahead_ms = ts_ms - int(self._clock() * 1000)
        limits = self._limits
        if ahead_ms > limits.max_clock_skew_s * 1000:
            raise _Reject(
                RejectReason.BAD_TIMESTAMP,
                f"ts is {ahead_ms // 1000}s in the future (max skew {limits.max_clock_skew_s:.0f}s)",
            )
        if -ahead_ms > limits.max_reading_age_s * 1000:
            raise _Reject(
                RejectReason.BAD_TIMESTAMP,
                f"ts is {-ahead_ms // 1000}s old (max age {limits.max_reading_age_s:.0f}s)",
            )
        return ts_ms


def _topic_device(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != "store":
        return None
    return parts[3] if parts[2] == "device" else device_id(parts[2], parts[3])
