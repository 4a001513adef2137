"""The store world: deterministic from the seed, and its story consistent with itself."""

from __future__ import annotations

import collections
from datetime import UTC, datetime

import pytest

from sensors.planogram import Planogram
from simulators.clock import SimClock, day_curve
from simulators.store import (
    BasketPaid,
    FridgeDoorOpened,
    ItemsPicked,
    ItemsPutBack,
    ShelfRestocked,
    StoreWorld,
    WorldEvent,
    ZoneCrossed,
)

MIDNIGHT = int(datetime(2025, 3, 3, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000


def _run(
    planogram: Planogram, hours: float, *, seed: int = 1, step_ms: int = HOUR_MS, speed: float = 60.0
) -> tuple[StoreWorld, list[WorldEvent]]:
    world = StoreWorld(planogram, seed, MIDNIGHT, speed)
    events: list[WorldEvent] = []
    end = MIDNIGHT + int(hours * HOUR_MS)
    for until in range(MIDNIGHT + step_ms, end + step_ms, step_ms):
        events += world.advance_to(min(until, end))
    return world, events


@pytest.fixture(scope="module")
def two_days(demo_planogram: Planogram) -> tuple[StoreWorld, list[WorldEvent]]:
    return _run(demo_planogram, 48)


def test_same_seed_same_story_however_it_is_chunked(demo_planogram: Planogram) -> None:
    _, hourly = _run(demo_planogram, 12)
    _, fine = _run(demo_planogram, 12, step_ms=7_919)
    assert hourly == fine
    assert len(hourly) > 100


def test_different_seed_different_story(demo_planogram: Planogram) -> None:
    assert _run(demo_planogram, 6, seed=1)[1] != _run(demo_planogram, 6, seed=2)[1]


def test_speed_changes_only_the_fridge_doors(demo_planogram: Planogram) -> None:
    def without_doors(events: list[WorldEvent]) -> list[WorldEvent]:
        return [e for e in events if not isinstance(e, FridgeDoorOpened)]

    slow, fast = _run(demo_planogram, 12, speed=1.0)[1], _run(demo_planogram, 12, speed=600.0)[1]
    assert without_doors(slow) == without_doors(fast)
    assert sum(isinstance(e, FridgeDoorOpened) for e in slow) > sum(
        isinstance(e, FridgeDoorOpened) for e in fast
    )


def test_ground_truth_is_initial_stock_minus_picks_plus_put_backs_and_restocks(
    demo_planogram: Planogram,
) -> None:
    world = StoreWorld(demo_planogram, 1, MIDNIGHT, 60.0)
    expected = dict(world.stock)
    for hour in range(1, 49):
        for event in world.advance_to(MIDNIGHT + hour * HOUR_MS):
            match event:
                case ItemsPicked(_, shelf, count):
                    expected[shelf] -= count
                case ItemsPutBack(_, shelf, count) | ShelfRestocked(_, shelf, count):
                    expected[shelf] += count
        assert dict(world.stock) == expected
        for shelf_id, items in world.stock.items():
            assert 0 <= items <= demo_planogram.shelves[shelf_id].capacity


def test_picks_are_one_to_three_items_and_staff_restock_to_capacity(
    two_days: tuple[StoreWorld, list[WorldEvent]], demo_planogram: Planogram
) -> None:
    world, events = two_days
    picks = [e for e in events if isinstance(e, ItemsPicked)]
    assert picks
    assert {e.count for e in picks} <= {1, 2, 3}
    restocks = [e for e in events if isinstance(e, ShelfRestocked)]
    assert restocks
    assert any(isinstance(e, ItemsPutBack) for e in events)
    stats = world.stats()
    assert stats.picks == len(picks)
    assert stats.restocks == len(restocks)


def test_footfall_is_consistent_with_shopper_movement(two_days: tuple[StoreWorld, list[WorldEvent]]) -> None:
    world, events = two_days
    occupancy: collections.Counter[str] = collections.Counter()
    for event in events:
        if isinstance(event, ZoneCrossed):
            occupancy[event.zone_id] += 1 if event.entered else -1
            assert occupancy[event.zone_id] >= 0, event
    assert sum(occupancy.values()) == world.stats().shoppers_in_store
    # Every shopper comes in through the entrance zone and, leaving, passes through it again.
    stats = world.stats()
    entrance_entries = sum(
        1 for e in events if isinstance(e, ZoneCrossed) and e.zone_id == "entrance" and e.entered
    )
    assert entrance_entries == stats.shoppers + (stats.shoppers - stats.shoppers_in_store)


def test_baskets_hold_what_their_shopper_picked(
    two_days: tuple[StoreWorld, list[WorldEvent]], demo_planogram: Planogram
) -> None:
    world, events = two_days
    baskets = [e for e in events if isinstance(e, BasketPaid)]
    assert len(baskets) == world.stats().baskets
    sold = sum(quantity for basket in baskets for _, quantity in basket.lines)
    picked = sum(e.count for e in events if isinstance(e, ItemsPicked))
    put_back = sum(e.count for e in events if isinstance(e, ItemsPutBack))
    assert sold <= picked - put_back  # the rest is in the baskets of shoppers still in the store
    assert sold >= picked - put_back - 3 * 15 * world.stats().shoppers_in_store
    skus = {shelf.sku for shelf in demo_planogram.shelves.values()}
    assert all(sku in skus and quantity >= 1 for basket in baskets for sku, quantity in basket.lines)
    assert {b.lane for b in baskets} == set(demo_planogram.tills)


def test_about_seventy_percent_of_baskets_carry_a_loyalty_id(
    two_days: tuple[StoreWorld, list[WorldEvent]],
) -> None:
    world, events = two_days
    baskets = [e for e in events if isinstance(e, BasketPaid)]
    share = sum(b.loyalty_id is not None for b in baskets) / len(baskets)
    assert 0.6 < share < 0.8
    ids = {b.loyalty_id for b in baskets if b.loyalty_id}
    assert all(i.startswith("LOY-") and len(i) == 10 for i in ids)
    assert 200 <= len(world.households) <= 1000


def test_households_come_back_and_buy_their_favourites(two_days: tuple[StoreWorld, list[WorldEvent]]) -> None:
    world, events = two_days
    visits = collections.Counter(b.household for b in events if isinstance(b, BasketPaid))
    assert max(visits.values()) >= 2
    for basket in (e for e in events if isinstance(e, BasketPaid)):
        household = world.households[basket.household]
        assert basket.loyalty_id == household.loyalty_id


def test_arrivals_follow_the_day_curve(two_days: tuple[StoreWorld, list[WorldEvent]]) -> None:
    _, events = two_days
    by_hour = collections.Counter(
        (e.sim_ms - MIDNIGHT) // HOUR_MS % 24
        for e in events
        if isinstance(e, ZoneCrossed) and e.zone_id == "entrance"
    )
    night = by_hour[2] + by_hour[3] + by_hour[4]
    lunch = by_hour[11] + by_hour[12] + by_hour[13]
    evening = by_hour[17] + by_hour[18] + by_hour[19]
    morning = by_hour[7] + by_hour[8]
    assert night < morning < lunch
    assert lunch > 3 * night
    assert evening > 3 * night


def test_day_curve_shape() -> None:
    at = [day_curve(MIDNIGHT + h * HOUR_MS) for h in range(24)]
    assert max(at) <= 1.0
    assert min(at) > 0.0  # a 24-hour store: a trickle at night
    assert at[12] > at[9] > at[3]
    assert at[18] >= at[12]
    assert at[15] < at[12]  # the afternoon lull between the peaks


def test_clock_maps_real_to_simulated_and_wire_time() -> None:
    fast = SimClock(sim_start_ms=MIDNIGHT, wall_start_ms=1_800_000_000_000, speed=60.0)
    assert fast.sim_ms(10.0) == MIDNIGHT + 600_000
    assert fast.wire_ts_ms(10.0) == 1_800_000_010_000  # real wall clock at any speed but 1
    assert fast.wire_ts_for_sim(MIDNIGHT + 600_000) == 1_800_000_010_000
    real_time = SimClock(sim_start_ms=MIDNIGHT, wall_start_ms=1_800_000_000_000, speed=1.0)
    assert real_time.wire_ts_ms(10.0) == MIDNIGHT + 10_000  # speed 1: the simulated clock is the wire clock
