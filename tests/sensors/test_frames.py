from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.frames import MAX_FRAME_BYTES, FrameError, checksum, decode_frame, encode_frame
from sensors.schemas import RejectReason

field_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="$*,\r\n"), max_size=12
)


def test_checksum_is_xor_of_body() -> None:
    # The NMEA example: $GPGLL,5057.970,N,00146.110,E,142451,A*27
    assert checksum(b"GPGLL,5057.970,N,00146.110,E,142451,A") == 0x27


@given(frame_type=st.sampled_from(["WGT", "EVT", "TMP", "X"]), fields=st.lists(field_text, max_size=6))
def test_encode_decode_roundtrip(frame_type: str, fields: list[str]) -> None:
    raw = encode_frame(frame_type, fields)
    assert raw.endswith(b"\r\n")
    frame = decode_frame(raw)
    assert frame.type == frame_type
    assert frame.fields == tuple(fields)


@given(
    fields=st.lists(field_text, min_size=1, max_size=6),
    position=st.integers(min_value=1),
    flip=st.integers(1, 127),
)
def test_any_corrupted_body_byte_is_caught(fields: list[str], position: int, flip: int) -> None:
    raw = bytearray(encode_frame("WGT", fields))
    star = raw.rindex(b"*")
    index = 1 + position % (star - 1)
    raw[index] ^= flip
    if raw[index] in b"$*\r\n":  # corrupting into a delimiter changes the framing, also an error
        with pytest.raises(FrameError):
            decode_frame(bytes(raw))
        return
    with pytest.raises(FrameError) as caught:
        decode_frame(bytes(raw))
    assert caught.value.reason in {RejectReason.BAD_CHECKSUM, RejectReason.BAD_FRAME}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"WGT,A1,1*00\r\n", RejectReason.BAD_FRAME),
        (b"$WGT,A1,1\r\n", RejectReason.BAD_FRAME),
        (b"$WGT,A1,1*0\r\n", RejectReason.BAD_FRAME),
        (b"$WGT,A1,1*ZZ\r\n", RejectReason.BAD_FRAME),
        (b"$WGT,A1,1*00\r\n", RejectReason.BAD_CHECKSUM),
        (b"$" + b"A" * (MAX_FRAME_BYTES + 1) + b"*00\r\n", RejectReason.OVERSIZED),
    ],
)
def test_bad_frames_name_their_reason(line: bytes, reason: RejectReason) -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame(line)
    assert caught.value.reason is reason
    assert caught.value.detail


@given(st.binary(max_size=400))
def test_decode_frame_never_raises_anything_but_frame_error(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_frame(data)
