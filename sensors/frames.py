"""The legacy serial protocol: NMEA-style ASCII frames with an XOR checksum.

    $<TYPE>,<field>,...*<checksum>\r\n

The checksum is the XOR of every byte between ``$`` and ``*``, as two hex digits. Frame types (field
order is fixed):

    $WGT,<shelf>,<seq>,<ts_ms>,<grams>          shelf gross weight
    $EVT,<shelf>,<seq>,<ts_ms>,<PICK|PUT>,<n>   items picked up / put back
    $TMP,<unit>,<seq>,<ts_ms>,<celsius>         fridge temperature
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from sensors.schemas import RejectReason

MAX_FRAME_BYTES = 256


@dataclass(frozen=True, slots=True)
class Frame:
    type: str
    fields: tuple[str, ...]


class FrameError(ValueError):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def checksum(body: bytes) -> int:
    return reduce(lambda acc, byte: acc ^ byte, body, 0)


def encode_frame(frame_type: str, fields: tuple[str, ...] | list[str]) -> bytes:
    body = ",".join((frame_type, *fields)).encode("ascii")
    return b"$" + body + b"*" + f"{checksum(body):02X}".encode("ascii") + b"\r\n"


def decode_frame(line: bytes) -> Frame:
    """Decode one line (with or without its CR LF) or raise `FrameError` naming the reason."""
    line = line.rstrip(b"\r\n")
    if len(line) > MAX_FRAME_BYTES:
        raise FrameError(RejectReason.OVERSIZED, f"frame of {len(line)} bytes exceeds {MAX_FRAME_BYTES}")
    if not line.startswith(b"$"):
        raise FrameError(RejectReason.BAD_FRAME, "frame does not start with '$'")
    body, star, tail = line[1:].rpartition(b"*")
    if not star:
        raise FrameError(RejectReason.BAD_FRAME, "frame has no '*<checksum>' trailer")
    if len(tail) != 2:
        raise FrameError(RejectReason.BAD_FRAME, f"checksum must be two hex digits, got {tail!r}")
    try:
        expected = int(tail, 16)
    except ValueError:
        raise FrameError(RejectReason.BAD_FRAME, f"checksum {tail!r} is not hex") from None
    actual = checksum(body)
    if actual != expected:
        raise FrameError(RejectReason.BAD_CHECKSUM, f"checksum {expected:02X} != computed {actual:02X}")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(RejectReason.BAD_FRAME, "frame is not ASCII") from None
    frame_type, *fields = text.split(",")
    if not frame_type:
        raise FrameError(RejectReason.BAD_FRAME, "frame has no type")
    return Frame(frame_type, tuple(fields))
