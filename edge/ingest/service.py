"""Ingest loops: transports -> decoder -> the single writer. Reconnection lives here, in one place each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from edge.ingest.receipts import TillReceipts
from edge.metrics import IngestMetrics
from edge.store.apply import Fate
from edge.store.writer import StoreWriter
from sensors.backoff import Backoff
from sensors.decode import Decoder, subscriptions
from sensors.errors import TransportError
from sensors.mqtt import LastWill, MqttSettings, MqttSource, ReceivedMessage
from sensors.schemas import Reading, Rejection
from sensors.serial_port import SerialLineSource, SerialSettings

log = logging.getLogger(__name__)


class MqttIngest:
    """Subscribes to the store's sensor topics and feeds the writer; acks each message after commit.

    Also owns the edge's presence: a retained ``online`` on ``store/{id}/edge/status`` after connecting,
    ``offline`` on clean shutdown, and the same ``offline`` as the last will for a crash; and, with
    ``receipts``, the receipt a till gets for each transaction once it committed (edge/ingest/receipts.py).
    """

    def __init__(
        self,
        settings: MqttSettings,
        store_id: str,
        decoder: Decoder,
        writer: StoreWriter,
        metrics: IngestMetrics,
        backoff: Backoff,
        receipts: TillReceipts | None = None,
    ) -> None:
        self._settings = settings
        self._store_id = store_id
        self._decoder = decoder
        self._writer = writer
        self._metrics = metrics
        self._backoff = backoff
        self.receipts = receipts
        self.status_topic = f"store/{store_id}/edge/status"
        self.source: MqttSource | None = None  # the live connection, for publishing alerts

    async def run(self) -> None:
        will = LastWill(self.status_topic, b"offline")
        while True:
            try:
                async with MqttSource(self._settings, will) as source:
                    await self._serve(source)
            except TransportError as exc:
                log.warning("mqtt_disconnected", extra={"error": str(exc)})
            finally:
                self.source = None
                self._metrics.mqtt_connected.set(0)
            delay = self._backoff.next_delay()
            log.info("mqtt_reconnect_wait", extra={"delay_s": round(delay, 2)})
            await asyncio.sleep(delay)

    async def _serve(self, source: MqttSource) -> None:
        await source.subscribe(subscriptions(self._store_id))
        await source.publish(self.status_topic, b"online", retain=True)
        self.source = source
        self._metrics.mqtt_connected.set(1)
        self._metrics.mqtt_connects.inc()
        self._backoff.reset()
        log.info("mqtt_connected", extra={"host": self._settings.host, "port": self._settings.port})
        receipts = (
            asyncio.create_task(self.receipts.run(source.publish), name="mqtt:receipts")
            if self.receipts is not None
            else None
        )
        try:
            async for message in source.messages():
                self._metrics.received.inc("mqtt")
                item = self._decoder.decode_mqtt(message.topic, message.payload)
                await self._writer.submit(item, self._after_commit(item, message))
        except asyncio.CancelledError:
            # Clean shutdown: say so (the will only fires on an unclean disconnect).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(source.publish(self.status_topic, b"offline", retain=True), 2.0)
            raise
        finally:
            if receipts is not None:
                await _cancel_and_wait(receipts)

    def _after_commit(self, item: Reading | Rejection, message: ReceivedMessage) -> Callable[[Fate], None]:
        """The writer's commit callback: ack to the broker; for a till's transaction, queue its receipt."""
        receipts = self.receipts
        if receipts is None or not receipts.wants(item):
            return lambda _fate: message.ack()
        payload = message.payload if isinstance(item, Rejection) else b""

        def ack_and_receipt(fate: Fate) -> None:
            message.ack()
            receipts.committed(item, fate, payload)

        return ack_and_receipt


async def _cancel_and_wait(task: asyncio.Task[None], attempts: int = 5) -> None:
    """Cancel until it ends: on 3.11 ``asyncio.wait_for`` inside a publish can swallow one cancellation."""
    for _ in range(attempts):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=0.5)
        if done:
            break
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.warning("receipts_task_failed", extra={"error": repr(task.exception())})


class SerialIngest:
    """Reads framed lines from one serial port; reopens it with backoff when it vanishes."""

    def __init__(
        self,
        settings: SerialSettings,
        decoder: Decoder,
        writer: StoreWriter,
        metrics: IngestMetrics,
        backoff: Backoff,
    ) -> None:
        self._settings = settings
        self._decoder = decoder
        self._writer = writer
        self._metrics = metrics
        self._backoff = backoff
        self.label = settings.label

    async def run(self) -> None:
        label = self.label
        while True:
            try:
                async with SerialLineSource(self._settings) as source:
                    self._metrics.serial_open.set(1, label)
                    log.info("serial_opened", extra={"port": label, "path": self._settings.path})
                    self._backoff.reset()
                    async for line in source.lines():
                        self._metrics.received.inc("serial")
                        await self._writer.submit(self._decoder.decode_serial(label, line))
            except TransportError as exc:
                log.warning("serial_unavailable", extra={"port": label, "error": str(exc)})
            finally:
                self._metrics.serial_open.set(0, label)
            await asyncio.sleep(self._backoff.next_delay())
