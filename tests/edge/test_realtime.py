"""Live recommendations while shopping (#17 item 3): complements by this store's association lift, the
household's own list for a consenting verified session, never what is in the basket, nearer shelves
first; in SQL and pure functions, and on a real daemon over loopback HTTP."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.config import load_config
from edge.demo.service import seed_demo_history
from edge.predictions.realtime import (
    MIN_PAIR_BASKETS,
    Associations,
    basket_associations,
    recommend,
    walking_distances,
)
from edge.store.db import open_store
from routing import load_demo_layout
from tests.conftest import STAFF_TOKEN, run_daemon
from tests.edge.test_customers_api import KIOSK_TOKEN, SCANNED, call, config  # noqa: F401 - the fixture

NOW = 1_780_000_000_000


def store_with_baskets(path: Path, baskets: list[list[str]]) -> sqlite3.Connection:
    conn = open_store(path)
    for i, categories in enumerate(baskets):
        conn.execute(
            "INSERT INTO readings (id, device, kind, seq, ts_ms, received_ms) VALUES (?, 'pos-1', 'pos', ?, ?, ?)",
            (i + 1, i + 1, NOW - 1000 + i, NOW),
        )
        conn.execute(
            "INSERT INTO purchases (id, reading_id, basket_id, ts_ms, total, lane, household, lines)"
            " VALUES (?, ?, ?, ?, 1, '1', NULL, ?)",
            (i + 1, i + 1, f"b{i}", NOW - 1000 + i, len(categories)),
        )
        conn.executemany(
            "INSERT INTO purchase_items (purchase_id, line, sku, qty, unit_price, category) VALUES (?, ?, ?, 1, 1, ?)",
            [(i + 1, line, f"sku-{c}", c) for line, c in enumerate(categories, start=1)],
        )
    return conn


def test_complements_come_from_this_stores_baskets_by_lift(tmp_path: Path) -> None:
    # cereal comes with milk in 30 of 40 milk baskets; bread is everywhere (lift about 1); soap never with milk
    baskets = [["milk", "cereal", "bread"]] * 30 + [["milk", "bread"]] * 10 + [["soap", "bread"]] * 40
    conn = store_with_baskets(tmp_path / "store.db", baskets)
    table = basket_associations(conn, NOW - 10_000)
    conn.close()
    assert table.baskets == 80
    assert dict(zip(table.categories, table.count.tolist(), strict=True)) == {
        "bread": 80, "cereal": 30, "milk": 40, "soap": 40,
    }  # fmt: skip
    suggestions = recommend(table, [], ["milk"], 5)
    assert [s.category for s in suggestions] == ["cereal"]  # bread: lift 1.0; soap: never with milk
    (cereal,) = suggestions
    assert cereal.lift == pytest.approx((30 / 40) / (30 / 80))
    assert "often bought with milk" in cereal.reason
    assert recommend(table, [], ["milk", "cereal"], 5) == []  # nothing in the basket is suggested
    assert recommend(Associations.empty(), [], ["milk"], 5) == []
    # Too few baskets with both: no claim of a complement.
    few = basket_associations(
        store_with_baskets(tmp_path / "few.db", [["tea", "lemon"]] * (MIN_PAIR_BASKETS - 1)), 0
    )
    assert recommend(few, [], ["tea"], 5) == []


def test_the_households_list_joins_and_nearer_shelves_come_first() -> None:
    table = Associations.empty()
    own = [
        ("eggs", 0.6, "you buy eggs about every 7 days"),
        ("milk", 0.9, "in 9 of 10 trips"),
        ("tea", 0.6, "r"),
    ]
    ranked = recommend(table, own, ["milk"], 5)
    assert [s.category for s in ranked] == ["eggs", "tea"]  # milk is in the basket; a tie by name
    assert all(s.on_list for s in ranked)
    near = recommend(table, own, ["milk"], 5, {"eggs": 80.0, "tea": 5.0})
    assert [(s.category, s.distance_m) for s in near] == [("tea", 5.0), ("eggs", 80.0)]
    assert near[0].score > near[1].score


def test_walking_distances_on_the_demo_layout() -> None:
    layout = load_demo_layout()
    entrance = next(n.id for n in layout.nodes if n.kind.value == "entrance")
    found = walking_distances(layout, entrance, set(layout.categories))
    assert set(found) == set(layout.categories)
    assert all(d > 0 for d in found.values())
    with pytest.raises(ValueError, match="no node"):
        walking_distances(layout, "nowhere", {"milk"})


@pytest.mark.integration
async def test_realtime_over_http_follows_who_asks(config: Path) -> None:  # noqa: F811
    seed_demo_history(load_config(config), households=60, weeks=6, seed=2)
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        await d.daemon.realtime.refresh()
        url = f"{api}/recommendations/realtime"
        status, anonymous = await call("POST", url, KIOSK_TOKEN, {"basket": ["milk"], "limit": 8})
        assert status == 200, anonymous
        assert anonymous["personalised"] is False
        assert all(s["category"] != "milk" for s in anonymous["suggestions"])
        assert all(not s["on_list"] for s in anonymous["suggestions"])
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": True, "analytics": False}
        )
        status, mine = await call("POST", url, token, {"basket": [], "position": "entrance"})
        assert status == 200, mine
        assert mine["personalised"] is True
        assert (await call("POST", url, token, {"basket": [], "household": "someone-else"}))[0] == 403
        status, error = await call("POST", url, STAFF_TOKEN, {"basket": [], "position": "the moon"})
        assert status == 400
        assert "position" in error["error"]
        assert (await call("POST", url, STAFF_TOKEN, {"basket": [], "limit": 99}))[0] == 400
