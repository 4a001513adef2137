"""The catalog file, its live reload and the product suggestions (pure functions, hand-made catalogs)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from edge.catalog.load import load_catalog
from edge.catalog.routes import catalog_source
from edge.catalog.suggest import Running, budget, suggest
from edge.errors import ConfigError
from edge.uplink.bundle_checks import DAEMON_CHECKS
from sync.errors import BundleError

DEMO = Path(__file__).resolve().parents[2] / "simulators" / "demo_store"


def product(
    sku: str, price: float, size: float | None = 1.0, unit: str | None = "l", **more: Any
) -> dict[str, Any]:
    return {"sku": sku, "name": f"Milk {sku}", "category": more.pop("category", "milk"), "price": price,
            "size": size, "unit": unit, **more}  # fmt: skip


def write(path: Path, products: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"version": 1, "currency": "EUR", "products": products}))
    return path


@pytest.fixture
def milk(tmp_path: Path) -> Path:
    return write(
        tmp_path / "catalog.json",
        [
            product("m-usual", 1.20),  # 1.20/l
            product("m-big", 2.00, 2.0),  # 1.00/l: 17% less per litre
            product("m-org", 1.60, attributes=["organic", "lactose-free"]),
            product("m-close", 1.18),  # 1.18/l: under 5% less, not "cheaper"
            product("m-pack", 3.00, 6, "each"),  # another unit: never compared per litre
            product("b-1", 2.50, 0.8, "kg", category="bread"),
        ],
    )


def test_the_household_usual_leads_then_cheaper_per_unit_then_best_sellers(milk: Path) -> None:
    catalog = load_catalog(milk)
    got = suggest(catalog, "milk", bought={"m-usual": 5, "m-org": 1}, popular={"m-close": 9, "m-org": 3})
    assert [(s.product.sku, s.why) for s in got] == [
        ("m-usual", "usual"),
        ("m-big", "cheaper-per-unit"),
        ("m-close", "popular"),
    ]
    assert got[0].reason == "your usual: bought 5 times"
    assert got[1].product.unit_price == 1.0
    assert got[1].reason == "1.00 EUR/l: 17% less per l than your usual"


def test_without_the_households_purchases_the_best_seller_is_the_reference(milk: Path) -> None:
    catalog = load_catalog(milk)
    got = suggest(catalog, "milk", bought={}, popular={"m-close": 9}, limit=5)
    assert [s.why for s in got][:3] == ["cheaper-per-unit", "popular", "in-range"]
    assert got[0].product.sku == "m-big"
    assert "than the best seller" in got[0].reason
    assert len({s.product.sku for s in got}) == len(got) == 5  # no product twice


def test_stated_preferences_filter_the_alternatives_never_the_usual(milk: Path) -> None:
    catalog = load_catalog(milk)
    got = suggest(catalog, "milk", bought={"m-usual": 2}, popular={}, preferences=["organic"], limit=5)
    assert [(s.product.sku, s.matches_preferences) for s in got] == [("m-usual", False), ("m-org", True)]
    none = suggest(catalog, "milk", bought={}, popular={}, preferences=["organic", "gluten-free"])
    assert none == []


def test_a_promotion_is_named_and_unknown_categories_get_nothing(milk: Path) -> None:
    catalog = load_catalog(milk)
    got = suggest(catalog, "milk", bought={}, popular={}, promotions=[Running("Milk: 2 for 1.80")])
    assert got
    assert all(s.promotion == "Milk: 2 for 1.80" for s in got)
    assert suggest(catalog, "caviar", bought={"m-usual": 3}, popular={}) == []


def test_a_product_on_offer_comes_right_after_the_usual_and_only_it_says_so(milk: Path) -> None:
    catalog = load_catalog(milk)
    running = [Running("Organic milk: 1.20", frozenset({"m-org"})), Running("All milk: 5% off")]
    got = suggest(catalog, "milk", bought={"m-usual": 5}, popular={"m-close": 9}, promotions=running, limit=4)
    assert [(s.product.sku, s.why) for s in got] == [
        ("m-usual", "usual"),
        ("m-org", "on-offer"),
        ("m-big", "cheaper-per-unit"),
        ("m-close", "popular"),
    ]
    assert got[1].reason == "on offer: Organic milk: 1.20"
    assert [s.promotion for s in got] == ["All milk: 5% off", "Organic milk: 1.20", "All milk: 5% off",
                                          "All milk: 5% off"]  # fmt: skip
    # The usual product itself on offer is still the usual one (first, and named with its offer).
    mine = suggest(catalog, "milk", bought={"m-org": 2}, popular={}, promotions=running[:1])
    assert next((s.product.sku, s.why, s.promotion) for s in mine) == ("m-org", "usual", "Organic milk: 1.20")
    assert all(s.why != "on-offer" for s in mine)
    # A named product the shopper's stated preferences rule out is not offered.
    picky = suggest(catalog, "milk", bought={}, popular={}, preferences=["organic"],
                    promotions=[Running("Big milk", frozenset({"m-big"}))])  # fmt: skip
    assert [s.product.sku for s in picky] == ["m-org"]


@pytest.mark.parametrize(
    ("products", "message"),
    [
        ([product("a", 1.0), product("a", 2.0)], "products[1].sku: duplicate 'a'"),
        ([product("a", -1.0)], "products[0].price"),
        ([product("a", 1.0, 1.0, None)], "products[0]: size and unit go together"),
        ([product("a", 1.0, attributes=["healthy"])], "products[0].attributes[0]"),
        ([{"sku": "a", "category": "milk", "price": 1.0}], "products[0].name: missing (required)"),
    ],
)
def test_a_bad_catalog_names_the_file_and_the_field(
    tmp_path: Path, products: list[Any], message: str
) -> None:
    path = write(tmp_path / "catalog.json", products)
    with pytest.raises(ConfigError, match=r"catalog\.json: ") as err:
        load_catalog(path)
    assert message in str(err.value)
    with pytest.raises(
        BundleError, match="catalog bundle: .*" + message.split(":", maxsplit=1)[0].replace("[", r"\[")
    ):
        DAEMON_CHECKS["catalog"](tmp_path)


def test_the_live_catalog_keeps_the_last_good_file(milk: Path, caplog: pytest.LogCaptureFixture) -> None:
    live = catalog_source([milk.with_name("bundle.json"), milk])  # no bundle: the configured file
    assert set(live.current().by_sku) >= {"m-usual", "b-1"}
    milk.write_text("{not json")
    os.utime(milk, (1, 1))  # a new mtime even on a coarse clock
    assert "m-usual" in live.current().by_sku
    assert "catalog_invalid" in caplog.text
    write(milk.with_name("bundle.json"), [product("only", 1.0)])
    assert set(live.current().by_sku) == {"only"}  # a live bundle wins over the configured file


def test_the_demo_catalog_covers_every_shelf_and_is_a_good_file() -> None:
    catalog = load_catalog(DEMO / "catalog.json")
    planogram = (DEMO / "planogram.toml").read_text()
    skus = {line.split('"')[1] for line in planogram.splitlines() if line.startswith("sku = ")}
    assert skus <= set(catalog.by_sku)  # what the simulated tills sell is in the catalog
    assert len(catalog.by_sku) >= 2000
    for category, products in catalog.by_category.items():
        assert len(products) >= 10, category
    assert sum("organic" in p.attributes for p in catalog.by_sku.values()) >= 20


def test_the_budget_prices_each_item_once_and_the_saving_for_the_same_quantity(milk: Path) -> None:
    catalog = load_catalog(milk)
    lists = [
        suggest(catalog, "milk", bought={"m-usual": 5}, popular={}, promotions=[Running("Milk 2 for 1.80")]),
        suggest(catalog, "bread", bought={}, popular={"b-1": 4}),
        suggest(catalog, "caviar", bought={}, popular={}),
    ]
    money = budget(lists)
    assert money.estimated_total == 1.20 + 2.50  # the usual milk and the best-selling bread
    assert (money.priced, money.unpriced, money.on_offer) == (2, 1, 1)
    assert money.saving == 0.20  # a litre at 1.00 instead of 1.20; bread has nothing cheaper
    assert budget([]).estimated_total == 0.0
