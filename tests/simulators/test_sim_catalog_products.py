"""Catalog products at catalog prices (`HouseholdSimConfig.catalog`, `simulators.product_choice`) and the
live tills charging the catalog's prices (`simulators.devices`, `simulators.fleet`)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from sensors.planogram import Planogram
from simulators import SimulatorSettings, run_simulation
from simulators.clock import SimClock
from simulators.devices import basket_items, unit_price
from simulators.fleet import StoreDevices
from simulators.household_history import (
    HouseholdSimConfig,
    HouseholdSimulation,
    pos_transactions,
    simulate_households,
)
from simulators.messages import MqttOut
from simulators.product_choice import CHEAPER_BY, ProductChooser
from simulators.store import BasketPaid
from simulators.store_catalog import DEMO_CATALOG, CatalogError, StoreCatalog, load_store_catalog
from tests.simulators.conftest import DEMO_PLANOGRAM

PLAIN = HouseholdSimConfig(seed=11, households=150, days=120)
WITH_CATALOG = replace(PLAIN, catalog=DEMO_CATALOG)
SAME_COLUMNS = ("household", "category", "day", "minute", "second", "basket", "qty", "promo", "final_rate")


@pytest.fixture(scope="module")
def catalog() -> StoreCatalog:
    return load_store_catalog(DEMO_CATALOG)


@pytest.fixture(scope="module")
def plain() -> HouseholdSimulation:
    return simulate_households(PLAIN)


@pytest.fixture(scope="module")
def with_catalog() -> HouseholdSimulation:
    return simulate_households(WITH_CATALOG)


def _skus(sim: HouseholdSimulation) -> list[str]:
    return [sim.profiles[c].skus[s] for c, s in zip(sim.category.tolist(), sim.sku.tolist(), strict=True)]


def test_a_catalog_changes_the_products_and_prices_and_nothing_else(
    plain: HouseholdSimulation, with_catalog: HouseholdSimulation
) -> None:
    for name in SAME_COLUMNS:
        assert np.array_equal(getattr(plain, name), getattr(with_catalog, name)), name
    assert [p.name for p in plain.profiles] == [p.name for p in with_catalog.profiles]
    assert not np.array_equal(plain.price, with_catalog.price)
    assert len(set(_skus(with_catalog))) > 5 * len(set(_skus(plain)))


def test_every_line_is_a_catalog_product_of_its_category_at_the_catalogs_price(
    with_catalog: HouseholdSimulation, catalog: StoreCatalog
) -> None:
    by_sku = {p.sku: p for products in catalog.by_category.values() for p in products}
    depth = with_catalog.promo_depth[with_catalog.category, with_catalog.day // 7]
    for i, sku in enumerate(_skus(with_catalog)):
        product = by_sku[sku]
        assert product.category == with_catalog.profiles[int(with_catalog.category[i])].name
        assert with_catalog.price[i] == pytest.approx(round(product.price * (1 - depth[i]), 2), abs=1e-4)
        assert bool(with_catalog.promo[i]) == (depth[i] > 0)
    assert with_catalog.promo.any()  # some lines were on promotion, so the cut was exercised


def test_households_mostly_buy_their_usual_product_and_sometimes_others(
    with_catalog: HouseholdSimulation, catalog: StoreCatalog
) -> None:
    lines: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    for h, c, s in zip(with_catalog.household, with_catalog.category, with_catalog.sku, strict=True):
        lines[int(h), int(c)][int(s)] += 1
    regular = {key: bought for key, bought in lines.items() if bought.total() >= 8}
    assert len(regular) > 200
    usual_share = [bought.most_common(1)[0][1] / bought.total() for bought in regular.values()]
    assert 0.7 < float(np.mean(usual_share)) < 0.9
    several = sum(1 for bought in regular.values() if len(bought) >= 2)
    assert several > 0.8 * len(regular)
    # The usual products spread over each category's range, not only the shelf's own (the first).
    usual = [bought.most_common(1)[0][0] for bought in regular.values()]
    assert 0.05 < usual.count(0) / len(usual) < 0.5
    assert len(set(usual)) > 40


def test_substitutes_are_more_often_cheaper_per_unit_than_the_usual(catalog: StoreCatalog) -> None:
    names = sorted(catalog.by_category)
    chooser = ProductChooser(catalog, names, households=400, seed=5)
    observed, by_chance = [], []
    for c, name in enumerate(names):
        products = catalog.products(name)
        per_unit = [p.unit_price for p in products]
        weight = 1 / np.arange(1, len(products) + 1)
        for h in range(400):
            u = int(chooser.usual[h, c])
            ref = per_unit[u]
            if ref is None:
                continue
            cheaper = np.array(
                [
                    i != u and p.unit == products[u].unit and q is not None and q <= CHEAPER_BY * ref
                    for i, (p, q) in enumerate(zip(products, per_unit, strict=True))
                ]
            )
            others = weight * (np.arange(len(products)) != u)
            by_chance.append(float((others * cheaper).sum() / others.sum()))
            observed.extend(bool(cheaper[a]) for a in set(chooser.alternates[h, c].tolist()) if a != u)
    assert float(np.mean(observed)) > 1.3 * float(np.mean(by_chance))


def test_the_tills_messages_carry_the_catalog_products_and_prices(
    with_catalog: HouseholdSimulation, catalog: StoreCatalog
) -> None:
    sent = [(item.sku, item.unit_price) for m in pos_transactions(with_catalog) for item in m.payload.items]
    assert len(sent) == with_catalog.n_lines
    assert Counter(sku for sku, _ in sent) == Counter(_skus(with_catalog))
    full_price = [(sku, price) for sku, price in sent if price == catalog.prices[sku]]
    assert len(full_price) > 0.8 * len(sent)  # the rest are promoted lines


def test_a_category_the_catalog_lacks_or_a_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    partial = tmp_path / "catalog.json"
    partial.write_text(json.dumps({"products": [{"sku": "1031", "category": "milk", "price": 1.1}]}))
    with pytest.raises(CatalogError, match="no product of category 'fruit'"):
        simulate_households(replace(PLAIN, catalog=partial))
    partial.write_text(json.dumps({"products": [{"sku": "1031", "category": "milk"}]}))
    with pytest.raises(CatalogError, match=r"catalog.json: .*price"):
        load_store_catalog(partial)
    partial.write_text("{not json")
    with pytest.raises(CatalogError, match="not JSON"):
        load_store_catalog(partial)
    with pytest.raises(CatalogError, match="cannot read"):
        load_store_catalog(tmp_path / "missing.json")


def test_tills_charge_the_catalogs_price_and_derive_one_for_the_rest(
    catalog: StoreCatalog, demo_planogram: Planogram
) -> None:
    listed, unlisted = "1031", "zz-unlisted"
    assert unit_price(listed, catalog.prices) == catalog.prices[listed] != unit_price(listed)
    assert unit_price(unlisted, catalog.prices) == unit_price(unlisted)
    items, total = basket_items([(listed, 2), (unlisted, 1)], catalog.prices)
    assert [(i.sku, i.unit_price) for i in items] == [
        (listed, catalog.prices[listed]),
        (unlisted, unit_price(unlisted)),
    ]
    assert total == pytest.approx(2 * catalog.prices[listed] + unit_price(unlisted), abs=0.005)

    noon = int(datetime(2025, 3, 3, 12, tzinfo=UTC).timestamp() * 1000)
    fleet = StoreDevices("test-store", demo_planogram, SimClock(noon, noon, 60.0), 1, prices=catalog.prices)
    shelf_skus = sorted({shelf.sku for shelf in demo_planogram.shelves.values()})
    lane = sorted(demo_planogram.tills)[0]
    out = fleet.on_world_events([BasketPaid(noon, lane, 0, "LOY-000001", tuple((s, 1) for s in shelf_skus))])
    (message,) = out
    assert isinstance(message, MqttOut)
    payload = json.loads(message.payload)
    assert {i["sku"]: i["unit_price"] for i in payload["items"]} == {s: catalog.prices[s] for s in shelf_skus}
    assert payload["total"] == pytest.approx(sum(catalog.prices[s] for s in shelf_skus), abs=0.005)


@pytest.mark.integration
async def test_a_simulated_store_with_a_catalog_rings_up_its_prices(
    broker: Any, catalog: StoreCatalog
) -> None:
    noon = int(datetime(2025, 3, 3, 12, tzinfo=UTC).timestamp() * 1000)
    settings = SimulatorSettings(
        store_id="catalog-store",
        planogram_path=DEMO_PLANOGRAM,
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        speed=1_200.0,
        duration_s=4.0,
        start_time_ms=noon,
        catalog_path=DEMO_CATALOG,
    )
    received: list[bytes] = []
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="catalog-till-reader") as reader:
        await reader.subscribe("store/catalog-store/pos/+/transaction", qos=1)

        async def collect() -> None:
            async for message in reader.messages:
                assert isinstance(message.payload, bytes)
                received.append(message.payload)

        collector = asyncio.create_task(collect())
        summary = await run_simulation(settings)
        for _ in range(50):
            if len(received) >= summary.published["transaction"]:
                break
            await asyncio.sleep(0.05)
        collector.cancel()
    assert len(received) == summary.published["transaction"] > 0
    items = [item for payload in received for item in json.loads(payload)["items"]]
    assert items
    assert all(item["unit_price"] == catalog.prices[item["sku"]] for item in items)
