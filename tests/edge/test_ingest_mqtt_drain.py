"""`MqttSource.messages` takes what aiomqtt has already queued in one go (issue #18): through a real
broker, a backlog that piled up while the consumer was busy arrives whole, in order, once, and only the
messages that were acknowledged are not redelivered on the next connection."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest

from edge.demo.broker import MosquittoBroker
from sensors.mqtt import MqttSettings, MqttSource, ReceivedMessage

COUNT = 300


async def _publish(broker: MosquittoBroker, topic: str, count: int) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as publisher:
        for n in range(count):
            await publisher.publish(topic, str(n).encode(), qos=1)


async def _take(source: MqttSource, count: int, busy_s: float = 0.0) -> list[ReceivedMessage]:
    received: list[ReceivedMessage] = []

    async def collect() -> None:
        async for message in source.messages():
            if not received and busy_s:
                await asyncio.sleep(busy_s)  # the backlog piles up in aiomqtt's queue meanwhile
            received.append(message)
            if len(received) == count:
                return

    await asyncio.wait_for(collect(), 20)
    return received


@pytest.mark.integration
async def test_a_backlog_arrives_whole_in_order_and_only_unacked_messages_come_back(
    broker: MosquittoBroker,
) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    settings = MqttSettings("127.0.0.1", broker.port, client_id=f"drain-{uuid.uuid4().hex[:8]}")
    async with MqttSource(settings) as source:
        await source.subscribe([topic])
        publishing = asyncio.create_task(_publish(broker, topic, COUNT))
        first = await _take(source, COUNT, busy_s=0.5)
        await publishing
        assert [int(m.payload) for m in first] == list(range(COUNT))
        for message in first:
            if int(message.payload) % 3:  # every third one stays unacknowledged
                message.ack()
        await asyncio.sleep(0.5)  # let the PUBACKs leave before the connection drops
    async with MqttSource(settings) as source:  # same client id: the persistent session
        await source.subscribe([topic])
        again = await _take(source, COUNT // 3)
        assert [int(m.payload) for m in again] == list(range(0, COUNT, 3))
