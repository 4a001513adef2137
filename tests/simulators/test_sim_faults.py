"""Every valid simulated message decodes; every malformed one is rejected, for the reason declared."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors.decode import Decoder
from sensors.planogram import Planogram
from sensors.schemas import Rejection, RejectReason
from simulators.faults import FAULTS, FAULTS_BY_KIND, FaultInjector, FaultKind
from simulators.messages import MessageKind, MqttOut, SensorMessage, SerialOut, as_mqtt, as_serial

STORE_ID = "test-store"  # the decoder fixture's store
MakeMessage = Callable[..., SensorMessage]
LOAD_CELL_KINDS = (MessageKind.WEIGHT, MessageKind.EVENT)


def _injector(planogram: Planogram, seed: int = 1, rate: float = 1.0) -> FaultInjector:
    return FaultInjector(rate, STORE_ID, planogram.devices, random.Random(seed))


def _decode(decoder: Decoder, out: MqttOut | SerialOut) -> object:
    if isinstance(out, MqttOut):
        return decoder.decode_mqtt(out.topic, out.payload)
    return decoder.decode_serial("/dev/pts/test", out.line)


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_valid_mqtt_message_decodes(
    kind: MessageKind, decoder: Decoder, make_message: MakeMessage
) -> None:
    message = make_message(kind)
    reading = decoder.decode_mqtt(message.topic(STORE_ID), message.encode())
    assert not isinstance(reading, Rejection), reading
    assert getattr(reading, "seq", None) == message.seq
    assert reading.device == message.device


@pytest.mark.parametrize("kind", LOAD_CELL_KINDS)
def test_every_valid_serial_frame_decodes(
    kind: MessageKind, decoder: Decoder, make_message: MakeMessage
) -> None:
    message = make_message(kind, serial=True)
    reading = decoder.decode_serial("/dev/pts/test", as_serial(message).line)
    assert not isinstance(reading, Rejection), reading
    assert reading.device == message.device
    assert getattr(reading, "seq", None) == message.seq


def test_footfall_uses_the_in_out_wire_names(make_message: MakeMessage) -> None:
    payload = as_mqtt(make_message(MessageKind.FOOTFALL), STORE_ID).payload
    assert b'"in":4' in payload
    assert b'"out":3' in payload


def test_every_fault_kind_is_declared_once_with_a_transport() -> None:
    assert {spec.kind for spec in FAULTS} == set(FaultKind)
    assert len(FAULTS) == len(FaultKind)
    assert {s.kind for s in FAULTS if s.transport == "serial"} == {
        FaultKind.BAD_CHECKSUM,
        FaultKind.GARBAGE_LINE,
    }


_CASES = [(spec.kind, kind) for spec in FAULTS for kind in MessageKind if kind in spec.applies_to]


@pytest.mark.parametrize(("fault", "kind"), _CASES, ids=[f"{f}-{k}" for f, k in _CASES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_every_malformed_message_is_rejected_for_its_declared_reason(
    fault: FaultKind,
    kind: MessageKind,
    seed: int,
    decoder: Decoder,
    demo_planogram: Planogram,
    make_message: MakeMessage,
) -> None:
    spec = FAULTS_BY_KIND[fault]
    message = make_message(kind, serial=spec.transport == "serial")
    malformed = _injector(demo_planogram, seed).corrupt_as(fault, message)
    assert malformed.fault == fault.value
    result = _decode(decoder, malformed)
    assert isinstance(result, Rejection), f"{fault} on {kind} was accepted: {result}"
    assert result.reason == spec.expected, result.detail


def test_named_faults_look_like_the_brief(demo_planogram: Planogram, make_message: MakeMessage) -> None:
    injector = _injector(demo_planogram)
    wrong = injector.corrupt_as(FaultKind.WRONG_TYPE, make_message(MessageKind.WEIGHT))
    assert isinstance(wrong, MqttOut)
    assert b'"grams":"heavy"' in wrong.payload
    oversized = injector.corrupt_as(FaultKind.OVERSIZED, make_message(MessageKind.TEMPERATURE))
    assert isinstance(oversized, MqttOut)
    assert len(oversized.payload) > 64 * 1024
    seconds = injector.corrupt_as(
        FaultKind.EPOCH_SECONDS, make_message(MessageKind.FOOTFALL, ts_ms=1_750_000_000_123)
    )
    assert isinstance(seconds, MqttOut)
    assert b'"ts":1750000000,' in seconds.payload
    ghost = injector.corrupt_as(FaultKind.UNKNOWN_DEVICE, make_message(MessageKind.WEIGHT))
    assert isinstance(ghost, MqttOut)
    shelf = ghost.topic.split("/")[3]
    assert shelf not in demo_planogram.shelves
    assert ghost.device == "shelf-A1-3"  # sent over the real device's connection


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_garbage_lines_are_one_line_and_never_a_frame(seed: int, make_message: MakeMessage) -> None:
    injector = FaultInjector(1.0, STORE_ID, frozenset(), random.Random(seed))
    out = injector.corrupt_as(FaultKind.GARBAGE_LINE, make_message(MessageKind.EVENT, serial=True))
    assert isinstance(out, SerialOut)
    body = out.line.removesuffix(b"\r\n")
    assert out.line.endswith(b"\r\n")
    assert b"\n" not in body
    assert b"\r" not in body


def test_fault_mode_off_never_corrupts(demo_planogram: Planogram) -> None:
    injector = _injector(demo_planogram, rate=0.0)
    assert not any(injector.should_corrupt() for _ in range(1000))


def test_fault_rate_is_roughly_honoured(demo_planogram: Planogram) -> None:
    injector = _injector(demo_planogram, rate=0.1)
    hits = sum(injector.should_corrupt() for _ in range(10_000))
    assert 850 < hits < 1150


def test_serial_faults_do_not_apply_to_mqtt_only_kinds(
    demo_planogram: Planogram, make_message: MakeMessage
) -> None:
    with pytest.raises(ValueError, match="does not apply"):
        _injector(demo_planogram).corrupt_as(FaultKind.BAD_CHECKSUM, make_message(MessageKind.TEMPERATURE))
    assert FAULTS_BY_KIND[FaultKind.BAD_CHECKSUM].expected == RejectReason.BAD_CHECKSUM
