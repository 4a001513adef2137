"""MQTT 3.1.1 packets: the bytes the daemon sends, and the reader for a stream cut anywhere."""

from __future__ import annotations

import random

import pytest

from sensors import mqtt_wire as wire
from sensors.errors import TransportError


def test_remaining_length_matches_the_specs_table() -> None:
    # OASIS MQTT 3.1.1, 2.2.3: the boundaries of the one- to four-byte encodings
    assert wire.remaining_length(0) == b"\x00"
    assert wire.remaining_length(127) == b"\x7f"
    assert wire.remaining_length(128) == b"\x80\x01"
    assert wire.remaining_length(16_383) == b"\xff\x7f"
    assert wire.remaining_length(16_384) == b"\x80\x80\x01"
    assert wire.remaining_length(2_097_151) == b"\xff\xff\x7f"
    assert wire.remaining_length(2_097_152) == b"\x80\x80\x80\x01"
    assert wire.remaining_length(268_435_455) == b"\xff\xff\xff\x7f"
    with pytest.raises(ValueError, match="too large"):
        wire.remaining_length(268_435_456)


def test_connect_packet_carries_session_will_and_credentials() -> None:
    packet = wire.connect_packet(
        "edge-1", keepalive_s=30, clean_session=False, username="u", password="pw",
        will=wire.Will("s/status", b"offline", qos=1, retain=True),
    )  # fmt: skip
    body = (
        b"\x00\x04MQTT\x04"
        + bytes((0x80 | 0x40 | 0x20 | 0x08 | 0x04,))  # user, password, will retain, will QoS 1, will
        + b"\x00\x1e"
        + b"\x00\x06edge-1"
        + b"\x00\x08s/status\x00\x07offline"
        + b"\x00\x01u\x00\x02pw"
    )
    assert packet == b"\x10" + bytes((len(body),)) + body
    bare = wire.connect_packet("c", keepalive_s=5, clean_session=True)
    assert bare == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x05\x00\x01c"


def test_subscribe_publish_and_puback_packets() -> None:
    assert wire.subscribe_packet(7, [("a/#", 1)]) == b"\x82\x08\x00\x07\x00\x03a/#\x01"
    assert wire.publish_packet("t", b"x", qos=1, retain=True, packet_id=258) == b"\x33\x06\x00\x01t\x01\x02x"
    assert wire.publish_packet("t", b"x", qos=0, retain=False) == b"\x30\x04\x00\x01tx"
    assert wire.puback_packet(0xABCD) == b"\x40\x02\xab\xcd"


def _broker_publish(topic: str, payload: bytes, qos: int, packet_id: int) -> bytes:
    return wire.publish_packet(topic, payload, qos=qos, retain=False, packet_id=packet_id)


def _stream(count: int, seed: int) -> tuple[bytes, list[tuple[str, bytes, int, int]]]:
    rng = random.Random(seed)
    expected, chunks = [], []
    for n in range(count):
        if rng.random() < 0.1:
            chunks.append(b"\xd0\x00")  # a PINGRESP between messages
        size = rng.choice([0, 5, 120, 127, 128, 300, 16_383, 16_384, 70_000])
        topic = f"store/s1/shelf/A{n}/weight" + ("é" if n % 7 == 0 else "")
        payload = bytes(rng.randrange(256) for _ in range(min(size, 64))) * (size // 64 + 1)
        payload = payload[:size]
        qos = n % 2
        packet_id = (n % 65_535) + 1 if qos else 0
        chunks.append(_broker_publish(topic, payload, qos, packet_id))
        expected.append((topic, payload, qos, packet_id))
    return b"".join(chunks), expected


@pytest.mark.parametrize("seed", range(5))
def test_a_stream_cut_anywhere_gives_the_same_packets_in_order(seed: int) -> None:
    data, expected = _stream(60, seed)
    rng = random.Random(seed)
    reader = wire.PacketReader()
    got: list[wire.Publish | wire.Control] = []
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 3, 7, 100, 4096, 65_536])
        got.extend(reader.feed(data[pos : pos + step]))
        pos += step
    publishes = [p for p in got if isinstance(p, wire.Publish)]
    assert [(p.topic, p.payload, p.qos, p.packet_id) for p in publishes] == expected
    assert all(c.kind == wire.PINGRESP for c in got if isinstance(c, wire.Control))
    assert reader.feed(b"") == []


def test_a_whole_chunk_of_many_packets_is_parsed_in_one_feed() -> None:
    data, expected = _stream(500, 11)
    packets = wire.PacketReader().feed(data)
    assert [(p.topic, p.payload) for p in packets if isinstance(p, wire.Publish)] == [
        (t, b) for t, b, _, _ in expected
    ]


def test_control_packets_keep_their_kind_flags_and_body() -> None:
    (connack, suback, puback) = wire.PacketReader().feed(
        b"\x20\x02\x00\x05" + b"\x90\x03\x00\x09\x01" + b"\x40\x02\x12\x34"
    )
    assert connack == wire.Control(wire.CONNACK, 0, b"\x00\x05")
    assert suback == wire.Control(wire.SUBACK, 0, b"\x00\x09\x01")
    assert puback == wire.Control(wire.PUBACK, 0, b"\x12\x34")


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "remaining length over four bytes"),
        (b"\x36\x04\x00\x01tx", "QoS 3"),
        (b"\x30\x01\x00", "no topic length"),
        (b"\x30\x04\x00\x09tx", "shorter than its topic"),
        (b"\x32\x03\x00\x01t", "shorter than its topic"),  # QoS 1 without room for its packet id
    ],
)
def test_a_stream_that_cannot_be_mqtt_is_refused_with_a_reason(stream: bytes, reason: str) -> None:
    with pytest.raises(TransportError, match=reason):
        wire.PacketReader().feed(stream)


def test_a_topic_that_is_not_utf8_is_read_with_replacement_not_a_crash() -> None:
    (packet,) = wire.PacketReader().feed(b"\x30\x05\x00\x02\xff\xfex")
    assert isinstance(packet, wire.Publish)
    assert packet.topic == "\ufffd\ufffd"
    assert packet.payload == b"x"
