"""Manual acks through a real broker: only acknowledged messages are gone from the persistent session."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest

from edge.demo.broker import MosquittoBroker
from sensors.mqtt import MqttSettings, MqttSource


async def _publish(broker: MosquittoBroker, topic: str, payloads: list[bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as publisher:
        for payload in payloads:
            await publisher.publish(topic, payload, qos=1)


async def _receive(source: MqttSource, count: int, timeout: float = 5.0) -> list:
    received = []

    async def collect() -> None:
        async for message in source.messages():
            received.append(message)
            if len(received) == count:
                return

    await asyncio.wait_for(collect(), timeout)
    return received


@pytest.mark.integration
async def test_unacked_messages_are_redelivered_and_acked_ones_are_not(broker: MosquittoBroker) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    settings = MqttSettings("127.0.0.1", broker.port, client_id=f"ack-test-{uuid.uuid4().hex[:8]}")
    async with MqttSource(settings) as source:
        await source.subscribe([topic])
        await _publish(broker, topic, [b"one", b"two", b"three"])
        first = await _receive(source, 3)
        first[1].ack()  # only "two" is acknowledged
        await asyncio.sleep(0.3)  # let the PUBACK leave before we drop the connection
    async with MqttSource(settings) as source:  # same client id: persistent session
        again = await _receive(source, 2)
        assert sorted(m.payload for m in again) == [b"one", b"three"]
        for message in again:
            message.ack()
        await asyncio.sleep(0.3)
    async with MqttSource(settings) as source:
        with pytest.raises(TimeoutError):
            await _receive(source, 1, timeout=1.0)


@pytest.mark.integration
async def test_acks_from_an_old_connection_are_dropped(broker: MosquittoBroker) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    settings = MqttSettings("127.0.0.1", broker.port, client_id=f"gen-test-{uuid.uuid4().hex[:8]}")
    source = MqttSource(settings)
    async with source:
        await source.subscribe([topic])
        await _publish(broker, topic, [b"x"])
        (stale,) = await _receive(source, 1)
    async with source:
        stale.ack()  # belongs to the previous connection: must not ack whatever mid means now
        (redelivered,) = await _receive(source, 1)
        assert redelivered.payload == b"x"
