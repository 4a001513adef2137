"""The pure device models: load cells, fridge thermometers, footfall counters, tills."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from sensors.planogram import Planogram
from simulators.devices import (
    FootfallCounter,
    FridgeThermometer,
    LoadCell,
    SequenceCounter,
    basket_items,
    unit_price,
)


def _load_cell(planogram: Planogram, shelf_id: str = "A1-3", seed: int = 1) -> LoadCell:
    return LoadCell(planogram.shelves[shelf_id], random.Random(seed))


def test_sequence_counter_starts_at_one_and_is_monotonic() -> None:
    counter = SequenceCounter()
    assert [counter.next() for _ in range(4)] == [1, 2, 3, 4]
    assert counter.last == 4


def test_load_cell_reads_items_times_unit_weight_within_noise_and_drift(demo_planogram: Planogram) -> None:
    cell = _load_cell(demo_planogram)
    unit = demo_planogram.shelves["A1-3"].unit_grams
    readings = [cell.read(10, t * 1.0) for t in range(3_600)]  # an hour at 1 Hz
    worst = max(abs(r - 10 * unit) for r in readings)
    assert worst <= cell.drift_limit_g + 4 * cell.noise_sigma_g + 0.1
    # Noise of a couple of grams, not zero and not hundreds.
    deltas = [b - a for a, b in itertools.pairwise(readings)]
    assert 1.0 < statistics.pstdev(deltas) < 6.0


def test_load_cell_drifts_slowly(demo_planogram: Planogram) -> None:
    cell = _load_cell(demo_planogram, seed=3)
    drifts = []
    for t in range(7_200):
        cell.read(5, float(t))
        drifts.append(cell.drift_g)
    assert max(abs(d) for d in drifts) > 0.5  # it does wander
    assert max(abs(b - a) for a, b in itertools.pairwise(drifts)) < 1.0  # but slowly


def test_empty_shelf_never_reads_below_the_daemon_s_tolerance(demo_planogram: Planogram) -> None:
    for seed in range(20):
        cell = _load_cell(demo_planogram, "A5-3", seed)
        assert min(cell.read(0, t * 0.5) for t in range(2_000)) > -20.0


def test_each_item_picked_is_a_clear_step(demo_planogram: Planogram) -> None:
    cell = _load_cell(demo_planogram, "A5-3")  # the lightest product: 110 g
    before = cell.read(12, 0.0)
    after = cell.read(11, 1.0)
    assert before - after == pytest.approx(110, abs=4 * 4 * cell.noise_sigma_g)


def test_load_cell_is_deterministic_from_its_seed(demo_planogram: Planogram) -> None:
    a, b = _load_cell(demo_planogram, seed=9), _load_cell(demo_planogram, seed=9)
    assert [a.read(3, t) for t in range(50)] == [b.read(3, t) for t in range(50)]


def _thermometer(
    planogram: Planogram, fridge_id: str, seed: int = 1, excursions: bool = False
) -> FridgeThermometer:
    interval = 3 * 3600.0 if excursions else float("1e12")
    return FridgeThermometer.for_fridge(planogram.fridges[fridge_id], random.Random(seed), interval)


@pytest.mark.parametrize("fridge_id", ["F1", "F3"])
def test_fridge_stays_within_range_when_left_alone(demo_planogram: Planogram, fridge_id: str) -> None:
    fridge = demo_planogram.fridges[fridge_id]
    thermometer = _thermometer(demo_planogram, fridge_id)
    readings = [thermometer.read(t * 5.0) for t in range(5_000)]
    assert fridge.min_c < min(readings)
    assert max(readings) < fridge.max_c
    assert statistics.pstdev(readings) > 0.1  # a noisy curve, not a constant


def test_chilled_door_opening_is_a_spike_of_a_few_degrees_for_tens_of_seconds(
    demo_planogram: Planogram,
) -> None:
    thermometer = _thermometer(demo_planogram, "F1")
    baseline = thermometer.read(100.0)
    thermometer.open_door(100.0)
    curve = [(t, thermometer.read(100.0 + t)) for t in range(1, 181)]
    peak_t, peak = max(curve, key=lambda point: point[1])
    assert 1.5 < peak - baseline < 5.0
    assert peak_t <= 25
    elevated = [t for t, c in curve if c - baseline > 1.0]
    assert 10 <= len(elevated) <= 90  # tens of seconds
    assert abs(curve[-1][1] - baseline) < 1.0  # recovered within three minutes


def test_fridge_curve_does_not_depend_on_how_often_it_is_read(demo_planogram: Planogram) -> None:
    coarse, fine = _thermometer(demo_planogram, "F2", seed=4), _thermometer(demo_planogram, "F2", seed=4)
    coarse.open_door(10.0)
    fine.open_door(10.0)
    for step in range(1, 601):
        fine._advance(10.0 + step * 0.1)
    coarse._advance(70.0)
    assert coarse.offset_c == pytest.approx(fine.offset_c, rel=1e-9)


@pytest.mark.parametrize("fridge_id", ["F2", "F4"])
def test_long_excursion_leaves_the_range_for_minutes_then_recovers(
    demo_planogram: Planogram, fridge_id: str
) -> None:
    fridge = demo_planogram.fridges[fridge_id]
    thermometer = _thermometer(demo_planogram, fridge_id)
    thermometer.start_excursion(0.0)
    readings = [(t, thermometer.read(float(t))) for t in range(0, 1_800, 5)]
    outside = [t for t, c in readings if c > fridge.max_c]
    assert outside, "an excursion must leave the range"
    assert 150 <= outside[-1] - outside[0] <= 800
    assert readings[-1][1] < fridge.max_c
    assert max(c for _, c in readings) < 40  # still plausible to the daemon: a fault, not an impossible value


def test_excursions_come_on_their_own_rarely(demo_planogram: Planogram) -> None:
    thermometer = _thermometer(demo_planogram, "F1", seed=2, excursions=True)
    hours = 48
    out_of_range = sum(thermometer.read(t * 5.0) > 5.0 for t in range(hours * 720))
    share = out_of_range / (hours * 720)
    assert 0.005 < share < 0.15


def test_footfall_counter_reports_and_resets() -> None:
    counter = FootfallCounter()
    for entered in (True, True, False, True):
        counter.record(entered=entered)
    assert counter.take() == (3, 1)
    assert counter.take() == (0, 0)


def test_prices_are_stable_plausible_and_end_in_nine() -> None:
    prices = {sku: unit_price(sku) for sku in (str(n) for n in range(1000, 1100))}
    assert prices == {sku: unit_price(sku) for sku in prices}
    assert all(0.49 <= p <= 9.99 for p in prices.values())
    assert all(round(p * 100) % 10 == 9 for p in prices.values())
    assert len(set(prices.values())) > 30


def test_basket_sums_lines_per_sku_and_totals() -> None:
    items, total = basket_items([("1001", 1), ("1002", 2), ("1001", 2)])
    assert [(i.sku, i.qty) for i in items] == [("1001", 3.0), ("1002", 2.0)]
    assert total == pytest.approx(3 * unit_price("1001") + 2 * unit_price("1002"), abs=0.005)
