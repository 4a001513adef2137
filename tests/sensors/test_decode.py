"""Decoding and validation: every valid kind, every rejection reason, and fuzzing that never crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.decode import Decoder, Limits, subscriptions
from sensors.frames import encode_frame
from sensors.planogram import load_planogram
from sensors.schemas import (
    DeviceStatus,
    FootfallCount,
    FridgeTemperature,
    PosTransaction,
    Rejection,
    RejectReason,
    ShelfEvent,
    ShelfWeight,
)

PLANOGRAM = load_planogram(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"
)
NOW_S = 1_795_514_400.0
NOW_MS = int(NOW_S * 1000)


@pytest.fixture
def decoder() -> Decoder:
    return Decoder("demo", PLANOGRAM, Limits(), clock=lambda: NOW_S)


def mqtt(decoder: Decoder, topic: str, payload: object) -> object:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decoder.decode_mqtt(topic, raw)


def test_each_sensor_kind_decodes(decoder: Decoder) -> None:
    weight = mqtt(decoder, "store/demo/shelf/A1-1/weight", {"ts": NOW_MS, "seq": 7, "grams": 1234.5})
    assert weight == ShelfWeight("shelf-A1-1", "A1-1", 7, NOW_MS, 1234.5)
    event = mqtt(
        decoder, "store/demo/shelf/A1-1/event", {"ts": NOW_MS, "seq": 8, "action": "pick", "count": 2}
    )
    assert event == ShelfEvent("shelf-A1-1", "A1-1", 8, NOW_MS, "pick", 2)
    temp = mqtt(
        decoder,
        "store/demo/fridge/F3/temperature",
        {"ts": "2026-11-24T10:00:00Z", "seq": 1, "celsius": -18.5},
    )
    assert temp == FridgeTemperature("fridge-F3", "F3", 1, NOW_MS, -18.5)
    foot = mqtt(
        decoder, "store/demo/footfall/entrance", {"ts": NOW_MS, "seq": 2, "in": 5, "out": 3, "interval_s": 10}
    )
    assert foot == FootfallCount("footfall-entrance", "entrance", 2, NOW_MS, 5, 3, 10.0)
    basket = {
        "ts": NOW_MS,
        "seq": 3,
        "basket_id": "b-1",
        "total": 2.5,
        "loyalty_id": "LOY-1",
        "items": [{"sku": "1021", "qty": 1, "unit_price": 2.5}],
    }
    pos = mqtt(decoder, "store/demo/pos/2/transaction", basket)
    assert isinstance(pos, PosTransaction)
    assert (pos.lane, pos.loyalty_id, len(pos.items)) == ("2", "LOY-1", 1)
    status = mqtt(decoder, "store/demo/device/shelf-A1-1/status", b"offline")
    assert status == DeviceStatus("shelf-A1-1", False, NOW_MS)
    status_json = mqtt(decoder, "store/demo/device/pos-1/status", {"status": "online", "ts": NOW_MS - 5})
    assert status_json == DeviceStatus("pos-1", True, NOW_MS - 5)


# The malformed corpus: each entry names the reason it must be rejected with.
BAD_MQTT = [
    ("store/demo/shelf/A1-1/weight", b"{not json", RejectReason.BAD_JSON),
    ("store/demo/shelf/A1-1/weight", b"", RejectReason.BAD_JSON),
    ("store/demo/shelf/A1-1/weight", {"ts": NOW_MS, "seq": 1, "grams": "heavy"}, RejectReason.BAD_SCHEMA),
    ("store/demo/shelf/A1-1/weight", {"ts": NOW_MS, "grams": 5.0}, RejectReason.BAD_SCHEMA),
    ("store/demo/shelf/A1-1/weight", {"ts": NOW_MS, "seq": -1, "grams": 5.0}, RejectReason.BAD_SCHEMA),
    ("store/demo/shelf/A1-1/weight", [1, 2, 3], RejectReason.BAD_SCHEMA),
    ("store/demo/shelf/A1-1/event", {"ts": NOW_MS, "seq": 1, "action": "steal"}, RejectReason.BAD_SCHEMA),
    ("store/demo/shelf/A1-1/weight", {"ts": NOW_MS, "seq": 1, "grams": -500}, RejectReason.OUT_OF_RANGE),
    ("store/demo/shelf/A1-1/weight", {"ts": NOW_MS, "seq": 1, "grams": 1e9}, RejectReason.OUT_OF_RANGE),
    ("store/demo/fridge/F1/temperature", {"ts": NOW_MS, "seq": 1, "celsius": 200}, RejectReason.OUT_OF_RANGE),
    (
        "store/demo/shelf/A1-1/weight",
        {"ts": 1_795_514_400, "seq": 1, "grams": 5.0},
        RejectReason.BAD_TIMESTAMP,
    ),
    ("store/demo/shelf/A1-1/weight", {"ts": "noon", "seq": 1, "grams": 5.0}, RejectReason.BAD_TIMESTAMP),
    (
        "store/demo/shelf/A1-1/weight",
        {"ts": NOW_MS + 3_600_000, "seq": 1, "grams": 5.0},
        RejectReason.BAD_TIMESTAMP,
    ),
    ("store/demo/shelf/Z9-9/weight", {"ts": NOW_MS, "seq": 1, "grams": 5.0}, RejectReason.UNKNOWN_DEVICE),
    ("store/demo/device/shelf-Z9-9/status", b"online", RejectReason.UNKNOWN_DEVICE),
    ("store/demo/shelf/A1-1/colour", {"ts": NOW_MS, "seq": 1}, RejectReason.UNKNOWN_TOPIC),
    ("store/other/shelf/A1-1/weight", {"ts": NOW_MS, "seq": 1, "grams": 5.0}, RejectReason.UNKNOWN_TOPIC),
    (
        "store/demo/shelf/A1-1/weight",
        b'{"ts": 1, "seq": 1, "grams": 5.0, "pad": "' + b"x" * 70_000 + b'"}',
        RejectReason.OVERSIZED,
    ),
    (
        "store/demo/pos/1/transaction",
        {"ts": NOW_MS, "seq": 1, "basket_id": "b", "total": 1, "items": []},
        RejectReason.BAD_SCHEMA,
    ),
    ("store/demo/device/pos-1/status", b"sleepy", RejectReason.BAD_JSON),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), BAD_MQTT)
def test_malformed_mqtt_is_rejected_with_reason(
    decoder: Decoder, topic: str, payload: object, reason: RejectReason
) -> None:
    result = mqtt(decoder, topic, payload)
    assert isinstance(result, Rejection), result
    assert result.reason is reason, result.detail
    assert result.detail
    assert result.origin == topic
    assert len(result.payload) <= 4096


def test_serial_frames_decode_like_mqtt(decoder: Decoder) -> None:
    assert decoder.decode_serial(
        "legacy", encode_frame("WGT", ["A6-2", "3", str(NOW_MS), "1620.5"])
    ) == ShelfWeight("shelf-A6-2", "A6-2", 3, NOW_MS, 1620.5)
    assert decoder.decode_serial(
        "legacy", encode_frame("EVT", ["A6-2", "4", str(NOW_MS), "PUT", "1"])
    ) == ShelfEvent("shelf-A6-2", "A6-2", 4, NOW_MS, "put", 1)
    assert decoder.decode_serial(
        "legacy", encode_frame("TMP", ["F2", "5", str(NOW_MS), "3.5"])
    ) == FridgeTemperature("fridge-F2", "F2", 5, NOW_MS, 3.5)


BAD_SERIAL = [
    (encode_frame("WGT", ["A6-2", "3", str(NOW_MS), "1620.5"]).replace(b"*", b"*F"), RejectReason.BAD_FRAME),
    (encode_frame("WGT", ["A6-2", "3", str(NOW_MS), "1620.5"])[:-4] + b"00\r\n", RejectReason.BAD_CHECKSUM),
    (encode_frame("XYZ", ["A6-2"]), RejectReason.BAD_FRAME),
    (encode_frame("WGT", ["A6-2", "3"]), RejectReason.BAD_FRAME),
    (encode_frame("WGT", ["A6-2", "three", str(NOW_MS), "1"]), RejectReason.BAD_SCHEMA),
    (encode_frame("WGT", ["Q1-1", "3", str(NOW_MS), "1"]), RejectReason.UNKNOWN_DEVICE),
    (encode_frame("WGT", ["A6-2", "3", str(NOW_MS), "-900"]), RejectReason.OUT_OF_RANGE),
    (encode_frame("WGT", ["A6-2", "3", str(NOW_MS), "nan"]), RejectReason.OUT_OF_RANGE),
    (encode_frame("TMP", ["F2", "3", str(NOW_MS), "200"]), RejectReason.OUT_OF_RANGE),
    (encode_frame("EVT", ["A6-2", "3", str(NOW_MS), "GRAB", "1"]), RejectReason.BAD_SCHEMA),
    (b"garbage line\r\n", RejectReason.BAD_FRAME),
]


@pytest.mark.parametrize(("line", "reason"), BAD_SERIAL)
def test_malformed_serial_is_rejected_with_reason(
    decoder: Decoder, line: bytes, reason: RejectReason
) -> None:
    result = decoder.decode_serial("legacy", line)
    assert isinstance(result, Rejection), result
    assert result.reason is reason, result.detail
    assert result.origin == "legacy"


def test_subscriptions_cover_every_topic_kind() -> None:
    assert subscriptions("s1") == [
        "store/s1/shelf/+/weight",
        "store/s1/shelf/+/event",
        "store/s1/fridge/+/temperature",
        "store/s1/footfall/+",
        "store/s1/pos/+/transaction",
        "store/s1/device/+/status",
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=12,
)
topics = st.sampled_from(
    [
        "store/demo/shelf/A1-1/weight",
        "store/demo/shelf/A1-1/event",
        "store/demo/fridge/F1/temperature",
        "store/demo/footfall/entrance",
        "store/demo/pos/1/transaction",
        "store/demo/device/fridge-F1/status",
        "store/demo/shelf/A1-1",
        "store/demo",
        "",
    ]
)


@settings(max_examples=400)
@given(topic=topics, payload=st.binary(max_size=300))
def test_fuzz_bytes_never_crash(topic: str, payload: bytes) -> None:
    decoder = Decoder("demo", PLANOGRAM, clock=lambda: NOW_S)
    result = decoder.decode_mqtt(topic, payload)
    assert isinstance(
        result,
        (Rejection, ShelfWeight, ShelfEvent, FridgeTemperature, FootfallCount, PosTransaction, DeviceStatus),
    )


@settings(max_examples=400)
@given(
    topic=topics,
    body=st.dictionaries(
        st.sampled_from(
            [
                "ts",
                "seq",
                "grams",
                "celsius",
                "action",
                "count",
                "in",
                "out",
                "items",
                "total",
                "basket_id",
                "status",
            ]
        ),
        json_values,
    ),
)
def test_fuzz_json_objects_never_crash(topic: str, body: dict[str, object]) -> None:
    decoder = Decoder("demo", PLANOGRAM, clock=lambda: NOW_S)
    result = decoder.decode_mqtt(topic, json.dumps(body).encode())
    if isinstance(result, Rejection):
        assert result.detail


@settings(max_examples=300)
@given(
    fields=st.lists(st.text(max_size=12), max_size=7),
    frame_type=st.sampled_from(["WGT", "EVT", "TMP", "ZZZ"]),
)
def test_fuzz_serial_fields_never_crash(fields: list[str], frame_type: str) -> None:
    decoder = Decoder("demo", PLANOGRAM, clock=lambda: NOW_S)
    line = b"$" + ",".join([frame_type, *fields]).encode("utf-8", "replace") + b"*00\r\n"
    decoder.decode_serial("p", line)
    try:
        encoded = encode_frame(frame_type, [f for f in fields if f.isascii() and not set(f) & set("$*,\r\n")])
    except UnicodeEncodeError:
        return
    decoder.decode_serial("p", encoded)
