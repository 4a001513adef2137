"""MQTT 3.1.1 packets: what the daemon's connection sends, and a reader for what the broker sends.

Only the client side of the subset the daemon speaks (OASIS MQTT 3.1.1): CONNECT with a will and a
persistent session, SUBSCRIBE at QoS 1, PUBLISH at QoS 0/1 both ways, PUBACK, PINGREQ, DISCONNECT.
The broker never sends QoS 2 to a QoS 1 subscription (it downgrades), so QoS 2 flows are not needed.

`PacketReader.feed` parses every whole packet in a chunk in one loop: at thousands of messages a
second this is the per-message path (sensors/mqtt.py says why it is not paho's).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sensors.errors import TransportError

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = (
    1, 2, 3, 4, 8, 9, 12, 13, 14,
)  # fmt: skip
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"
MAX_REMAINING = 268_435_455  # the largest length the four-byte encoding can carry
CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def remaining_length(n: int) -> bytes:
    """The variable-length encoding of a packet's remaining length (1-4 bytes)."""
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"packet too large for MQTT: {n} bytes")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError(f"string too long for MQTT: {len(raw)} bytes")
    return _U16.pack(len(raw)) + raw


def _blob(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"field too long for MQTT: {len(data)} bytes")
    return _U16.pack(len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + remaining_length(len(body)) + body


def connect_packet(
    client_id: str,
    *,
    keepalive_s: int,
    clean_session: bool,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
) -> bytes:
    flags = 0x02 if clean_session else 0
    payload = _utf8(client_id)
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += _utf8(will.topic) + _blob(will.payload)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _blob(password.encode("utf-8"))
    header = _utf8("MQTT") + bytes((4, flags)) + _U16.pack(keepalive_s)
    return _packet(CONNECT << 4, header + payload)


def subscribe_packet(packet_id: int, topic_filters: list[tuple[str, int]]) -> bytes:
    body = _U16.pack(packet_id) + b"".join(_utf8(f) + bytes((qos,)) for f, qos in topic_filters)
    return _packet(SUBSCRIBE << 4 | 0x02, body)


def publish_packet(topic: str, payload: bytes, *, qos: int, retain: bool, packet_id: int = 0) -> bytes:
    body = _utf8(topic) + (_U16.pack(packet_id) if qos else b"") + payload
    return _packet(PUBLISH << 4 | qos << 1 | (1 if retain else 0), body)


def puback_packet(packet_id: int) -> bytes:
    return b"\x40\x02" + _U16.pack(packet_id)


class Publish:
    """One PUBLISH from the broker: the topic, the payload, its QoS and packet id (0 for QoS 0)."""

    __slots__ = ("packet_id", "payload", "qos", "topic")

    def __init__(self, topic: str, payload: bytes, qos: int, packet_id: int) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.packet_id = packet_id


@dataclass(frozen=True, slots=True)
class Control:
    """Any other packet from the broker: its type, flags and body."""

    kind: int
    flags: int
    body: bytes


class PacketReader:
    """Splits the broker's byte stream into packets, however TCP cut it.

    ``feed(chunk)`` returns the whole packets now available, in order; a packet cut in two waits for
    the rest. A stream that cannot be MQTT (a length over four bytes, a PUBLISH shorter than its topic,
    a QoS 3) raises `TransportError`: the connection is unusable and the caller reconnects.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Publish | Control]:
        buf = self._buffer
        buf += chunk
        out: list[Publish | Control] = []
        view = memoryview(buf)
        pos, end = 0, len(buf)
        try:
            while end - pos >= 2:
                first = buf[pos]
                # The remaining length: one byte below 128 (every sensor reading), up to four.
                length = buf[pos + 1]
                at = pos + 2
                if length & 0x80:
                    length, at = _long_length(buf, pos + 1, end)
                    if at < 0:
                        break  # the length itself is not all here yet
                stop = at + length
                if stop > end:
                    break
                kind = first >> 4
                if kind == PUBLISH:
                    out.append(_publish(buf, view, first, at, stop))
                else:
                    out.append(Control(kind, first & 0x0F, bytes(view[at:stop])))
                pos = stop
        finally:
            view.release()
        if pos:
            del buf[:pos]
        return out


def _long_length(buf: bytearray, at: int, end: int) -> tuple[int, int]:
    """Decode a multi-byte remaining length at ``buf[at]``: (length, first body byte), or (0, -1) if
    the stream stops inside it."""
    length, shift = 0, 0
    for count in range(4):
        if at + count >= end:
            return 0, -1
        byte = buf[at + count]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return length, at + count + 1
    raise TransportError("malformed MQTT packet from the broker: remaining length over four bytes")


def _publish(buf: bytearray, view: memoryview, first: int, at: int, stop: int) -> Publish:
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise TransportError("malformed MQTT PUBLISH from the broker: QoS 3")
    if stop - at < 2:
        raise TransportError("malformed MQTT PUBLISH from the broker: no topic length")
    topic_end = at + 2 + (buf[at] << 8 | buf[at + 1])
    body = topic_end + (2 if qos else 0)
    if body > stop:
        raise TransportError("malformed MQTT PUBLISH from the broker: shorter than its topic")
    topic = str(view[at + 2 : topic_end], "utf-8", "replace")
    packet_id = buf[topic_end] << 8 | buf[topic_end + 1] if qos else 0
    return Publish(topic, bytes(view[body:stop]), qos, packet_id)
