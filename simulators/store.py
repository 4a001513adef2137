"""The store as a discrete-event simulation in simulated time: shoppers, shelves, staff, tills.

`StoreWorld` knows nothing about devices or wire formats. It keeps the true stock of every shelf (the
ground truth the daemon's estimates are measured against) and reports what happened as `WorldEvent`s,
which `simulators.fleet` turns into sensor messages.

A shopper's visit: arrive through the entrance zone, walk the shopping list in planogram order (the
planogram lists shelves in walking order, produce first and frozen last), pick 1-3 items at each
shelf, sometimes put one back, queue at the till with the shortest queue, pay, leave through the
entrance. Staff walk the store every ~45 simulated minutes and refill low shelves to capacity.

Deterministic: every random draw comes from generators seeded by ``seed`` and is made while processing
events in (time, scheduling order), so the same seed gives the same story however `advance_to` is
chunked. Fridge door openings draw from their own generator, so the shoppers' story is also the same at
every ``speed``. (Long fridge excursions are not the shoppers' doing: `FridgeThermometer` has them.)
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sensors.planogram import Planogram, Shelf
from simulators.clock import DAY_CURVE_PEAK, MS_PER_DAY, day_curve, day_curve_mean
from simulators.households import (
    Household,
    make_population,
    shopping_list,
    visit_weight,
)

MS_PER_S = 1000
STAFF_ROUND_MS = 45 * 60 * MS_PER_S
# A shelf at or below this share of capacity is refilled on the next staff round.
RESTOCK_THRESHOLD = 0.25
# At up to this speed every hand in a fridge opens its door; faster runs keep a share (see _touch_shelf).
DOOR_THINNING_SPEED = 10.0


# ---------------------------------------------------------------------------------------------------
# What the world reports.


@dataclass(frozen=True, slots=True)
class ItemsPicked:
    sim_ms: int
    shelf_id: str
    count: int


@dataclass(frozen=True, slots=True)
class ItemsPutBack:
    sim_ms: int
    shelf_id: str
    count: int


@dataclass(frozen=True, slots=True)
class ShelfRestocked:
    sim_ms: int
    shelf_id: str
    added: int


@dataclass(frozen=True, slots=True)
class ZoneCrossed:
    sim_ms: int
    zone_id: str
    entered: bool


@dataclass(frozen=True, slots=True)
class BasketPaid:
    sim_ms: int
    lane: str
    household: int
    loyalty_id: str | None
    lines: tuple[tuple[str, int], ...]  # (sku, quantity), in picking order


@dataclass(frozen=True, slots=True)
class FridgeDoorOpened:
    sim_ms: int
    fridge_id: str


WorldEvent = ItemsPicked | ItemsPutBack | ShelfRestocked | ZoneCrossed | BasketPaid | FridgeDoorOpened


@dataclass(frozen=True, slots=True)
class WorldStats:
    shoppers: int
    picks: int
    items_picked: int
    put_backs: int
    restocks: int
    baskets: int
    shoppers_in_store: int


# ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Shopper:
    household: Household
    stops: deque[tuple[str, int]]  # (shelf id, quantity wanted), in walking order
    zone: str | None = None
    basket: dict[str, int] = field(default_factory=dict)  # shelf id -> items in the basket


class StoreWorld:
    """The store's true state, advanced in simulated milliseconds. Pure: no clocks, no I/O."""

    def __init__(self, planogram: Planogram, seed: int, start_ms: int, speed: float = 1.0) -> None:
        self._planogram = planogram
        self._now_ms = start_ms
        self._rng = random.Random(f"{seed}/world")
        # Door openings are thinned by speed (see _touch_shelf); a separate generator keeps the
        # shoppers' story independent of speed.
        self._door_rng = random.Random(f"{seed}/fridge-doors")
        self._door_probability = min(1.0, DOOR_THINNING_SPEED / speed)

        self._shelf_order = {shelf_id: index for index, shelf_id in enumerate(planogram.shelves)}
        self._shelves_by_category: dict[str, list[Shelf]] = {}
        for shelf in planogram.shelves.values():
            self._shelves_by_category.setdefault(shelf.category, []).append(shelf)
        self._categories = list(self._shelves_by_category)
        self._entrance = _entrance_zone(planogram)
        self._checkout = next((z.id for z in planogram.zones.values() if z.checkout), None)
        self._lanes = list(planogram.tills)
        self._till_queues: dict[str, deque[_Shopper]] = {lane: deque() for lane in self._lanes}

        self._stock: dict[str, int] = {
            shelf.id: max(1, round(shelf.capacity * self._rng.uniform(0.5, 1.0)))
            for shelf in planogram.shelves.values()
        }
        self._restock_pending: set[str] = set()
        if self._categories:
            self._households, self._histories = make_population(
                self._categories, start_ms, random.Random(f"{seed}/households")
            )
        else:
            self._households, self._histories = (), []
        daily_visits = sum(h.visit_rate_per_day for h in self._households)
        # Peak arrivals per ms for the thinning of the non-homogeneous Poisson arrival process.
        self._peak_arrivals_per_ms = (
            daily_visits * DAY_CURVE_PEAK / (day_curve_mean() * MS_PER_DAY) if daily_visits else 0.0
        )

        self._events: list[WorldEvent] = []
        self._agenda: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._shoppers = self._picks = self._items_picked = self._put_backs = 0
        self._restocks = self._baskets = self._in_store = 0

        if self._peak_arrivals_per_ms > 0:
            self._schedule(self._next_arrival_gap(), self._candidate_arrival)
        self._schedule(self._rng.randint(60, 600) * MS_PER_S, self._staff_round)

    # -- public -------------------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        return self._now_ms

    @property
    def stock(self) -> Mapping[str, int]:
        """True item count per shelf right now (a snapshot)."""
        return self._stock.copy()

    def items_on(self, shelf_id: str) -> int:
        return self._stock[shelf_id]

    @property
    def households(self) -> tuple[Household, ...]:
        return self._households

    def stats(self) -> WorldStats:
        return WorldStats(
            shoppers=self._shoppers,
            picks=self._picks,
            items_picked=self._items_picked,
            put_backs=self._put_backs,
            restocks=self._restocks,
            baskets=self._baskets,
            shoppers_in_store=self._in_store,
        )

    def advance_to(self, sim_ms: int) -> list[WorldEvent]:
        """Process everything due up to and including ``sim_ms``; return what happened, in order."""
        while self._agenda and self._agenda[0][0] <= sim_ms:
            due, _, action = heapq.heappop(self._agenda)
            self._now_ms = due
            action()
        self._now_ms = max(self._now_ms, sim_ms)
        events, self._events = self._events, []
        return events

    # -- scheduling ---------------------------------------------------------------------------------
    def _schedule(self, delay_ms: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._agenda, (self._now_ms + max(0, delay_ms), next(self._order), action))

    def _seconds(self, low: float, high: float) -> int:
        return round(self._rng.uniform(low, high) * MS_PER_S)

    # -- arrivals -----------------------------------------------------------------------------------
    def _next_arrival_gap(self) -> int:
        return max(1, round(self._rng.expovariate(self._peak_arrivals_per_ms)))

    def _candidate_arrival(self) -> None:
        # Thinning (Lewis-Shedler): candidates at the peak rate, each kept with probability
        # curve(t) / peak, gives arrivals that follow the day curve exactly.
        if self._rng.random() < day_curve(self._now_ms) / DAY_CURVE_PEAK:
            self._arrive()
        self._schedule(self._next_arrival_gap(), self._candidate_arrival)

    def _arrive(self) -> None:
        weights = [
            visit_weight(h, history, self._now_ms)
            for h, history in zip(self._households, self._histories, strict=True)
        ]
        if not any(weights):
            return
        household = self._rng.choices(self._households, weights)[0]
        history = self._histories[household.index]
        history.in_store = True
        history.last_visit_ms = self._now_ms
        stops: list[tuple[str, int]] = []
        for category, quantity in shopping_list(
            household, history, self._now_ms, self._categories, self._rng
        ):
            shelf = self._rng.choice(self._shelves_by_category[category])
            stops.append((shelf.id, quantity))
        stops.sort(key=lambda stop: self._shelf_order[stop[0]])
        shopper = _Shopper(household, deque(stops))
        self._shoppers += 1
        self._in_store += 1
        self._move(shopper, self._entrance)
        self._schedule(self._seconds(15, 45), lambda: self._walk_on(shopper))

    # -- in the aisles ------------------------------------------------------------------------------
    def _move(self, shopper: _Shopper, zone: str | None) -> None:
        """Cross from the shopper's zone into ``zone`` (None: out of every zone)."""
        if zone == shopper.zone:
            return
        if shopper.zone is not None:
            self._events.append(ZoneCrossed(self._now_ms, shopper.zone, entered=False))
        if zone is not None:
            self._events.append(ZoneCrossed(self._now_ms, zone, entered=True))
        shopper.zone = zone

    def _walk_on(self, shopper: _Shopper) -> None:
        if shopper.stops:
            shelf_id, quantity = shopper.stops.popleft()
            self._schedule(self._seconds(10, 40), lambda: self._at_shelf(shopper, shelf_id, quantity))
        elif any(shopper.basket.values()) and self._lanes:
            self._schedule(self._seconds(20, 60), lambda: self._join_queue(shopper))
        else:
            # Nothing to pay for (everything wanted was out of stock): walk straight out.
            self._schedule(self._seconds(20, 60), lambda: self._leave(shopper))

    def _at_shelf(self, shopper: _Shopper, shelf_id: str, quantity: int) -> None:
        shelf = self._planogram.shelves[shelf_id]
        self._move(shopper, shelf.zone)
        taken = min(quantity, self._stock[shelf_id])
        dwell = self._seconds(10, 45)
        if taken > 0:
            self._stock[shelf_id] -= taken
            shopper.basket[shelf_id] = shopper.basket.get(shelf_id, 0) + taken
            self._picks += 1
            self._items_picked += taken
            self._events.append(ItemsPicked(self._now_ms, shelf_id, taken))
            self._touch_shelf(shelf)
            self._note_if_low(shelf)
            if self._rng.random() < shopper.household.put_back_probability:
                self._schedule(self._seconds(3, 8), lambda: self._put_back(shopper, shelf_id))
        self._schedule(dwell, lambda: self._walk_on(shopper))

    def _put_back(self, shopper: _Shopper, shelf_id: str) -> None:
        if shopper.basket.get(shelf_id, 0) < 1:
            return
        shopper.basket[shelf_id] -= 1
        self._stock[shelf_id] += 1
        self._put_backs += 1
        self._events.append(ItemsPutBack(self._now_ms, shelf_id, 1))
        self._touch_shelf(self._planogram.shelves[shelf_id])

    def _touch_shelf(self, shelf: Shelf) -> None:
        """A hand in a fridge opens its door.

        The door's temperature spike is physics, so it plays out in real seconds (see clock.py). At
        60x a real second holds a minute of shoppers; opening the door for every one of them would keep
        it open through every peak. Keeping each opening with probability min(1, 10/speed) caps the
        real-time opening rate at what a 10x run gives (about one every two real minutes per fridge at
        the evening peak), so spikes stay distinct and visible in a demo.
        """
        if shelf.fridge is not None and self._door_rng.random() < self._door_probability:
            self._events.append(FridgeDoorOpened(self._now_ms, shelf.fridge))

    # -- checkout -----------------------------------------------------------------------------------
    def _join_queue(self, shopper: _Shopper) -> None:
        self._move(shopper, self._checkout)
        # The shortest queue; among equally short ones (usually several idle tills), any of them.
        shortest = min(len(queue) for queue in self._till_queues.values())
        lane = self._rng.choice([name for name in self._lanes if len(self._till_queues[name]) == shortest])
        queue = self._till_queues[lane]
        queue.append(shopper)
        if len(queue) == 1:
            self._start_service(lane)

    def _start_service(self, lane: str) -> None:
        shopper = self._till_queues[lane][0]
        items = sum(shopper.basket.values())
        self._schedule(
            round((25 + 3.5 * items) * self._rng.uniform(0.8, 1.25) * MS_PER_S),
            lambda: self._finish_service(lane),
        )

    def _finish_service(self, lane: str) -> None:
        shopper = self._till_queues[lane].popleft()
        lines = tuple(
            (self._planogram.shelves[shelf_id].sku, count)
            for shelf_id, count in shopper.basket.items()
            if count > 0
        )
        history = self._histories[shopper.household.index]
        for shelf_id, count in shopper.basket.items():
            if count > 0:
                history.last_purchase_ms[self._planogram.shelves[shelf_id].category] = self._now_ms
        self._baskets += 1
        household = shopper.household
        self._events.append(BasketPaid(self._now_ms, lane, household.index, household.loyalty_id, lines))
        self._schedule(self._seconds(10, 30), lambda: self._leave(shopper))
        if self._till_queues[lane]:
            self._start_service(lane)

    def _leave(self, shopper: _Shopper) -> None:
        # Out through the entrance zone: its counter sees the shopper come in and go out.
        self._move(shopper, self._entrance)
        self._move(shopper, None)
        self._histories[shopper.household.index].in_store = False
        self._in_store -= 1

    # -- staff --------------------------------------------------------------------------------------
    def _note_if_low(self, shelf: Shelf) -> None:
        if self._stock[shelf.id] <= shelf.capacity * RESTOCK_THRESHOLD:
            self._restock_pending.add(shelf.id)

    def _staff_round(self) -> None:
        # One member of staff refills the low shelves one after another, a few minutes each.
        delay = 0
        for shelf_id in sorted(self._restock_pending, key=self._shelf_order.__getitem__):
            delay += self._seconds(60, 180)
            self._schedule(delay, functools.partial(self._restock, shelf_id))
        self._restock_pending.clear()
        self._schedule(STAFF_ROUND_MS + self._seconds(-300, 300), self._staff_round)

    def _restock(self, shelf_id: str) -> None:
        added = self._planogram.shelves[shelf_id].capacity - self._stock[shelf_id]
        if added <= 0:
            return
        self._stock[shelf_id] += added
        self._restocks += 1
        self._events.append(ShelfRestocked(self._now_ms, shelf_id, added))


def _entrance_zone(planogram: Planogram) -> str | None:
    """The zone shoppers come in through: one named "entrance", else the first zone with no shelves
    that is not a checkout, else none."""
    if "entrance" in planogram.zones:
        return "entrance"
    shelf_zones = {shelf.zone for shelf in planogram.shelves.values()}
    return next((z.id for z in planogram.zones.values() if z.id not in shelf_zones and not z.checkout), None)
