"""The catalog routes on a real daemon (real broker, real SQLite, HTTP over loopback): browsing the
demo catalog, and product suggestions that use a household's own purchases only with a verified card
and personalisation consent, with every such read in the access log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.catalog.load import load_catalog
from edge.demo.broker import MosquittoBroker
from tests.conftest import STAFF_TOKEN, run_daemon, write_config
from tests.edge.test_customers_api import CARD, KIOSK_TOKEN, SCANNED, buy, call, rows, wait_for

pytestmark = pytest.mark.integration
DEMO_CATALOG = load_catalog(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "catalog.json"
)
OTHER_MILK = DEMO_CATALOG.products("milk")[1].sku  # a Complete Journey milk, not the shelf's own


async def test_browse_and_search_the_catalog(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = write_config(tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN}, store={"currency": "CHF"})
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1/catalog/products"
        status, page = await call("GET", f"{api}?category=milk&limit=5", KIOSK_TOKEN)
        assert status == 200, page
        assert page["currency"] == "CHF"
        assert page["total"] > 5
        assert len(page["products"]) == 5
        assert {p["category"] for p in page["products"]} == {"milk"}
        first = page["products"][0]
        assert first["sku"] == "1031"  # the shelf's own product leads its category
        assert first["unit_price"] == pytest.approx(first["price"] / first["size"], abs=0.006)

        status, organic = await call("GET", f"{api}?prefer=organic&q=apples", KIOSK_TOKEN)
        assert status == 200, organic
        assert organic["total"] == len(organic["products"]) > 0
        assert all("organic" in p["attributes"] and "apple" in p["name"].lower() for p in organic["products"])

        status, rest = await call("GET", f"{api}?category=milk&offset=5&limit=200", KIOSK_TOKEN)
        assert status == 200
        assert len(rest["products"]) == page["total"] - 5

        for query, message in [
            ("prefer=healthy", "prefer: 'healthy' is not one of organic"),
            ("limit=0", "limit: expected 1 to 200, got 0"),
            ("offset=x", "offset: expected a whole number"),
        ]:
            status, body = await call("GET", f"{api}?{query}", KIOSK_TOKEN)
            assert status == 400, (query, body)
            assert message in body["error"]
        status, body = await call("GET", f"{api}?category=caviar", KIOSK_TOKEN)
        assert status == 404
        assert "caviar" in body["error"]
        assert (await call("GET", api, None))[0] == 401


async def test_suggestions_use_the_households_purchases_only_with_a_verified_card_and_consent(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = write_config(tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN})
    db = tmp_path / "store.db"
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        status, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        assert status == 201, opened
        me, token = opened["customer"], opened["token"]
        # Three baskets with a Complete Journey milk, one with the shelf's own: the first is the usual.
        now = int(time.time() * 1000)
        for seq, skus in enumerate([[OTHER_MILK, "1006"], [OTHER_MILK, "zz-9"], [OTHER_MILK, "1031"]], 1):
            await buy(broker, CARD, f"b{seq}", seq, skus, now - seq * 86_400_000)
        await wait_for(lambda: len(rows(db, "SELECT 1 FROM purchases WHERE household = ?", me)) == 3)
        url = f"{api}/customers/{me}/product-suggestions?categories=milk,bread,caviar"
        # Till lines beyond the planogram are filed under the catalog's category (for the models too).
        filed = dict(
            rows(
                db,
                "SELECT sku, category FROM purchase_items WHERE sku IN (?, ?, ?)",
                OTHER_MILK,
                "1006",
                "zz-9",
            )
        )
        assert filed == {OTHER_MILK: "milk", "1006": "bread", "zz-9": None}

        status, before = await call("GET", url, token)  # no consent yet: the store's view only
        assert status == 200, before
        assert before["personalised"] is False
        assert all(s["why"] != "usual" for c in before["categories"] for s in c["suggestions"])

        status, _ = await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": True, "analytics": False}
        )
        assert status == 200
        status, mine = await call("GET", url, token)
        assert status == 200, mine
        assert mine["personalised"] is True
        by_category = {c["category"]: c["suggestions"] for c in mine["categories"]}
        assert by_category["caviar"] == []
        assert by_category["milk"][0]["product"]["sku"] == OTHER_MILK
        assert by_category["milk"][0]["reason"] == "your usual: bought 3 times"
        assert by_category["bread"][0]["product"]["sku"] == "1006"
        assert len(by_category["milk"]) == 3
        usual_milk, usual_bread = (DEMO_CATALOG.by_sku[s] for s in (OTHER_MILK, "1006"))
        assert mine["budget"]["estimated_total"] == pytest.approx(usual_milk.price + usual_bread.price)
        assert (mine["budget"]["priced"], mine["budget"]["unpriced"]) == (2, 1)
        logged = rows(
            db, "SELECT role FROM access_log WHERE household = ? AND route LIKE '%product-suggestions'", me
        )
        assert logged == [("session",), ("session",)]  # both reads of its purchases, even the refused one

        # A typed card number (unverified) gets the store's view; another household's id is refused.
        status, typed = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": CARD})
        assert status == 201, typed
        status, generic = await call("GET", url, typed["token"])
        assert status == 200
        assert generic["personalised"] is False
        status, _ = await call("GET", url.replace(me, "someone-else"), token)
        assert status == 403
        status, staff = await call("GET", f"{url}&prefer=organic&limit=10", STAFF_TOKEN)
        assert status == 200
        assert staff["preferences"] == ["organic"]
        for query, message in [
            ("categories=", "categories: expected"),
            ("categories=milk&limit=11", "limit"),
        ]:
            status, body = await call("GET", f"{api}/customers/{me}/product-suggestions?{query}", token)
            assert status == 400, body
            assert message in body["error"]
        status, body = await call("GET", f"{api}/customers/{me}/product-suggestions?categories=caviar", token)
        assert status == 200  # a list item the catalog does not stock: nothing to suggest, not an error
        assert body["categories"] == [{"category": "caviar", "suggestions": []}]
