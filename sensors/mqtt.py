"""MQTT transport: an aiomqtt client whose QoS 1 messages are acknowledged only when the caller says so.

aiomqtt 2.5 does not expose paho's manual acknowledgement. The paho-mqtt 2 client it wraps does
(`manual_ack_set(True)` and `ack(mid, qos)`) and runs its network I/O on the same event loop, so acking
from the loop after a commit is safe. `enable_manual_ack` is the only place that reaches into aiomqtt's
private attribute; `tests/sensors/test_mqtt_manual_ack.py` fails loudly if an upgrade breaks it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiomqtt

from sensors.errors import ManualAckUnavailableError, TransportError

log = logging.getLogger(__name__)
_DRAIN_TURN = 64  # messages taken from the incoming queue between two turns of the event loop


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    # How many unacknowledged messages the broker sends before waiting for acks (the daemon's batching
    # window) is the broker's max_inflight_messages: MQTT 3.1.1 has no client-side receive maximum.


@dataclass(frozen=True, slots=True)
class LastWill:
    topic: str
    payload: bytes
    retain: bool = True


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    topic: str
    payload: bytes
    qos: int
    ack: Callable[[], None]  # call after the message is durable; a no-op for QoS 0


def enable_manual_ack(client: aiomqtt.Client) -> Callable[[int, int], Any]:
    """Switch the wrapped paho client to manual acknowledgement and return its ``ack(mid, qos)``."""
    paho = getattr(client, "_client", None)
    manual_ack_set = getattr(paho, "manual_ack_set", None)
    ack = getattr(paho, "ack", None)
    if not callable(manual_ack_set) or not callable(ack):
        raise ManualAckUnavailableError(
            "aiomqtt.Client._client no longer offers paho's manual_ack_set/ack: "
            "check the aiomqtt upgrade before acknowledging anything"
        )
    manual_ack_set(True)
    return ack  # type: ignore[no-any-return]


class MqttSource:
    """One connection to the broker with a persistent session (clean_session=False).

    Usage::

        async with MqttSource(settings, will) as source:
            await source.subscribe(filters)
            async for message in source.messages():
                ...; message.ack()

    Connection failures raise `TransportError`; reconnecting is the caller's loop (with `Backoff`).
    Acks for messages received on an earlier connection are dropped: the broker redelivers those, and
    the daemon's idempotent ingest acknowledges the redelivered copy.
    """

    def __init__(self, settings: MqttSettings, will: LastWill | None = None) -> None:
        self._settings = settings
        self._will = will
        self._client: aiomqtt.Client | None = None
        self._incoming: asyncio.Queue[aiomqtt.Message] | None = None
        self._generation = 0

    async def __aenter__(self) -> Self:
        s = self._settings
        will = (
            aiomqtt.Will(self._will.topic, self._will.payload, qos=1, retain=self._will.retain)
            if self._will
            else None
        )
        incoming: list[asyncio.Queue[aiomqtt.Message]] = []
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            clean_session=False,
            keepalive=s.keepalive_s,
            will=will,
            timeout=10,
            queue_type=_recording_queue(incoming),
        )
        self._incoming = incoming[0]
        self._paho_ack = enable_manual_ack(client)
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise TransportError(f"cannot connect to mqtt://{s.host}:{s.port}: {exc}") from exc
        self._client = client
        self._generation += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, self._client = self._client, None
        self._generation += 1
        if client is None:
            return
        try:
            await client.__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError as err:
            log.debug("mqtt_disconnect_unclean", extra={"error": str(err)})

    def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            raise TransportError("MqttSource is not connected (use it as an async context manager)")
        return self._client

    async def subscribe(self, topic_filters: list[str]) -> None:
        try:
            await self._connected().subscribe([(f, 1) for f in topic_filters])
        except aiomqtt.MqttError as exc:
            raise TransportError(f"subscribe failed: {exc}") from exc

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        try:
            await self._connected().publish(topic, payload, qos=qos, retain=retain, timeout=10)
        except aiomqtt.MqttError as exc:
            raise TransportError(f"publish to {topic} failed: {exc}") from exc

    async def messages(self) -> AsyncIterator[ReceivedMessage]:
        client = self._connected()
        generation = self._generation
        try:
            async for first in client.messages:
                message: aiomqtt.Message | None = first
                taken = 0
                while message is not None:
                    yield ReceivedMessage(
                        topic=message.topic.value,
                        payload=_payload_bytes(message.payload),
                        qos=message.qos,
                        ack=self._acker(generation, message.mid, message.qos),
                    )
                    # What is already queued, without aiomqtt's task and wait per message (15 us each),
                    # letting the loop's other tasks (commits, acks, HTTP) run every so often.
                    taken += 1
                    if taken % _DRAIN_TURN == 0:
                        await asyncio.sleep(0)
                    message = _next_queued(self._incoming)
        except aiomqtt.MqttError as exc:
            raise TransportError(f"connection to broker lost: {exc}") from exc

    def _acker(self, generation: int, mid: int, qos: int) -> Callable[[], None]:
        def ack() -> None:
            if qos > 0 and generation == self._generation and self._client is not None:
                self._paho_ack(mid, qos)

        return ack


def _recording_queue(store: list[asyncio.Queue[aiomqtt.Message]]) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue type for aiomqtt's public ``queue_type`` that hands its instance to ``store``, so that
    `MqttSource.messages` can take the messages already received in one go."""

    class IncomingQueue(asyncio.Queue[aiomqtt.Message]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            store.append(self)

    return IncomingQueue


def _next_queued(queue: asyncio.Queue[aiomqtt.Message] | None) -> aiomqtt.Message | None:
    if queue is None or queue.empty():
        return None
    return queue.get_nowait()


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if payload is None:
        return b""
    return str(payload).encode("utf-8")
