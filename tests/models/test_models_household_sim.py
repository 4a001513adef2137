"""The long-horizon household simulator: deterministic from its seed, its story consistent with its
hidden truth, and its baskets valid till messages."""

from __future__ import annotations

from dataclasses import replace

import msgspec
import numpy as np
import pytest

from sensors.decode import Decoder
from sensors.planogram import Planogram, load_planogram
from sensors.schemas import PosTransaction, PosTransactionPayload
from simulators.household_history import (
    DEMO_PLANOGRAM,
    HouseholdSimConfig,
    HouseholdSimulation,
    HouseholdSimulationError,
    pos_transactions,
    simulate_households,
)

TINY = HouseholdSimConfig(seed=3, households=60, days=90)


def _columns(sim: HouseholdSimulation) -> list[list[float]]:
    return [
        getattr(sim, n).tolist() for n in ("household", "category", "day", "minute", "basket", "qty", "price")
    ]


def test_same_seed_same_history_other_seed_other_history() -> None:
    assert _columns(simulate_households(TINY)) == _columns(simulate_households(TINY))
    assert _columns(simulate_households(TINY)) != _columns(simulate_households(replace(TINY, seed=4)))


def test_the_history_follows_the_hidden_truth(small_sim: HouseholdSimulation) -> None:
    pop = small_sim.population
    truth = pop.households
    days = small_sim.config.days
    # Nobody shops before joining or after moving away.
    joined = np.array([h.joined_day for h in truth])
    churn = np.array([h.churn_day if h.churn_day is not None else days for h in truth])
    assert np.all(small_sim.day >= joined[small_sim.household])
    assert np.all(small_sim.day < churn[small_sim.household])
    # The store is closed on Christmas and New Year's Day (1 January is day 0 of this run).
    assert 0 not in set(small_sim.day.tolist())
    # Households buy (nearly) only the categories they use; baby food only once there is a baby.
    names = [p.name for p in small_sim.profiles]
    baby = names.index("baby-food")
    bought_baby = np.unique(small_sim.household[small_sim.category == baby])
    for h in bought_baby:
        t = truth[h]
        assert pop.uses[h, baby] or t.baby_day is not None
        if not pop.uses[h, baby]:
            assert small_sim.day[(small_sim.household == h) & (small_sim.category == baby)].min() >= (
                t.baby_day or 0
            )
    # Bigger households spend more.
    spend = np.bincount(small_sim.household, small_sim.qty * small_sim.price, minlength=len(truth))
    size = np.array([h.size for h in truth])
    assert spend[size >= 4].mean() > spend[size == 1].mean()
    # Most trips fall on the household's own shopping weekdays.
    weekday = (small_sim.day + small_sim.start_epoch_day + 3) % 7
    on_rhythm = np.array(
        [weekday[i] in truth[small_sim.household[i]].trip_weekdays for i in range(small_sim.n_lines)]
    )
    assert on_rhythm.mean() > 0.6
    # Promotions pull purchases forward and make households stockpile: a category sells more in its
    # promotion weeks than in its other weeks.
    week = small_sim.day // 7
    sold = np.zeros(small_sim.promo_depth.shape)
    np.add.at(sold, (small_sim.category, week), small_sim.qty)
    weeks = small_sim.config.days // 7
    on = small_sim.promo_depth[:, :weeks] > 0
    ratios = [
        sold[c, :weeks][on[c]].mean() / sold[c, :weeks][~on[c]].mean()
        for c in range(len(small_sim.profiles))
        if on[c].any() and sold[c, :weeks][~on[c]].mean() > 5
    ]
    assert np.median(ratios) > 1.2


def test_consumption_rates_show_in_the_purchases(small_sim: HouseholdSimulation) -> None:
    pop = small_sim.population
    n_hh, n_cat = pop.rate.shape
    qty = np.zeros((n_hh, n_cat))
    np.add.at(qty, (small_sim.household, small_sim.category), small_sim.qty)
    loyal = np.array([h.store_loyalty for h in pop.households])[:, None]
    expected = pop.rate * small_sim.config.days * loyal
    users = pop.uses & (expected > 5)
    ratio = qty[users] / expected[users]
    # Bought here ~ consumed * store loyalty, within the noise of seasons, holidays and churn.
    assert 0.6 < np.median(ratio) < 1.3


def test_pos_messages_are_valid_wire_messages(small_sim: HouseholdSimulation) -> None:
    planogram: Planogram = load_planogram(DEMO_PLANOGRAM)
    messages = list(pos_transactions(small_sim))
    assert len(messages) == len(np.unique(small_sim.basket))
    seqs: dict[str, list[int]] = {}
    for message in messages[:500]:
        raw = msgspec.json.encode(message.payload)
        assert msgspec.json.decode(raw, type=PosTransactionPayload) == message.payload
        assert isinstance(message.payload.ts, int)
        decoder = Decoder("demo", planogram, clock=lambda ts=message.payload.ts: ts / 1000)
        reading = decoder.decode_mqtt(f"store/demo/pos/{message.lane}/transaction", raw)
        assert isinstance(reading, PosTransaction), reading
        assert all(item.sku in planogram.categories_by_sku for item in reading.items)
        seqs.setdefault(message.lane, []).append(message.payload.seq)
    for lane_seqs in seqs.values():
        assert lane_seqs == list(range(len(lane_seqs)))
    ts = [m.payload.ts for m in messages]
    assert ts == sorted(ts)  # type: ignore[type-var]
    total_qty = sum(item.qty for m in messages for item in m.payload.items)
    assert total_qty == pytest.approx(float(small_sim.qty.sum()), rel=1e-6)


def test_settings_are_checked() -> None:
    with pytest.raises(HouseholdSimulationError, match="households: must be >= 1"):
        HouseholdSimConfig(households=0)
    with pytest.raises(HouseholdSimulationError, match="churn_per_year"):
        HouseholdSimConfig(churn_per_year=2.0)
