"""Fuzzing the decoder where it broke: byte-level mutations, invalid UTF-8, extreme dates, deep nesting.

The property everywhere: `decode_mqtt` / `decode_serial` return a reading or a rejection with a detail,
and never a `decode_error`. The decoder is total by construction (a catch-all turns any exception into
`decode_error`), so these tests assert the stronger property: nothing reached the catch-all, i.e. every
input was classified on purpose. Example counts follow the hypothesis profile (tests/conftest.py):
small for `make test`, 5,000 per test for `make test-long`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from sensors.decode import MAX_JSON_DEPTH, Decoder, _nests_deeper_than
from sensors.frames import checksum, encode_frame
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
from sensors.timeparse import TimestampError, to_epoch_ms
from tests.sensors.test_decode import NOW_MS, NOW_S, PLANOGRAM

READING_TYPES = (ShelfWeight, ShelfEvent, FridgeTemperature, FootfallCount, PosTransaction, DeviceStatus)
DECODER = Decoder("demo", PLANOGRAM, clock=lambda: NOW_S)


def examples(at_least: int) -> int:
    """`at_least` examples by default; the `long` profile's count when that is larger."""
    return max(at_least, settings().max_examples)


def check(result: object) -> None:
    assert isinstance(result, (Rejection, *READING_TYPES)), result
    if isinstance(result, Rejection):
        assert result.detail
        assert result.reason is not RejectReason.DECODE_ERROR, result.detail
        assert len(result.payload) <= 4096


# -- seeds: one valid message of every kind --------------------------------------------------------------
def _json(body: object, *, ascii_only: bool = True) -> bytes:
    return json.dumps(body, ensure_ascii=ascii_only).encode()


VALID_MQTT: list[tuple[str, bytes]] = [
    ("store/demo/shelf/A1-1/weight", _json({"ts": NOW_MS, "seq": 41, "grams": 5124.5})),
    ("store/demo/shelf/A1-1/weight", _json({"ts": "2026-11-24T10:00:00.250+01:00", "seq": 1, "grams": 0})),
    ("store/demo/shelf/A1-1/event", _json({"ts": "2026-11-24T10:00:00Z", "seq": 42, "action": "pick"})),
    ("store/demo/fridge/F1/temperature", _json({"ts": NOW_MS, "seq": 7, "celsius": -3.8, "fw": "1.2"})),
    ("store/demo/footfall/entrance", _json({"ts": NOW_MS, "seq": 3, "in": 12, "out": 9, "interval_s": 10})),
    (
        "store/demo/pos/1/transaction",
        _json(
            {
                "ts": NOW_MS,
                "seq": 9,
                "basket_id": "L1-caf\u00e9",
                "items": [
                    {"sku": "1031", "qty": 2, "unit_price": 1.09},
                    {"sku": "\u2603", "qty": 1, "unit_price": 0},
                ],
                "total": 2.18,
                "loyalty_id": "LOY-000123",
                "extra": {"nested": [1, [2, {"x": "y"}]]},
            },
            ascii_only=False,
        ),
    ),
    ("store/demo/device/pos-1/status", _json({"status": "online", "ts": NOW_MS - 5})),
    ("store/demo/device/shelf-A1-1/status", b"offline"),
]
VALID_SERIAL: list[bytes] = [
    encode_frame("WGT", ["A6-1", "17", str(NOW_MS), "1100.5"]),
    encode_frame("EVT", ["A6-1", "18", str(NOW_MS), "PICK", "1"]),
    encode_frame("TMP", ["F1", "5", str(NOW_MS), "-3.9"]),
]


def test_the_seeds_are_valid() -> None:
    for topic, payload in VALID_MQTT:
        assert isinstance(DECODER.decode_mqtt(topic, payload), READING_TYPES), (topic, payload)
    for line in VALID_SERIAL:
        assert isinstance(DECODER.decode_serial("p", line), READING_TYPES), line


# -- byte-level mutation ---------------------------------------------------------------------------------
# Byte strings that tend to break parsers: JSON structure, escapes, invalid UTF-8 (lone continuation,
# truncated sequence, overlong, surrogate, beyond U+10FFFF), number edge cases, the dates that overflowed.
NASTY = [
    b'"',
    b"\\",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"\x00",
    b"\x80",
    b"\xc3",
    b"\xc3\x28",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xff",
    b"\\u0000",
    b"\\ud800",
    b"\\u00e9",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"-0",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"9" * 40,
    b"0.0000000000000000000000000001",
    b"null",
    b"true",
    b"[" * 50,
    b'{"a":' * 50,
    b"0001-01-01T00:00:00+00:01",
    b"9999-12-31T23:59:59-00:01",
    b"1970-01-01T00:00:00Z",
]
position = st.integers(min_value=0, max_value=1 << 16)
mutation = st.one_of(
    st.tuples(st.just("flip"), position, st.integers(1, 255)),
    st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=4) | st.sampled_from(NASTY)),
    st.tuples(st.just("replace"), position, st.sampled_from(NASTY)),
    st.tuples(st.just("delete"), position, st.integers(1, 8)),
    st.tuples(st.just("repeat"), position, st.integers(1, 8)),
)


def mutate(data: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    out = bytearray(data)
    for op, where, arg in ops:
        at = where % (len(out) + 1)
        if op == "flip" and at < len(out):
            assert isinstance(arg, int)
            out[at] ^= arg
        elif op == "insert":
            assert isinstance(arg, bytes)
            out[at:at] = arg
        elif op == "replace":
            assert isinstance(arg, bytes)
            out[at : at + len(arg)] = arg
        elif op == "delete":
            assert isinstance(arg, int)
            del out[at : at + arg]
        elif op == "repeat":
            assert isinstance(arg, int)
            out[at:at] = out[at : at + arg] * 3
    return bytes(out)


@settings(max_examples=examples(500))
@given(seed=st.sampled_from(VALID_MQTT), ops=st.lists(mutation, min_size=1, max_size=6))
@example(seed=VALID_MQTT[2], ops=[("replace", 53, b"\xc3\x28")])
@example(seed=VALID_MQTT[6], ops=[("replace", 12, b"\xff")])
def test_mutated_mqtt_payloads_never_crash(
    seed: tuple[str, bytes], ops: list[tuple[str, int, object]]
) -> None:
    topic, payload = seed
    check(DECODER.decode_mqtt(topic, mutate(payload, ops)))


def _reframe(body: bytes) -> bytes:
    """A frame around ``body`` with a correct checksum, so mutations reach the field parsers."""
    return b"$" + body + b"*" + f"{checksum(body):02X}".encode() + b"\r\n"


@settings(max_examples=examples(500))
@given(seed=st.sampled_from(VALID_SERIAL), ops=st.lists(mutation, min_size=1, max_size=4), keep=st.booleans())
def test_mutated_serial_frames_never_crash(
    seed: bytes, ops: list[tuple[str, int, object]], keep: bool
) -> None:
    body = seed[1 : seed.rindex(b"*")]
    mutated = mutate(body, ops)
    line = _reframe(mutated) if keep else mutate(seed, ops)
    result = DECODER.decode_serial("p", line)
    check(result)
    if isinstance(result, READING_TYPES) and not isinstance(result, DeviceStatus):
        # Whatever was accepted was written strictly: seq and ts as plain digits.
        fields = mutated.decode("ascii").split(",") if keep else []
        for text in fields[2:4]:
            assert text.isascii(), fields
            assert text.isdigit(), fields


# -- invalid UTF-8 anywhere ------------------------------------------------------------------------------
INVALID_UTF8 = st.sampled_from(
    [
        *(b"\x80", b"\xbf", b"\xc3", b"\xc3\x28", b"\xe2\x82", b"\xe2\x28\xa1", b"\xf0\x28\x8c\x28"),
        *(b"\xc0\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80"),
        *(b"\xfe", b"\xff"),
    ]
)


@settings(max_examples=examples(300))
@given(seed=st.sampled_from(VALID_MQTT), where=position, bad=INVALID_UTF8)
def test_invalid_utf8_anywhere_is_bad_json(seed: tuple[str, bytes], where: int, bad: bytes) -> None:
    topic, payload = seed
    assume(payload != b"offline")
    # Inside a string (keys, values, unknown fields) or between tokens: the payload is not JSON text.
    quotes = [i for i, byte in enumerate(payload) if byte == ord('"')]
    at = quotes[where % len(quotes)] + 1
    result = DECODER.decode_mqtt(topic, payload[:at] + bad + payload[at:])
    assert isinstance(result, Rejection), result
    assert result.reason is RejectReason.BAD_JSON, result.detail
    assert "UTF-8" in result.detail


# -- extreme dates ---------------------------------------------------------------------------------------
@st.composite
def rfc3339(draw: st.DrawFn) -> tuple[str, int]:
    """An RFC 3339 timestamp anywhere in years 1..9999 with any offset, and its epoch ms."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    offset_min = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    digits = draw(st.integers(0, 9))
    fraction = f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    sign = "-" if offset_min < 0 else "+"
    zone = draw(st.sampled_from(["Z", "z"])) if offset_min == 0 and draw(st.booleans()) else None
    zone = zone or f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    sep = draw(st.sampled_from("Tt"))
    text = (
        moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S").rjust(19, "0") + (f".{fraction}" if digits else "") + zone
    )
    naive = moment.replace(microsecond=0)
    # Naive differences cannot overflow (the decoder used astimezone(), which did).
    epoch_ms = (naive - datetime(1970, 1, 1)) // timedelta(milliseconds=1) - offset_min * 60_000
    millis = int(fraction[:3].ljust(3, "0")) if digits else 0
    return text, epoch_ms + millis


@settings(max_examples=examples(400))
@given(stamp=rfc3339())
@example(stamp=("0001-01-01T00:00:00+00:01", -62_135_596_860_000))
@example(stamp=("9999-12-31T23:59:59-00:01", 253_402_300_859_000))
def test_extreme_dates_parse_exactly_and_are_judged_by_age(stamp: tuple[str, int]) -> None:
    text, expected = stamp
    assert to_epoch_ms(text) == expected
    if 1 < int(text[:4]) < 9999:  # independent check where datetime's own conversion cannot overflow
        fraction = re.search(r"\.([0-9]+)", text)
        millis = int(fraction[1][:3].ljust(3, "0")) if fraction else 0
        whole = re.sub(r"\.[0-9]+", "", text).replace("t", "T").replace("z", "Z")
        assert int(datetime.fromisoformat(whole).timestamp()) * 1000 + millis == expected
    payload = _json({"ts": text, "seq": 1, "grams": 10})
    result = DECODER.decode_mqtt("store/demo/shelf/A1-1/weight", payload)
    check(result)
    within = -7 * 86_400_000 <= expected - NOW_MS <= 300_000
    assert isinstance(result, ShelfWeight) == within, (text, result)
    if not within:
        assert isinstance(result, Rejection)
        assert result.reason is RejectReason.BAD_TIMESTAMP
    then = Decoder("demo", PLANOGRAM, clock=lambda: expected / 1000)
    accepted = then.decode_mqtt("store/demo/shelf/A1-1/weight", payload)
    assert isinstance(accepted, ShelfWeight), accepted
    assert accepted.ts_ms == expected


@settings(max_examples=examples(300))
@given(ts=st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_any_integer_timestamp_is_a_reading_or_bad_timestamp(ts: int) -> None:
    result = DECODER.decode_mqtt("store/demo/shelf/A1-1/weight", _json({"ts": ts, "seq": 1, "grams": 1}))
    check(result)
    if isinstance(result, Rejection):
        assert result.reason is RejectReason.BAD_TIMESTAMP
    else:
        assert NOW_MS - 7 * 86_400_000 <= ts <= NOW_MS + 300_000


@settings(max_examples=examples(400))
@given(text=st.text(alphabet="0123456789-+:.TtZz ,W\u0665\uff11", max_size=34))
def test_timestamp_text_is_rfc3339_or_an_error(text: str) -> None:
    try:
        value = to_epoch_ms(text)
    except TimestampError:
        return
    assert isinstance(value, int)
    # Only the RFC 3339 shape got through: it must round-trip through datetime's ISO parser.
    assert len(text) >= 20
    assert text[10] in "Tt"
    assert text[4] == text[7] == "-"
    assert text[13] == text[16] == ":"
    assert text.isascii()
    iso = text.replace("t", "T").replace("z", "Z")
    datetime.fromisoformat(iso[:19])


@settings(max_examples=examples(300))
@given(value=st.text(max_size=40) | st.integers() | st.floats())
def test_serial_timestamp_and_number_fields_never_crash(value: object) -> None:
    text = str(value)
    for fields in (
        ["A6-1", text, str(NOW_MS), "1.5"],
        ["A6-1", "1", text, "1.5"],
        ["A6-1", "1", str(NOW_MS), text],
    ):
        try:
            line = encode_frame("WGT", fields)
        except UnicodeEncodeError:
            line = _reframe(",".join(["WGT", *fields]).encode("utf-8", "surrogatepass"))
        check(DECODER.decode_serial("p", line))


# -- deep nesting ----------------------------------------------------------------------------------------
@st.composite
def nested(draw: st.DrawFn) -> tuple[bytes, int]:
    """A JSON value nested ``depth`` deep (mixing arrays and objects, with bracket-laden strings)."""
    depth = draw(st.integers(0, 3000) | st.integers(MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH + 3))
    pattern = draw(st.lists(st.sampled_from(["list", "dict"]), min_size=1, max_size=8))
    kinds = (pattern * (depth // len(pattern) + 1))[:depth]
    noise = draw(st.sampled_from(['"[{"', '"\\\\"', '"\\"]}"', "1", "[]", '""']))
    opening = "".join(f"[{noise}," if kind == "list" else f'{{"k{i % 3}[":' for i, kind in enumerate(kinds))
    closing = "".join("]" if kind == "list" else "}" for kind in reversed(kinds))
    return (opening + noise + closing).encode(), depth + (1 if noise == "[]" else 0)


@settings(max_examples=examples(200))
@given(
    value=nested(), topic=st.sampled_from(["store/demo/shelf/A1-1/weight", "store/demo/device/pos-1/status"])
)
def test_deep_nesting_is_bad_json_beyond_the_limit(value: tuple[bytes, int], topic: str) -> None:
    text, depth = value
    if topic.endswith("status"):
        payload = b'{"status": "online", "extra": ' + text + b"}"
    else:
        payload = b'{"ts": ' + str(NOW_MS).encode() + b', "seq": 1, "grams": 5, "extra": ' + text + b"}"
    result = DECODER.decode_mqtt(topic, payload)
    check(result)
    if depth + 1 > MAX_JSON_DEPTH:
        assert isinstance(result, Rejection), depth
        assert result.reason is RejectReason.BAD_JSON
        assert "nests deeper" in result.detail
    else:
        assert isinstance(result, READING_TYPES), result


json_leaf = st.none() | st.booleans() | st.integers() | st.text(alphabet='ab[]{}"\\,:\u00e9', max_size=6)
json_tree = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text('a[]"\\{', max_size=3), children, max_size=3)
    ),
    max_leaves=40,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=examples(300))
@given(value=json_tree, limit=st.integers(0, 8))
def test_the_depth_scan_agrees_with_a_parser(value: object, limit: int) -> None:
    text = json.dumps(value).encode()
    assert _nests_deeper_than(text, limit) == (_depth(value) > limit), text
