"""Fan-out of committed alert changes: to WebSocket subscribers and to MQTT `store/{id}/alerts/{kind}`.

The writer hands over alerts only after the transaction holding them has committed, so nobody is ever
told about an alert that a crash could undo. Subscribers get bounded queues: a slow WebSocket client
loses its oldest notifications (it can re-read `/api/v1/alerts`), never slows the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec

from edge.state.alerts import AlertEvent
from sensors.errors import TransportError
from sensors.mqtt import MqttSource

log = logging.getLogger(__name__)
_json = msgspec.json.Encoder()


class AlertBus:
    def __init__(self, store_id: str, queue_size: int = 1000) -> None:
        self._store_id = store_id
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[AlertEvent]] = set()
        self._mqtt_queue: asyncio.Queue[AlertEvent] = asyncio.Queue(maxsize=queue_size)

    def publish(self, events: list[AlertEvent]) -> None:
        for event in events:
            for queue in (*self._subscribers, self._mqtt_queue):
                if queue.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[AlertEvent]:
        queue: asyncio.Queue[AlertEvent] = asyncio.Queue(maxsize=self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AlertEvent]) -> None:
        self._subscribers.discard(queue)

    async def run_mqtt_publisher(self, connection: Callable[[], MqttSource | None]) -> None:
        """Publish alert changes on MQTT while ``connection()`` gives a live one (QoS 1; alerts stay
        durable in SQLite)."""
        while True:
            event = await self._mqtt_queue.get()
            topic = f"store/{self._store_id}/alerts/{event.kind}"
            while True:
                source = connection()
                if source is not None:
                    try:
                        await source.publish(topic, _json.encode(event), qos=1)
                        break
                    except TransportError as exc:
                        log.warning("alert_publish_failed", extra={"topic": topic, "error": str(exc)})
                await asyncio.sleep(1.0)
