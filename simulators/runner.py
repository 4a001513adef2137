"""`run_simulation`: the world, the device fleet and the transports wired together, on one clock.

One task keeps time (`_Run._drive`): on every wake-up it first advances the simulated world to "now"
and sends what happened (picks, baskets, ...), then takes the samples that are due (weights at
``weight_hz``, fridge temperatures every 5 s, footfall every 10 s, all in real seconds and staggered so
the broker sees a steady trickle rather than bursts). Advancing the world before sampling keeps every
device's ``ts`` non-decreasing along its ``seq``. Each MQTT device publishes from its own task and
connection (`simulators.mqtt_link`); the legacy controller's frames go to the PTY
(`simulators.serial_link`). When the run ends each device drains its outbox for up to a few seconds,
publishes ``offline`` and disconnects; a cancelled run does the same on a best-effort basis and closes
the PTY and its symlink.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from sensors.planogram import Planogram, load_planogram
from sensors.receipts import receipt_topic
from sensors.schemas import device_id
from simulators.clock import SimClock
from simulators.errors import SimulatorError
from simulators.fleet import StoreDevices
from simulators.messages import MqttOut, Outgoing
from simulators.mqtt_link import BrokerSettings, ConnectionBoard, DeviceOutbox, MqttDevice
from simulators.serial_link import PtySerialLink
from simulators.settings import SimulatorSettings
from simulators.store import StoreWorld
from simulators.store_catalog import load_store_catalog
from simulators.summary import GroundTruth, RunCounters, SimulationSummary, write_ground_truth
from simulators.till import TillReceiptBook

logger = logging.getLogger(__name__)

WORLD_TICK_S = 0.1  # how promptly picks and baskets go out after they happen (real seconds)
FRIDGE_INTERVAL_S = 5.0
FOOTFALL_INTERVAL_S = 10.0
GROUND_TRUTH_INTERVAL_S = 10.0
LINK_CHECK_INTERVAL_S = 2.0
DRAIN_GRACE_S = 5.0  # how long devices may keep publishing their backlog after the run ends


async def run_simulation(settings: SimulatorSettings, stop: asyncio.Event | None = None) -> SimulationSummary:
    """Run the simulated store until ``settings.duration_s`` real seconds have passed or ``stop`` is set.

    Raises `sensors.planogram.PlanogramError` for a bad planogram and `SimulatorError` for a bad
    catalog or if the serial link or the ground-truth file cannot be created. A broker that is down or drops is not an error:
    devices reconnect with backoff and the summary counts what was dropped meanwhile.
    """
    planogram = await asyncio.to_thread(load_planogram, settings.planogram_path)
    prices = None
    if settings.catalog_path is not None:
        prices = (await asyncio.to_thread(load_store_catalog, settings.catalog_path)).prices
    return await _Run(settings, planogram, prices).execute(stop if stop is not None else asyncio.Event())


class _Agenda:
    """Periodic actions by real time since start, on a heap. A late action skips the samples it missed
    rather than catching up in a burst."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, float, Callable[[float], None]]] = []
        self._order = itertools.count()

    def every(self, period_s: float, first_s: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._heap, (first_s, next(self._order), period_s, action))

    def next_due(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def run_due(self, now_s: float) -> None:
        while self._heap and self._heap[0][0] <= now_s:
            due, order, period, action = heapq.heappop(self._heap)
            action(now_s)
            following = due + period
            heapq.heappush(
                self._heap, (following if following > now_s else now_s + period, order, period, action)
            )


class _Run:
    def __init__(
        self, settings: SimulatorSettings, planogram: Planogram, prices: Mapping[str, float] | None = None
    ) -> None:
        self._settings = settings
        self._planogram = planogram
        # The wall clock and the monotonic clock are read together: ts = wall start + monotonic elapsed.
        wall_start_ms = time.time_ns() // 1_000_000
        self._started = asyncio.get_running_loop().time()
        sim_start_ms = settings.start_time_ms if settings.start_time_ms is not None else wall_start_ms
        self._clock = SimClock(sim_start_ms, wall_start_ms, settings.speed)
        self._world = StoreWorld(planogram, settings.seed, sim_start_ms, settings.speed)
        self._devices = StoreDevices(
            settings.store_id,
            planogram,
            self._clock,
            settings.seed,
            settings.fault_rate,
            serial_enabled=settings.serial_link is not None,
            prices=prices,
        )
        if self._devices.serial_shelves and settings.serial_link is None:
            logger.warning(
                "no serial link configured: shelves %s (transport = serial) will be silent",
                ", ".join(sorted(self._devices.serial_shelves)),
            )
        self._counters = RunCounters()
        self._broker = BrokerSettings(
            settings.mqtt_host,
            settings.mqtt_port,
            settings.store_id,
            settings.mqtt_username,
            settings.mqtt_password,
        )
        self._outboxes = {device: DeviceOutbox() for device in self._devices.mqtt_devices}
        self._tills = (
            {
                device_id("pos", lane): TillReceiptBook(
                    receipt_topic(settings.store_id, lane), settings.receipt_timeout_s
                )
                for lane in planogram.tills
            }
            if settings.till_receipts
            else {}
        )
        self._board = ConnectionBoard(self._broker, len(self._outboxes))
        self._link: PtySerialLink | None = None
        self._truth_due = False
        self._truth_write_failed = False

    async def execute(self, stop: asyncio.Event) -> SimulationSummary:
        loop = asyncio.get_running_loop()
        started = self._started
        settings = self._settings
        logger.info(
            "simulating store %s: %d shelves, %d fridges, %d zones, %d tills; seed %d, speed %gx, faults %g",
            settings.store_id,
            len(self._planogram.shelves),
            len(self._planogram.fridges),
            len(self._planogram.zones),
            len(self._planogram.tills),
            settings.seed,
            settings.speed,
            settings.fault_rate,
        )
        if settings.ground_truth_path is not None:
            await self._write_truth(0.0, final=False, strict=True)
        async with contextlib.AsyncExitStack() as stack:
            if settings.serial_link is not None and self._devices.serial_shelves:
                self._link = await stack.enter_async_context(PtySerialLink(settings.serial_link))
            async with asyncio.TaskGroup() as tasks:
                for device, outbox in self._outboxes.items():
                    publisher = MqttDevice(
                        self._broker,
                        device,
                        outbox,
                        self._counters,
                        self._board,
                        settings.seed,
                        till=self._tills.get(device),
                    )
                    tasks.create_task(publisher.run(), name=f"mqtt-device:{device}")
                tasks.create_task(self._drive(stop, started), name="simulation-clock")
        real_seconds = loop.time() - started
        if settings.ground_truth_path is not None:
            await self._write_truth(real_seconds, final=True, strict=False)
        summary = self._summary(real_seconds)
        logger.info(
            "simulation of store %s ended after %.1f s (%.0f simulated): %d shoppers, %d baskets, "
            "%d restocks, published %s, malformed %s",
            settings.store_id,
            summary.real_seconds,
            summary.simulated_seconds,
            summary.shoppers,
            summary.baskets,
            summary.restocks,
            dict(summary.published),
            dict(summary.malformed_sent),
        )
        return summary

    # -- the clock ----------------------------------------------------------------------------------
    async def _drive(self, stop: asyncio.Event, started: float) -> None:
        loop = asyncio.get_running_loop()
        agenda = self._agenda()
        deadline = self._settings.duration_s
        try:
            while not stop.is_set():
                now = loop.time() - started
                if deadline is not None and now >= deadline:
                    break
                wake_at = min(agenda.next_due(), deadline if deadline is not None else float("inf"))
                if wake_at > now:
                    await _sleep_unless_set(stop, wake_at - now)
                    continue
                self._advance_world(now)
                agenda.run_due(now)
                if self._truth_due:
                    self._truth_due = False
                    await self._write_truth(now, final=False, strict=False)
            # Report the last, partial footfall interval: counts left in the counters would be lost and
            # the daemon's occupancy would disagree with the shoppers' movements.
            now = loop.time() - started
            self._advance_world(now)
            for zone_id in self._planogram.zones:
                self._report_footfall(zone_id, now)
        finally:
            # Whether we ended or were cancelled, let the devices drain and say goodbye.
            drain_deadline = loop.time() + DRAIN_GRACE_S
            for outbox in self._outboxes.values():
                outbox.close(drain_deadline)

    def _agenda(self) -> _Agenda:
        agenda = _Agenda()
        agenda.every(WORLD_TICK_S, 0.0, lambda now: None)  # waking up is enough: see _drive
        shelves = list(self._planogram.shelves)
        weight_period = 1.0 / self._settings.weight_hz
        for index, shelf_id in enumerate(shelves):
            first = weight_period * index / len(shelves)
            agenda.every(weight_period, first, functools.partial(self._sample_weight, shelf_id))
        fridges = list(self._planogram.fridges)
        for index, fridge_id in enumerate(fridges):
            first = FRIDGE_INTERVAL_S * (index + 0.5) / len(fridges)
            agenda.every(FRIDGE_INTERVAL_S, first, functools.partial(self._sample_temperature, fridge_id))
        for index, zone_id in enumerate(self._planogram.zones):
            first = FOOTFALL_INTERVAL_S + 0.05 * index
            agenda.every(FOOTFALL_INTERVAL_S, first, functools.partial(self._report_footfall, zone_id))
        if self._settings.ground_truth_path is not None:
            agenda.every(GROUND_TRUTH_INTERVAL_S, GROUND_TRUTH_INTERVAL_S, self._mark_truth_due)
        if self._link is not None:
            link = self._link
            agenda.every(LINK_CHECK_INTERVAL_S, LINK_CHECK_INTERVAL_S, lambda now: link.ensure_link())
        return agenda

    def _sample_weight(self, shelf_id: str, now_s: float) -> None:
        self._route(self._devices.sample_weight(shelf_id, self._world.items_on(shelf_id), now_s))

    def _sample_temperature(self, fridge_id: str, now_s: float) -> None:
        self._route(self._devices.sample_temperature(fridge_id, now_s))

    def _report_footfall(self, zone_id: str, now_s: float) -> None:
        self._route(self._devices.report_footfall(zone_id, now_s))

    def _advance_world(self, now_s: float) -> None:
        self._route(self._devices.on_world_events(self._world.advance_to(self._clock.sim_ms(now_s))))

    def _route(self, outgoing: Iterable[Outgoing]) -> None:
        for out in outgoing:
            if isinstance(out, MqttOut):
                self._outboxes[out.device].put(out)
            elif self._link is not None and self._link.write(out.line) and out.fault is not None:
                self._counters.malformed_sent[out.fault] += 1

    # -- ground truth -------------------------------------------------------------------------------
    def _mark_truth_due(self, _now_s: float) -> None:
        self._truth_due = True

    async def _write_truth(self, now_s: float, *, final: bool, strict: bool) -> None:
        path = self._settings.ground_truth_path
        if path is None:
            return
        truth = GroundTruth(
            store_id=self._settings.store_id,
            seed=self._settings.seed,
            ts_ms=self._clock.wire_ts_ms(now_s),
            simulated_ms=self._world.now_ms,
            final=final,
            shelves=dict(self._world.stock),
        )
        try:
            await asyncio.to_thread(write_ground_truth, path, truth)
        except OSError as exc:
            if strict:
                raise SimulatorError(f"{path}: cannot write ground truth: {exc.strerror}") from exc
            failure: OSError | None = exc
        else:
            failure = None
        if failure is not None and (final or not self._truth_write_failed):
            # Not fatal mid-run: the summary carries the same numbers; log once, and at the end.
            logger.error("cannot write ground truth to %s: %s", path, failure)
        self._truth_write_failed = self._truth_write_failed or failure is not None

    def _summary(self, real_seconds: float) -> SimulationSummary:
        stats = self._world.stats()
        link = self._link
        receipts: collections.Counter[str] = collections.Counter()
        for book in self._tills.values():
            receipts.update(book.receipts)
        return SimulationSummary(
            published=self._counters.frozen_published(),
            malformed_sent=self._counters.frozen_malformed(),
            serial_frames_written=link.frames_written if link is not None else 0,
            serial_frames_dropped=link.frames_dropped if link is not None else 0,
            mqtt_messages_dropped=sum(outbox.dropped for outbox in self._outboxes.values()),
            reconnects=self._counters.reconnects,
            shoppers=stats.shoppers,
            picks=stats.picks,
            items_picked=stats.items_picked,
            put_backs=stats.put_backs,
            restocks=stats.restocks,
            baskets=stats.baskets,
            simulated_seconds=(self._world.now_ms - self._clock.sim_start_ms) / 1000,
            real_seconds=round(real_seconds, 3),
            ground_truth=MappingProxyType(dict(self._world.stock)),
            transactions_resent=sum(book.resent for book in self._tills.values()),
            transactions_unconfirmed=sum(len(book) + book.given_up for book in self._tills.values()),
            receipts=MappingProxyType(dict(sorted(receipts.items()))),
        )


async def _sleep_unless_set(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
