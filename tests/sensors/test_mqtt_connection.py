"""The daemon's MQTT connection against brokers that misbehave (a scripted one on a loopback port) and
against mosquitto for the last will: every failure is a `TransportError` with a reason, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiomqtt
import pytest

from edge.demo.broker import MosquittoBroker
from sensors import mqtt
from sensors import mqtt_wire as wire
from sensors.errors import TransportError

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CONNACK_OK = b"\x20\x02\x00\x00"


@contextlib.asynccontextmanager
async def scripted_broker(script: Script) -> AsyncIterator[mqtt.MqttSettings]:
    """A TCP server on a free loopback port that plays ``script`` for each connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield mqtt.MqttSettings("127.0.0.1", port, client_id="edge-test", keepalive_s=1)
    finally:
        server.close()


async def read_packet(reader: asyncio.StreamReader) -> wire.Control | wire.Publish:
    first = await reader.readexactly(1)
    length_bytes = b""
    while True:
        byte = await reader.readexactly(1)
        length_bytes += byte
        if not byte[0] & 0x80:
            break
    length, _ = wire._long_length(bytearray(length_bytes), 0, len(length_bytes))
    body = await reader.readexactly(length)
    (packet,) = wire.PacketReader().feed(first + length_bytes + body)
    return packet


async def test_a_refused_connect_names_the_broker_and_the_reason() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert (await read_packet(reader)).kind == wire.CONNECT  # type: ignore[union-attr]
        writer.write(b"\x20\x02\x00\x04")
        await writer.drain()

    async with scripted_broker(refuse) as settings:
        with pytest.raises(
            TransportError, match=rf"mqtt://127.0.0.1:{settings.port}.*bad user name or password"
        ):
            async with mqtt.MqttSource(settings):
                pass


async def test_a_broker_that_never_answers_connect_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt, "_REPLY_TIMEOUT_S", 0.3)

    async def mute(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up

    async with scripted_broker(mute) as settings:
        with pytest.raises(TransportError, match="no reply from the broker"):
            async with mqtt.MqttSource(settings):
                pass


async def test_nobody_listening_is_a_transport_error() -> None:
    async with scripted_broker(lambda r, w: asyncio.sleep(0)) as settings:
        pass  # the server is closed again: its port refuses
    with pytest.raises(TransportError, match="cannot connect to mqtt://"):
        async with mqtt.MqttSource(settings):
            pass


async def test_a_broker_gone_silent_is_noticed_by_the_keepalive() -> None:
    pings: list[int] = []

    async def accept_then_go_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        while True:  # reads the pings, never answers
            packet = await read_packet(reader)
            if isinstance(packet, wire.Control) and packet.kind == wire.PINGREQ:
                pings.append(1)

    async with scripted_broker(accept_then_go_silent) as settings, mqtt.MqttSource(settings) as source:
        with pytest.raises(TransportError, match="silent"):
            await asyncio.wait_for(anext(source.messages()), 5)
    assert pings  # it did ask before giving up


async def test_garbage_from_the_broker_ends_the_connection_with_the_reason() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        await writer.drain()
        await asyncio.sleep(0.2)  # connected: the garbage comes later
        writer.write(b"\x36\x04\x00\x01tx")  # a PUBLISH at QoS 3
        await reader.read()

    async with scripted_broker(garbage) as settings, mqtt.MqttSource(settings) as source:
        with pytest.raises(TransportError, match="QoS 3"):
            await asyncio.wait_for(anext(source.messages()), 5)


async def test_messages_arrive_in_order_and_the_acks_of_one_turn_reach_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A QoS 0 flood larger than the pause mark pauses reading and loses nothing; acks come back."""
    monkeypatch.setattr(mqtt, "_PAUSE_AT", 100)
    monkeypatch.setattr(mqtt, "_RESUME_AT", 10)
    acked: list[int] = []
    flood = 1_000

    async def publish_many(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        writer.write(
            b"".join(wire.publish_packet("q0", str(n).encode(), qos=0, retain=False) for n in range(flood))
        )
        writer.write(
            b"".join(
                wire.publish_packet("q1", str(n).encode(), qos=1, retain=False, packet_id=n + 1)
                for n in range(50)
            )
        )
        await writer.drain()
        while len(acked) < 50:
            packet = await read_packet(reader)
            if isinstance(packet, wire.Control) and packet.kind == wire.PUBACK:
                acked.append(int.from_bytes(packet.body[:2], "big"))

    async with scripted_broker(publish_many) as settings, mqtt.MqttSource(settings) as source:
        connection = source._connected()
        await asyncio.sleep(0.3)  # everything sent; the consumer has not started
        assert connection._paused
        received = []
        async for message in source.messages():
            received.append(message)
            if len(received) == flood + 50:
                break
        assert [m.payload for m in received[:flood]] == [str(n).encode() for n in range(flood)]
        assert not connection._paused
        for message in received:
            message.ack()  # QoS 0: nothing to send; QoS 1: queued, leaves at the end of this turn
        for _ in range(100):
            if len(acked) == 50:
                break
            await asyncio.sleep(0.02)
    assert acked == list(range(1, 51))


@pytest.mark.integration
async def test_the_will_fires_on_a_lost_connection_and_not_on_a_clean_exit(broker: MosquittoBroker) -> None:
    topic = f"test/{uuid.uuid4().hex}/status"
    will = mqtt.LastWill(topic, b"gone")
    settings = mqtt.MqttSettings("127.0.0.1", broker.port, client_id=f"will-{uuid.uuid4().hex[:8]}")

    async def retained() -> bytes:
        async with aiomqtt.Client("127.0.0.1", broker.port) as watcher:
            await watcher.subscribe(topic, qos=1)
            async for message in watcher.messages:
                return bytes(message.payload)  # type: ignore[arg-type]
        raise AssertionError("no retained message")

    async with mqtt.MqttSource(settings, will) as source:
        await source.publish(topic, b"here", retain=True)
    assert await asyncio.wait_for(retained(), 5) == b"here"  # a clean exit: no will
    async with mqtt.MqttSource(settings, will) as source:
        source._connected().fail(TransportError("cut"))  # the socket closes without a DISCONNECT
        with pytest.raises(TransportError, match="cut"):
            await anext(source.messages())
    assert await asyncio.wait_for(retained(), 5) == b"gone"
