"""Seasonal suggestions (`edge.predictions.seasonal`): the statistics validated by simulation (how often
a store without seasons sees one; whether a store with them is caught), and the list over a real daemon."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.demo.broker import MosquittoBroker
from edge.demo.seed import SeedBasket, seed_store
from edge.predictions.seasonal import (
    MIN_Z,
    DailyBaskets,
    dispersion,
    in_season,
    lifts,
    past_holidays,
    upcoming_holidays,
)
from models.holiday_calendar import EPOCH
from sensors.planogram import load_planogram
from simulators.household_history import (
    DEMO_PLANOGRAM,
    HouseholdSimConfig,
    HouseholdSimulation,
    simulate_with_profiles,
)
from simulators.household_history import (
    load_planogram as sim_planogram,
)
from simulators.household_population import CategoryProfile, category_profiles
from tests.conftest import run_daemon, write_config
from tests.edge.test_customers_api import KIOSK_TOKEN, SCANNED, call

DAY_MS = 86_400_000


def daily_from_simulation(sim: HouseholdSimulation) -> DailyBaskets:
    """What `edge.predictions.seasonal.daily_baskets` reads from a store, computed from the simulation."""
    days = int(sim.day.max()) + 1
    first_line = np.unique(sim.basket, return_index=True)[1]
    baskets = np.bincount(sim.day[first_line], minlength=days).astype(np.int64)
    pairs = np.unique(np.stack([sim.basket, sim.category.astype(np.int64)]), axis=1)
    day_of_basket = np.zeros(int(sim.basket.max()) + 1, np.int64)
    day_of_basket[sim.basket] = sim.day
    with_category = np.zeros((days, len(sim.profiles)), np.int64)
    np.add.at(with_category, (day_of_basket[pairs[0]], pairs[1]), 1)
    return DailyBaskets(sim.start_epoch_day, tuple(p.name for p in sim.profiles), baskets, with_category)


def profiles(*, seasons: bool) -> list[CategoryProfile]:
    base = category_profiles(sim_planogram(DEMO_PLANOGRAM))
    if seasons:
        return base
    flat = [dataclasses.replace(p.traits, seasonal_amplitude=0.0, festive=False) for p in base]
    return [dataclasses.replace(p, traits=t) for p, t in zip(base, flat, strict=True)]


def test_lifts_and_z_scores_follow_the_binomial() -> None:
    lift, z = lifts(1000, np.array([200, 100, 0]), 4000, np.array([400, 400, 0]))
    assert lift[0] == pytest.approx(2.0)
    assert lift[1] == pytest.approx(1.0)
    assert z[0] == pytest.approx((200 - 100) / np.sqrt(100 * 0.9))
    assert np.isnan(lift[2])
    assert np.isnan(z[2])


def test_dispersion_is_one_for_binomial_draws_and_larger_for_lumpy_ones() -> None:
    rng = np.random.default_rng(1)
    totals = np.full(8, 700)
    steady = rng.binomial(totals[:, None], 0.1, (8, 40))
    assert np.median(dispersion(totals, steady)) == pytest.approx(1.0, abs=0.4)
    lumpy = steady * np.where(rng.random((8, 40)) < 0.5, 2, 0)  # stocking up: all or nothing
    assert np.median(dispersion(totals, lumpy)) > 3.0


def checks(sim: HouseholdSimulation, every: int = 7, skip: int = 120) -> list[tuple[int, list[str]]]:
    sales = daily_from_simulation(sim)
    return [
        (today, [i.category for i in in_season(sales, today, [], lambda _: [])])
        for today in range(sales.first_day + skip, sales.first_day + sales.days, every)
    ]


def test_a_store_without_seasons_rarely_sees_one() -> None:
    """The false-alarm rate per category and check, on simulated stores whose demand has no seasons (but
    has promotions, churn, new babies and stocking up), stays near the one-sided nominal rate of z >= 3
    (0.13%); without the dispersion correction it was 0.37% on these stores."""
    alarms = tests = 0
    for seed in range(3):
        config = HouseholdSimConfig(seed=seed, households=600, days=400, start=date(2024, 9, 2))
        for _, found in checks(simulate_with_profiles(config, profiles(seasons=False))):
            alarms, tests = alarms + len(found), tests + 40
    nominal = 0.00135
    assert MIN_Z == 3.0
    assert alarms / tests <= 2.5 * nominal, (alarms, tests)


def test_a_store_with_seasons_finds_them_and_the_holiday_before_it_comes() -> None:
    """The simulator's festive categories (bought 1.6x as much from 15 December) are found ahead of the
    second Christmas from the first one; ice-cream (peaking in July) is seen rising in spring."""
    config = HouseholdSimConfig(seed=4, households=1500, days=500, start=date(2024, 9, 2))
    sim = simulate_with_profiles(config, profiles(seasons=True))
    sales = daily_from_simulation(sim)
    today = (date(2025, 12, 12) - EPOCH).days
    upcoming = upcoming_holidays("DE", today)
    assert [h.name for h in upcoming] == ["Christmas Day", "Second Day of Christmas"]
    assert upcoming[0].local_name == "Erster Weihnachtstag"
    assert upcoming[0].days_away == 13
    found = {i.category: i for i in in_season(sales, today, upcoming, past_holidays("DE", today))}
    festive = {p.name for p in sim.profiles if p.traits.festive}
    ahead = {c for c, i in found.items() if i.kind in ("holiday", "season")}
    assert len(ahead & festive) >= 4, found
    assert ahead <= festive | {p.name for p in sim.profiles if p.traits.seasonal_amplitude > 0}, found
    christmas = next(i for i in found.values() if i.kind == "holiday")
    assert christmas.holiday == "Christmas Day"
    assert "before Christmas Day" in christmas.reason

    spring = range((date(2025, 4, 1) - EPOCH).days, (date(2025, 6, 30) - EPOCH).days, 7)
    trending = {i.category for day in spring for i in in_season(sales, day, [], lambda _: [])}
    assert "ice-cream" in trending


def test_holidays_are_named_in_english_and_the_countrys_language() -> None:
    today = (date(2026, 12, 20) - EPOCH).days
    names = [(h.date, h.name, h.local_name) for h in upcoming_holidays("DE", today)]
    assert names == [
        (date(2026, 12, 25), "Christmas Day", "Erster Weihnachtstag"),
        (date(2026, 12, 26), "Second Day of Christmas", "Zweiter Weihnachtstag"),
        (date(2027, 1, 1), "New Year's Day", "Neujahr"),
    ]
    assert upcoming_holidays("", today) == []
    assert past_holidays("DE", today)("Christmas Day") == [
        (date(y, 12, 25) - EPOCH).days for y in (2024, 2025)
    ]


def baskets(skus: dict[str, str], days: int, boosted: str, rng: random.Random) -> list[SeedBasket]:
    """A store's baskets over ``days`` up to yesterday: each category in 10% of baskets, ``boosted`` in 35%
    in the week before the last (so this week's most bought, the generic list, are by chance)."""
    today_ms = int(time.time() * 1000) // DAY_MS * DAY_MS
    out = []
    for day in range(days, 0, -1):
        for n in range(60):
            items = [
                (sku, 1.0, 1.0)
                for category, sku in skus.items()
                if rng.random() < (0.35 if category == boosted and 7 < day <= 14 else 0.1)
            ]
            if items:
                card = f"LOY-{rng.randrange(300):06d}"
                out.append(SeedBasket(card, today_ms - day * DAY_MS + 36_000_000 + n, f"s-{day}-{n}", items))
    return out


@pytest.mark.integration
async def test_the_list_carries_whats_in_season_and_the_coming_holidays(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config_path = write_config(tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN}, models={"list_limit": 3})
    config = load_config(config_path)
    planogram = load_planogram(config.path(config.store.planogram))
    skus = {category: sku for sku, category in planogram.categories_by_sku.items()}
    seed_store(config, planogram, baskets(skus, 84, "soup", random.Random(3)))
    async with run_daemon(config_path) as d:
        api = f"{d.url}/api/v1"
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        deadline = time.monotonic() + 20  # the daily counts are built once the daemon has started
        while True:
            status, listing = await call("GET", f"{api}/recommendations/shopping-list/{me}", token)
            assert status == 200, listing
            if listing["seasonal"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert listing["personalised"] is False
        seasonal = listing["seasonal"]
        assert [s["category"] for s in seasonal] == ["soup"], seasonal
        assert seasonal[0]["kind"] == "trend"
        assert seasonal[0]["lift"] > 1.5
        assert "soup is in" in seasonal[0]["reason"]
        on_list = {i["category"] for g in ("urgent", "upcoming", "usual") for i in listing[g]}
        assert "soup" not in on_list
        today = (date.today() - EPOCH).days
        assert listing["holidays"] == [
            {"date": h.date.isoformat(), "name": h.name, "local_name": h.local_name, "days_away": h.days_away}
            for h in upcoming_holidays("DE", today)
        ]
