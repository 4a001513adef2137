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
    (encode_frame("WGT", ["A6-2", "3", str(NOW_MS), "nan"]), RejectReason.BAD_SCHEMA),  # not a decimal
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


@settings(max_examples=max(400, settings().max_examples))
@given(topic=topics, payload=st.binary(max_size=300))
def test_fuzz_bytes_never_crash(topic: str, payload: bytes) -> None:
    decoder = Decoder("demo", PLANOGRAM, clock=lambda: NOW_S)
    result = decoder.decode_mqtt(topic, payload)
    assert isinstance(
        result,
        (Rejection, ShelfWeight, ShelfEvent, FridgeTemperature, FootfallCount, PosTransaction, DeviceStatus),
    )


@settings(max_examples=max(400, settings().max_examples))
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


@settings(max_examples=max(300, settings().max_examples))
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


# -- Hardening: inputs that used to raise out of the decoder (and kill the MQTT ingest task) ------------
DEEP = b'{"ts": 1795514400000, "seq": 1, "grams": 100, "extra": ' + b"[" * 1000 + b"]" * 1000 + b"}"
POISON = [
    (
        "store/demo/shelf/A1-1/weight",
        b'{"ts":"0001-01-01T00:00:00+00:01","seq":1,"grams":100}',
        RejectReason.BAD_TIMESTAMP,
    ),
    (
        "store/demo/shelf/A1-1/weight",
        b'{"ts":"9999-12-31T23:59:59-00:01","seq":1,"grams":100}',
        RejectReason.BAD_TIMESTAMP,
    ),
    (
        "store/demo/shelf/A1-1/event",
        b'{"ts":1795514400000,"seq":1,"action":"p\xc3\x28ck"}',
        RejectReason.BAD_JSON,
    ),
    ("store/demo/device/pos-1/status", b'{"status":"\xff"}', RejectReason.BAD_JSON),
    ("store/demo/shelf/A1-1/weight", DEEP, RejectReason.BAD_JSON),
    # Accepted before: invalid UTF-8 in a field msgspec skips, or in a key.
    (
        "store/demo/shelf/A1-1/weight",
        b'{"ts":1795514400000,"seq":1,"grams":100,"note":"\xff"}',
        RejectReason.BAD_JSON,
    ),
    (
        "store/demo/shelf/A1-1/weight",
        b'{"ts":1795514400000,"seq":1,"grams":100,"\xff":1}',
        RejectReason.BAD_JSON,
    ),
    ("store/demo/shelf/A1-1/weight", b'{"t\xc3s":1795514400000,"seq":1,"grams":100}', RejectReason.BAD_JSON),
    ("store/demo/device/pos-1/status", b"onl\xffine", RejectReason.BAD_JSON),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), POISON, ids=range(len(POISON)))
def test_poison_payloads_are_rejections_not_exceptions(
    decoder: Decoder, topic: str, payload: bytes, reason: RejectReason
) -> None:
    result = decoder.decode_mqtt(topic, payload)
    assert isinstance(result, Rejection), result
    assert result.reason is reason, result.detail
    assert result.detail
    assert result.payload == payload[:4096]


def test_deep_nesting_names_the_limit(decoder: Decoder) -> None:
    result = decoder.decode_mqtt("store/demo/shelf/A1-1/weight", DEEP)
    assert isinstance(result, Rejection)
    assert "nest" in result.detail


def test_nesting_within_the_limit_is_fine(decoder: Decoder) -> None:
    payload = b'{"ts": 1795514400000, "seq": 1, "grams": 100, "extra": ' + b"[" * 20 + b"]" * 20 + b"}"
    assert isinstance(decoder.decode_mqtt("store/demo/shelf/A1-1/weight", payload), ShelfWeight)
    # Brackets inside strings are not nesting.
    text = b'{"ts": 1795514400000, "seq": 1, "grams": 100, "extra": "' + b"[{" * 500 + b'\\""}'
    assert isinstance(decoder.decode_mqtt("store/demo/shelf/A1-1/weight", text), ShelfWeight)
    # A big basket has many brackets but little depth.
    items = [{"sku": str(1000 + n), "qty": 1, "unit_price": 1.0} for n in range(400)]
    basket = {"ts": NOW_MS, "seq": 1, "basket_id": "b", "total": 400.0, "items": items}
    assert isinstance(mqtt(decoder, "store/demo/pos/1/transaction", basket), PosTransaction)


def test_valid_utf8_text_is_accepted(decoder: Decoder) -> None:
    basket = {
        "ts": NOW_MS,
        "seq": 1,
        "basket_id": "caf\u00e9-\u2603",
        "total": 1.0,
        "items": [{"sku": "1021", "qty": 1, "unit_price": 1.0}],
        "note": "\U0001f600",
    }
    raw = json.dumps(basket, ensure_ascii=False).encode()
    result = decoder.decode_mqtt("store/demo/pos/1/transaction", raw)
    assert isinstance(result, PosTransaction)
    assert result.basket_id == "caf\u00e9-\u2603"


class _Boom(Exception):
    pass


def test_decoder_is_total_by_construction(decoder: Decoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong inside, each public entry point answers a Rejection naming the exception."""

    def boom(*_args: object) -> None:
        raise _Boom("unexpected")

    monkeypatch.setattr(Decoder, "_accept", boom)
    payload = json.dumps({"ts": NOW_MS, "seq": 1, "grams": 5.0}).encode()
    result = decoder.decode_mqtt("store/demo/shelf/A1-1/weight", payload)
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.DECODE_ERROR
    assert result.detail == "_Boom: unexpected"
    assert (result.payload, result.device) == (payload, "shelf-A1-1")
    line = encode_frame("WGT", ["A6-2", "3", str(NOW_MS), "1620.5"])
    serial = decoder.decode_serial("legacy", line)
    assert isinstance(serial, Rejection)
    assert (serial.reason, serial.detail, serial.payload, serial.device) == (
        RejectReason.DECODE_ERROR,
        "_Boom: unexpected",
        line,
        "shelf-A6-2",
    )


def test_known_exceptions_keep_their_reason(decoder: Decoder, monkeypatch: pytest.MonkeyPatch) -> None:
    def recurse(*_args: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(Decoder, "_accept", recurse)
    result = mqtt(decoder, "store/demo/shelf/A1-1/weight", {"ts": NOW_MS, "seq": 1, "grams": 5.0})
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.BAD_JSON
    assert result.detail.startswith("RecursionError: ")


def test_odd_topics_are_rejections(decoder: Decoder) -> None:
    for topic in [
        "store/demo/device/x",
        "store",
        "/////",
        "store/demo/\udcff/x",
        "store/demo/shelf/\x00/weight",
    ]:
        result = decoder.decode_mqtt(topic, b"{}")
        assert isinstance(result, Rejection)
        assert result.reason in {RejectReason.UNKNOWN_TOPIC, RejectReason.UNKNOWN_DEVICE}


# -- Hardening: what used to be accepted and should not be -----------------------------------------------
DAY_MS = 86_400_000


@pytest.mark.parametrize(
    "ts",
    [
        "1970-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "2000-01-01T00:00:00+00:00",
        NOW_MS - 8 * DAY_MS,
        1_000_000_000_000,  # 2001: looks like epoch ms, far too old
    ],
)
def test_readings_older_than_the_max_age_are_rejected(decoder: Decoder, ts: int | str) -> None:
    result = mqtt(decoder, "store/demo/shelf/A1-1/weight", {"ts": ts, "seq": 1, "grams": 5.0})
    assert isinstance(result, Rejection), result
    assert result.reason is RejectReason.BAD_TIMESTAMP
    assert "old" in result.detail


def test_buffered_readings_within_the_max_age_are_stored(decoder: Decoder) -> None:
    ts = NOW_MS - 6 * DAY_MS
    result = mqtt(decoder, "store/demo/shelf/A1-1/weight", {"ts": ts, "seq": 1, "grams": 5.0})
    assert isinstance(result, ShelfWeight)
    assert result.ts_ms == ts
    frame = encode_frame("WGT", ["A6-2", "3", str(ts), "1620.5"])
    assert isinstance(decoder.decode_serial("legacy", frame), ShelfWeight)


def test_max_reading_age_is_configurable() -> None:
    strict = Decoder("demo", PLANOGRAM, Limits(max_reading_age_s=3600.0), clock=lambda: NOW_S)
    old = {"ts": NOW_MS - 2 * 3_600_000, "seq": 1, "grams": 5.0}
    result = mqtt(strict, "store/demo/shelf/A1-1/weight", old)
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.BAD_TIMESTAMP
    lenient = Decoder("demo", PLANOGRAM, Limits(max_reading_age_s=90 * 86_400.0), clock=lambda: NOW_S)
    old["ts"] = NOW_MS - 60 * DAY_MS
    assert isinstance(mqtt(lenient, "store/demo/shelf/A1-1/weight", old), ShelfWeight)


def test_status_timestamps_are_bounded_too(decoder: Decoder) -> None:
    result = mqtt(
        decoder, "store/demo/device/pos-1/status", {"status": "online", "ts": "1970-01-01T00:00:00Z"}
    )
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.BAD_TIMESTAMP


@pytest.mark.parametrize(
    "ts",
    [
        "2026-W48-2T10:00:00Z",  # ISO week date
        "20261124T100000Z",  # ISO basic format
        "2026-11-24T10:00Z",  # no seconds
        "2026-11-24T10:00:00,5Z",  # comma fraction
        "2026-11-24 10:00:00Z",  # space separator (RFC 3339's note, not its grammar)
        "2026-11-24T10:00:00+0100",  # offset without colon
        "2026-11-24T10:00:00+01",
        "2026-11-24T10:00:00.Z",  # empty fraction
        "2026-11-24T10:00:00",  # no offset
        " 2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00Z ",
        "2026-11-24T10:00:00Z\n",
        "\uff12\uff10\uff12\uff16-11-24T10:00:00Z",  # full-width digits
        "2026-11-24T10:00:00.\u0665Z",  # Arabic-Indic digit in the fraction
        "2026-11-24T10:00:60Z",  # leap second
        "2026-11-24T24:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-24T10:00:00+24:00",
        "2026-11-24T10:00:00+01:60",
        "+2026-11-24T10:00:00Z",
        "2026-11-24",
        "",
    ],
)
def test_only_rfc3339_text_timestamps_are_accepted(decoder: Decoder, ts: str) -> None:
    result = mqtt(decoder, "store/demo/shelf/A1-1/weight", {"ts": ts, "seq": 1, "grams": 5.0})
    assert isinstance(result, Rejection), result
    assert result.reason is RejectReason.BAD_TIMESTAMP
    assert result.detail


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-24T10:00:00Z", NOW_MS),
        ("2026-11-24t10:00:00z", NOW_MS),  # RFC 3339 5.6: T and Z may be lower case
        ("2026-11-24T11:00:00+01:00", NOW_MS),
        ("2026-11-24T09:30:00-00:30", NOW_MS),
        ("2026-11-24T10:00:00-00:00", NOW_MS),
        ("2026-11-24T10:00:00.5Z", NOW_MS + 500),
        ("2026-11-24T10:00:00.123456789Z", NOW_MS + 123),
        ("2026-11-24T10:00:00.9999Z", NOW_MS + 999),
    ],
)
def test_rfc3339_text_timestamps_are_accepted(decoder: Decoder, ts: str, expected: int) -> None:
    result = mqtt(decoder, "store/demo/shelf/A1-1/weight", {"ts": ts, "seq": 1, "grams": 5.0})
    assert isinstance(result, ShelfWeight), result
    assert result.ts_ms == expected


@pytest.mark.parametrize(
    "fields",
    [
        ["A6-2", "1_0", str(NOW_MS), "1620.5"],
        ["A6-2", " 10", str(NOW_MS), "1620.5"],
        ["A6-2", "10 ", str(NOW_MS), "1620.5"],
        ["A6-2", "10\r", str(NOW_MS), "1620.5"],
        ["A6-2", "+10", str(NOW_MS), "1620.5"],
        ["A6-2", "-1", str(NOW_MS), "1620.5"],
        ["A6-2", "", str(NOW_MS), "1620.5"],
        ["A6-2", "0x10", str(NOW_MS), "1620.5"],
        ["A6-2", "10", f"{NOW_MS}.0", "1620.5"],
        ["A6-2", "10", f"{NOW_MS // 1000}e3", "1620.5"],
        ["A6-2", "10", f" {NOW_MS}", "1620.5"],
        ["A6-2", "10", str(NOW_MS), "1_100.5"],
        ["A6-2", "10", str(NOW_MS), "1100.5\r"],
        ["A6-2", "10", str(NOW_MS), " 1100.5"],
        ["A6-2", "10", str(NOW_MS), "1.1e3"],
        ["A6-2", "10", str(NOW_MS), "+1100.5"],
        ["A6-2", "10", str(NOW_MS), ".5"],
        ["A6-2", "10", str(NOW_MS), "5."],
        ["A6-2", "10", str(NOW_MS), "nan"],
        ["A6-2", "10", str(NOW_MS), "NaN"],
        ["A6-2", "10", str(NOW_MS), "inf"],
        ["A6-2", "10", str(NOW_MS), "-Infinity"],
        ["A6-2", "10", str(NOW_MS), ""],
    ],
)
def test_serial_number_fields_are_parsed_strictly(decoder: Decoder, fields: list[str]) -> None:
    result = decoder.decode_serial("legacy", encode_frame("WGT", fields))
    assert isinstance(result, Rejection), result
    assert result.reason is RejectReason.BAD_SCHEMA
    assert result.detail


@pytest.mark.parametrize(
    "fields",
    [
        ["A6-2", "4", str(NOW_MS), "pick", "1"],
        ["A6-2", "4", str(NOW_MS), "PICK ", "1"],
        ["A6-2", "4", str(NOW_MS), "PICK", " 1"],
        ["A6-2", "4", str(NOW_MS), "PICK", "1_0"],
    ],
)
def test_serial_event_fields_are_parsed_strictly(decoder: Decoder, fields: list[str]) -> None:
    result = decoder.decode_serial("legacy", encode_frame("EVT", fields))
    assert isinstance(result, Rejection), result
    assert result.reason is RejectReason.BAD_SCHEMA


@pytest.mark.parametrize(
    ("grams", "expected"), [("1620.5", 1620.5), ("-3.25", -3.25), ("0", 0.0), ("007", 7.0), ("-0.0", 0.0)]
)
def test_serial_plain_decimals_are_accepted(decoder: Decoder, grams: str, expected: float) -> None:
    result = decoder.decode_serial("legacy", encode_frame("WGT", ["A6-2", "0003", str(NOW_MS), grams]))
    assert isinstance(result, ShelfWeight), result
    assert (result.seq, result.grams) == (3, expected)
