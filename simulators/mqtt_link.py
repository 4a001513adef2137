"""One MQTT connection per simulated device, as in a real store.

Each device's client sets a retained last will ``offline`` on ``store/{store}/device/{device}/status``,
publishes retained ``online`` once connected and retained ``offline`` when it stops cleanly (or is
cancelled, best effort), then drains its outbox with QoS 1, one message at a time so the broker sees
each device's messages in ``seq`` order. If the broker goes away the device reconnects with
`sensors.backoff.Backoff` and carries on from the first unacknowledged message (a retry may duplicate
it; the daemon drops duplicates by ``(device, seq, ts)``). While it is disconnected the outbox keeps
the newest messages up to its capacity, so a dead broker never stalls the simulation.

A till given a `simulators.till.TillReceiptBook` also subscribes to its receipts, resends transactions
that no receipt confirmed in time, and when the run ends keeps its connection (up to the drain
deadline) until every transaction is confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

from sensors.backoff import Backoff
from simulators.messages import STATUS_LABEL, MqttOut, status_topic
from simulators.summary import RunCounters
from simulators.till import TillReceiptBook

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0
HOLD_POLL_S = 0.2  # how often a closed outbox held open for receipts looks again
KEEPALIVE_S = 30
OUTBOX_CAPACITY = 2_000  # ~30 minutes of one shelf at 1 Hz


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str
    port: int
    store_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


class DeviceOutbox:
    """Messages waiting for one device's connection: FIFO, bounded (oldest dropped first), closable.

    Closing lets the device drain what is queued until a deadline (loop time); what is left then is
    dropped and counted. ``hold`` (a till with unconfirmed transactions) keeps a closed, empty outbox
    waiting for resends until the deadline.
    """

    def __init__(self, capacity: int = OUTBOX_CAPACITY) -> None:
        self._items: deque[MqttOut] = deque()
        self._capacity = capacity
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._drain_deadline = float("inf")
        self.dropped = 0
        self.hold: Callable[[], bool] | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def put(self, item: MqttOut) -> None:
        if self.closed:
            self.dropped += 1
            return
        if len(self._items) >= self._capacity:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._changed.set()

    def requeue(self, item: MqttOut) -> None:
        """Queue a resend, also while closed and draining (the deadline still applies)."""
        if len(self._items) >= self._capacity:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._changed.set()

    def close(self, drain_deadline: float) -> None:
        self._drain_deadline = drain_deadline
        self._closed.set()
        self._changed.set()

    async def head(self) -> MqttOut | None:
        """The oldest message, once there is one; None when closed and drained (or out of time)."""
        loop = asyncio.get_running_loop()
        while True:
            if self.closed:
                holding = self.hold is not None and self.hold()
                if loop.time() >= self._drain_deadline or (not self._items and not holding):
                    self.discard()
                    return None
            if self._items:
                return self._items[0]
            self._changed.clear()
            if self.closed:  # held open for receipts: look again soon
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HOLD_POLL_S):
                        await self._changed.wait()
            else:
                await self._changed.wait()

    def pop(self) -> None:
        self._items.popleft()

    def discard(self) -> None:
        self.dropped += len(self._items)
        self._items.clear()

    async def wait_closed(self, at_most_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most_s):
                await self._closed.wait()


class ConnectionBoard:
    """Which devices are connected, so a broker outage is logged once rather than once per device."""

    def __init__(self, broker: BrokerSettings, devices: int) -> None:
        self._where = f"{broker.host}:{broker.port}"
        self._devices = devices
        self._up: set[str] = set()
        self._down: set[str] = set()
        self._all_up_logged = False

    def up(self, device: str) -> None:
        self._up.add(device)
        self._down.discard(device)
        if len(self._up) == self._devices and not self._all_up_logged:
            logger.info("all %d simulated devices connected to %s", self._devices, self._where)
            self._all_up_logged = True

    def lost(self, device: str, exc: BaseException) -> None:
        self._up.discard(device)
        if not self._down:
            logger.warning(
                "MQTT broker %s unreachable (%s); devices reconnect with backoff", self._where, exc
            )
        logger.debug("device %s disconnected: %s", device, exc)
        self._down.add(device)
        self._all_up_logged = False


class MqttDevice:
    """A simulated device's own MQTT connection: status, last will, outbox, reconnection."""

    def __init__(
        self,
        broker: BrokerSettings,
        device: str,
        outbox: DeviceOutbox,
        counters: RunCounters,
        board: ConnectionBoard,
        seed: int,
        till: TillReceiptBook | None = None,
    ) -> None:
        self._broker = broker
        self._device = device
        self._outbox = outbox
        self._till = till
        if till is not None:
            outbox.hold = lambda: len(till) > 0
        self._counters = counters
        self._board = board
        self._status_topic = status_topic(broker.store_id, device)
        self._backoff = Backoff(_rng=random.Random(f"{seed}/backoff/{device}"))
        self._lost_connection = False

    async def run(self) -> None:
        """Publish until the outbox is closed and drained. Reconnects on its own; never raises MqttError."""
        while True:
            try:
                await self._session()
                return
            except aiomqtt.MqttError as exc:
                self._board.lost(self._device, exc)
                self._lost_connection = True
                if self._outbox.closed:
                    self._outbox.discard()  # stopping, and the broker is gone: the will says offline
                    return
                await self._outbox.wait_closed(self._backoff.next_delay())

    def _client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            username=self._broker.username,
            password=self._broker.password,
            identifier=f"sim-{self._broker.store_id}-{self._device}",
            will=aiomqtt.Will(self._status_topic, b"offline", qos=1, retain=True),
            clean_session=True,
            keepalive=KEEPALIVE_S,
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def _session(self) -> None:
        async with self._client() as client:
            self._backoff.reset()
            self._board.up(self._device)
            if self._lost_connection:
                self._counters.reconnects += 1
                self._lost_connection = False
            try:
                if self._till is not None:
                    await client.subscribe(self._till.topic, qos=1)
                await client.publish(self._status_topic, b"online", qos=1, retain=True)
                self._counters.published[STATUS_LABEL] += 1
                await self._drain_while_connected(client)
            except asyncio.CancelledError:
                # Leaving the context sends DISCONNECT, which makes the broker discard the will: say
                # offline ourselves or the retained status would read online forever.
                await self._say_offline(client)
                raise
            await self._say_offline(client)

    async def _drain_while_connected(self, client: aiomqtt.Client) -> None:
        """Drain the outbox; raise MqttError as soon as the connection drops, even while idle.

        An idle device (a footfall counter between reports) would otherwise only notice a dead
        connection at its next publish, and could end the run saying goodbye into a dead socket.
        """
        till = self._till
        drain = asyncio.create_task(self._drain(client), name=f"drain:{self._device}")
        watch = asyncio.create_task(
            _until_disconnected(client, till.on_receipt if till is not None else None),
            name=f"watch:{self._device}",
        )
        tasks = [drain, watch]
        if till is not None:
            tasks.append(asyncio.create_task(self._resend_overdue(till), name=f"resend:{self._device}"))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if drain.done() and not drain.cancelled() and drain.exception() is None:
            return
        failed = next((t for t in tasks if t.done() and not t.cancelled() and t.exception()), watch)
        failed.result()

    async def _resend_overdue(self, till: TillReceiptBook) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for out in till.due():
                self._outbox.requeue(out)
            await till.wait_change(min(loop.time() + 1.0, till.next_due()))

    async def _drain(self, client: aiomqtt.Client) -> None:
        while (item := await self._outbox.head()) is not None:
            await client.publish(item.topic, item.payload, qos=1)
            self._outbox.pop()
            if item.fault is not None:
                self._counters.malformed_sent[item.fault] += 1
            elif self._till is not None and self._till.tracks(item) and not self._till.sent(item):
                pass  # a resend: counted by the till's book, not as another transaction
            else:
                self._counters.published[item.kind.value] += 1

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(self._status_topic, b"offline", qos=1, retain=True, timeout=2.0)
            self._counters.published[STATUS_LABEL] += 1


async def _until_disconnected(client: aiomqtt.Client, on_message: Callable[[bytes], None] | None) -> None:
    """Return never; raise MqttError when the connection drops.

    Only a till subscribes (to its receipts, handed to ``on_message``); for other devices aiomqtt's
    message iterator is simply its public way of reporting that the connection was lost.
    """
    async for message in client.messages:
        if on_message is not None and isinstance(message.payload, bytes | bytearray):
            on_message(bytes(message.payload))
    raise aiomqtt.MqttError("the broker closed the message stream")
