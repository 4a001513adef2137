"""MQTT transport: one connection to the broker whose QoS 1 messages are acknowledged only when the
caller says so (after the commit that makes them durable).

The daemon speaks MQTT 3.1.1 itself over an asyncio protocol (packets in sensors/mqtt_wire.py) instead
of through aiomqtt/paho. A profile of the ingest flood (issue #18) put over half of the event loop's
time in paho's per-message path: a `recv` per packet header, length and body, a `send` per PUBACK, a
`threading.Condition` per received message, then aiomqtt's queue. Here one `data_received` parses every
packet of a chunk in one loop, and the acks of one commit leave in one write. Simulators and tests keep
aiomqtt: they are the other side of the wire and not on the measured path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from sensors import mqtt_wire as wire
from sensors.errors import TransportError

log = logging.getLogger(__name__)
_DRAIN_TURN = 64  # messages handed out between two turns of the event loop
_PAUSE_AT = 20_000  # received, not yet taken by the consumer: stop reading the socket (QoS 0 floods)
_RESUME_AT = 5_000
_REPLY_TIMEOUT_S = 10.0


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


class ReceivedMessage:
    """A message from the broker. ``ack()`` once it is durable; a no-op for QoS 0, and for a message
    of an earlier connection (the broker redelivers those, and ingest is idempotent)."""

    __slots__ = ("_connection", "packet_id", "payload", "qos", "topic")

    def __init__(self, publish: wire.Publish, connection: _Connection) -> None:
        self.topic = publish.topic
        self.payload = publish.payload
        self.qos = publish.qos
        self.packet_id = publish.packet_id
        self._connection = connection

    def ack(self) -> None:
        if self.qos:
            self._connection.ack(self.packet_id)


class _Connection(asyncio.Protocol):
    """The socket's side: parses what arrives, answers the broker's replies, batches acks."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = wire.PacketReader()
        self.incoming: collections.deque[ReceivedMessage] = collections.deque()
        self.replies: dict[tuple[int, int], asyncio.Future[bytes]] = {}  # (kind, packet id) -> body
        self.lost: TransportError | None = None
        self.arrived = asyncio.Event()  # something to take, or the connection ended
        self.last_heard = time.monotonic()
        self._acks = bytearray()
        self._paused = False
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        try:
            packets = self.reader.feed(data)
        except TransportError as exc:
            self.fail(exc)
            return
        for packet in packets:
            if isinstance(packet, wire.Publish):
                self.incoming.append(ReceivedMessage(packet, self))
            else:
                self._control(packet)
        if self.incoming:
            self.arrived.set()
            if len(self.incoming) >= _PAUSE_AT and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(TransportError(f"connection to broker lost: {exc or 'closed by the broker'}"))

    # -- used by MqttSource ---------------------------------------------------------------------------
    def take(self) -> ReceivedMessage | None:
        if not self.incoming:
            return None
        message = self.incoming.popleft()
        if self._paused and len(self.incoming) <= _RESUME_AT and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return message

    def send(self, packet: bytes) -> None:
        if self.lost is not None or self.transport is None:
            raise self.lost or TransportError("not connected to the broker")
        self.transport.write(packet)

    def ack(self, packet_id: int) -> None:
        """Queue a PUBACK; every ack queued in one turn of the loop leaves in one write."""
        if self.lost is not None:
            return
        if not self._acks:
            self._loop.call_soon(self._flush_acks)
        self._acks += wire.puback_packet(packet_id)

    def expect(self, kind: int, packet_id: int) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = self._loop.create_future()
        if self.lost is not None:
            future.set_exception(self.lost)
        else:
            self.replies[(kind, packet_id)] = future
        return future

    def fail(self, error: TransportError) -> None:
        """Give up on the connection: close the socket and wake whoever waits on it."""
        self._end(error)
        if self.transport is not None:
            self.transport.abort()

    # -- internals ------------------------------------------------------------------------------------
    def _flush_acks(self) -> None:
        acks, self._acks = self._acks, bytearray()
        if acks and self.lost is None and self.transport is not None:
            self.transport.write(bytes(acks))

    def _control(self, packet: wire.Control) -> None:
        if packet.kind == wire.CONNACK:
            key = (wire.CONNACK, 0)
        elif packet.kind in (wire.SUBACK, wire.PUBACK) and len(packet.body) >= 2:
            key = (packet.kind, packet.body[0] << 8 | packet.body[1])
        else:
            return  # PINGRESP (last_heard is enough) or anything a 3.1.1 client may ignore
        future = self.replies.pop(key, None)
        if future is not None and not future.done():
            future.set_result(packet.body)

    def _end(self, error: TransportError) -> None:
        if self.lost is None:
            self.lost = error
        self.arrived.set()
        replies, self.replies = self.replies, {}
        for future in replies.values():
            if not future.done():
                future.set_exception(error)


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
        self._connection: _Connection | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._packet_id = 0

    async def __aenter__(self) -> Self:
        s = self._settings
        loop = asyncio.get_running_loop()
        where = f"mqtt://{s.host}:{s.port}"
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, s.host, s.port), _REPLY_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"cannot connect to {where}: {exc or 'timed out'}") from exc
        will = wire.Will(self._will.topic, self._will.payload, 1, self._will.retain) if self._will else None
        try:
            connection.send(
                wire.connect_packet(
                    s.client_id, keepalive_s=s.keepalive_s, clean_session=False,
                    username=s.username, password=s.password, will=will,
                )
            )  # fmt: skip
            body = await self._reply(connection, wire.CONNACK, 0)
        except TransportError as exc:
            connection.fail(exc)
            raise TransportError(f"cannot connect to {where}: {exc}") from exc
        code = body[1] if len(body) >= 2 else -1
        if code != 0:
            reason = wire.CONNACK_REASONS.get(code, f"return code {code}")
            connection.fail(TransportError(reason))
            raise TransportError(f"cannot connect to {where}: the broker refused: {reason}")
        self._connection = connection
        self._pinger = asyncio.create_task(self._keep_alive(connection), name="mqtt:keepalive")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        connection, self._connection = self._connection, None
        pinger, self._pinger = self._pinger, None
        if pinger is not None:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
        if connection is None or connection.transport is None:
            return
        if connection.lost is None:
            connection._flush_acks()  # acks queued this turn still leave before the DISCONNECT
            connection.transport.write(wire.DISCONNECT_PACKET)  # a clean end: the will does not fire
            connection.transport.close()
        connection.lost = connection.lost or TransportError("disconnected")

    def _connected(self) -> _Connection:
        if self._connection is None:
            raise TransportError("MqttSource is not connected (use it as an async context manager)")
        return self._connection

    def _next_id(self) -> int:
        self._packet_id = self._packet_id % 0xFFFF + 1
        return self._packet_id

    @staticmethod
    async def _reply(connection: _Connection, kind: int, packet_id: int) -> bytes:
        future = connection.expect(kind, packet_id)
        try:
            return await asyncio.wait_for(future, _REPLY_TIMEOUT_S)
        except TimeoutError:
            connection.replies.pop((kind, packet_id), None)
            raise TransportError(f"no reply from the broker in {_REPLY_TIMEOUT_S:.0f} s") from None

    async def subscribe(self, topic_filters: list[str]) -> None:
        connection = self._connected()
        packet_id = self._next_id()
        connection.send(wire.subscribe_packet(packet_id, [(f, 1) for f in topic_filters]))
        try:
            body = await self._reply(connection, wire.SUBACK, packet_id)
        except TransportError as exc:
            raise TransportError(f"subscribe failed: {exc}") from exc
        refused = [f for f, granted in zip(topic_filters, body[2:], strict=False) if granted == 0x80]
        if refused:
            raise TransportError(f"subscribe failed: the broker refused {', '.join(refused)}")

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        connection = self._connected()
        packet_id = self._next_id() if qos else 0
        try:
            connection.send(
                wire.publish_packet(topic, payload, qos=min(qos, 1), retain=retain, packet_id=packet_id)
            )
            if qos:
                await self._reply(connection, wire.PUBACK, packet_id)
        except TransportError as exc:
            raise TransportError(f"publish to {topic} failed: {exc}") from exc

    async def messages(self) -> AsyncIterator[ReceivedMessage]:
        """Messages in the order they arrived, until the connection ends (`TransportError`)."""
        connection = self._connected()
        taken = 0
        while True:
            message = connection.take()
            if message is None:
                if connection.lost is not None:
                    raise connection.lost
                connection.arrived.clear()
                await connection.arrived.wait()
                continue
            yield message
            taken += 1
            if taken % _DRAIN_TURN == 0:
                await asyncio.sleep(0)  # let the loop's other tasks (commits, acks, HTTP) run

    async def _keep_alive(self, connection: _Connection) -> None:
        """PINGREQ every half keepalive; a broker silent for 1.5 keepalives is gone (a half-open TCP
        connection is otherwise only noticed at the next write)."""
        keepalive = max(1, self._settings.keepalive_s)
        while connection.lost is None:
            await asyncio.sleep(keepalive / 2)
            if time.monotonic() - connection.last_heard > keepalive * 1.5:
                connection.fail(TransportError(f"the broker was silent for {keepalive * 1.5:.0f} s"))
                return
            with contextlib.suppress(TransportError):
                connection.send(wire.PINGREQ_PACKET)
