"""The demo's seeded history with the store's catalog (`seed_demo_history`): households buy catalog
products at catalog prices, each with its own usual product per category, and the daemon's product
suggestions show those usual products (real SQLite, real daemon, HTTP over loopback)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from edge.catalog.load import load_catalog
from edge.config import load_config
from edge.demo.broker import MosquittoBroker
from edge.demo.service import seed_demo_history
from sensors.planogram import load_planogram
from tests.conftest import run_daemon, write_config
from tests.edge.test_customers_api import CARDS, KIOSK_TOKEN, call, rows

pytestmark = pytest.mark.integration


async def test_seeded_households_have_usual_products_beyond_the_shelf(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config_path = write_config(tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN}, store={"timezone": "UTC"})
    config = load_config(config_path)
    catalog = load_catalog(config.path(config.store.catalog))
    shelf_skus = set(load_planogram(config.path(config.store.planogram)).categories_by_sku)
    report = seed_demo_history(config, households=60, weeks=10, seed=3)
    db = config.path(config.database.path)

    lines = rows(db, "SELECT sku, category, unit_price FROM purchase_items")
    assert len(lines) == report.lines
    # Every line is a catalog product, filed under its catalog category, at its price or a promotion's.
    assert all(sku in catalog.by_sku and category == catalog.categories[sku] for sku, category, _ in lines)
    assert all(0 < price <= catalog.by_sku[sku].price for sku, _, price in lines)
    assert sum(price == catalog.by_sku[sku].price for sku, _, price in lines) > 0.8 * len(lines)
    assert len({sku for sku, _, _ in lines} - shelf_skus) > 200

    async with run_daemon(config_path) as d:
        api = f"{d.url}/api/v1"
        status, opened = await call(
            "POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": CARDS.barcode(report.cards[0])}
        )
        assert status == 201, opened
        me, token = opened["customer"], opened["token"]
        bought = rows(
            db,
            "SELECT i.category, i.sku FROM purchase_items i JOIN purchases p ON p.id = i.purchase_id"
            " WHERE p.household = ?",
            me,
        )
        per_category: dict[str, Counter[str]] = {}
        for category, sku in bought:
            per_category.setdefault(category, Counter())[sku] += 1
        assert (
            sum(1 for skus in per_category.values() if len(skus) >= 2) >= 3
        )  # several products per category

        status, _ = await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": True, "analytics": False}
        )
        assert status == 200
        categories = ",".join(sorted(per_category))
        status, mine = await call(
            "GET", f"{api}/customers/{me}/product-suggestions?categories={categories}", token
        )
        assert status == 200, mine
        assert mine["personalised"] is True
        usual = {
            c["category"]: c["suggestions"][0]["product"]["sku"]
            for c in mine["categories"]
            if c["suggestions"]
        }
        assert set(usual) == set(per_category)
        assert all(c["suggestions"][0]["why"] == "usual" for c in mine["categories"])
        for category, sku in usual.items():  # the household's most bought product of the category
            assert per_category[category][sku] == max(per_category[category].values()), category
        assert len(set(usual.values()) - shelf_skus) >= 3
