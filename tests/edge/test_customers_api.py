"""Shopper sessions, consent, the access log and "forget me" on a real daemon over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from edge.customers.privacy import CardCheck
from edge.demo.broker import MosquittoBroker
from routing import parse_layout
from tests.conftest import PSEUDONYM_KEY, STAFF_TOKEN, run_daemon, write_config

pytestmark = pytest.mark.integration

KIOSK_TOKEN = "test-kiosk-token"
CARD = "LOY-000123"
CARDS = CardCheck(PSEUDONYM_KEY.encode())
SCANNED = CARDS.barcode(CARD)  # what a scanner reads: the number and its check code


async def call(method: str, url: str, token: str | None, body: object | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, json=body) as resp,
    ):
        raw = await resp.read()
        return resp.status, json.loads(raw) if raw else None


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


async def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


async def buy(
    broker: MosquittoBroker, card: str, basket: str, seq: int, skus: list[str], ts_ms: int | None = None
) -> None:
    payload = {
        "ts": ts_ms if ts_ms is not None else int(time.time() * 1000),
        "seq": seq,
        "basket_id": basket,
        "total": 2.5 * len(skus),
        "loyalty_id": card,
        "items": [{"sku": sku, "qty": 1, "unit_price": 2.5} for sku in skus],
    }
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish("store/demo/pos/1/transaction", json.dumps(payload), qos=1)


@pytest.fixture
def config(tmp_path: Path, broker: MosquittoBroker) -> Path:
    return write_config(tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN}, kiosk={"idle_s": 45})


async def test_each_token_opens_only_its_routes(config: Path) -> None:
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        status, info = await call("GET", f"{api}/kiosk/info", KIOSK_TOKEN)
        assert status == 200
        assert (info["store"], info["idle_s"], info["countdown_s"]) == ("demo", 45, 30)
        assert "milk" in info["categories"]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{api}/kiosk/layout", headers={"Authorization": f"Bearer {KIOSK_TOKEN}"}) as resp,
        ):
            assert resp.status == 200
            layout = parse_layout(await resp.text())
        assert layout.sections == d.daemon.layout.sections
        assert (await call("GET", f"{api}/shelves", KIOSK_TOKEN))[0] == 403
        assert (await call("GET", f"{api}/kiosk/info", "wrong"))[0] == 401
        assert (await call("GET", f"{api}/kiosk/info", None))[0] == 401

        status, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        assert status == 201, opened
        me, token = opened["customer"], opened["token"]
        assert me.startswith("hh_")
        assert CARD not in json.dumps(opened)
        assert opened["known"] is False
        assert opened["first_name"] is None
        assert opened["consent"] == {"personalisation": None, "analytics": None, "updated_ms": None}

        _, other = await call(
            "POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": CARDS.barcode("LOY-999")}
        )
        assert (await call("GET", f"{api}/customers/{me}/consent", token))[0] == 200
        status, body = await call("GET", f"{api}/customers/{other['customer']}/consent", token)
        assert status == 403
        assert "own household" in body["error"]
        assert (await call("GET", f"{api}/customers/{me}/consent", KIOSK_TOKEN))[0] == 403
        assert (await call("GET", f"{api}/alerts", token))[0] == 403
        assert (await call("POST", f"{api}/kiosk/sessions", token, {"card": "LOY-1"}))[0] == 403
        # Staff may read any household.
        assert (await call("GET", f"{api}/customers/{me}/consent", STAFF_TOKEN))[0] == 200

        tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
        assert (await call("GET", f"{api}/customers/{me}/consent", tampered))[0] == 401
        assert (await call("DELETE", f"{api}/kiosk/sessions/current", token)) == (200, {"revoked": True})
        assert (await call("GET", f"{api}/customers/{me}/consent", token))[0] == 401
        # The other session is untouched by revoking this one.
        assert (await call("GET", f"{api}/customers/{other['customer']}/consent", other["token"]))[0] == 200


async def test_bad_requests_name_the_field(config: Path) -> None:
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        status, body = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": ""})
        assert status == 400
        assert body["error"].startswith("card:")
        status, body = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"loyalty": "x"})
        assert status == 400
        assert body["error"] == "loyalty: unknown key (typo?)"
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        status, body = await call("PUT", f"{api}/customers/{me}/consent", token, {"personalisation": "yes"})
        assert status == 400
        assert body["error"].startswith("personalisation: Expected `bool`")
        status, body = await call(
            "POST",
            f"{api}/recommendations/shopping-list/{me}/feedback",
            token,
            {"category": "caviar", "vote": "up"},
        )
        assert status == 400
        assert body["error"].startswith("category:")


async def test_consent_is_recorded_synced_and_every_read_is_logged(config: Path) -> None:
    async with run_daemon(config) as d:
        api, db = f"{d.url}/api/v1", Path(d.config.database.path)
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        status, consent = await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": False, "analytics": True}
        )
        assert status == 200
        assert (consent["personalisation"], consent["analytics"]) == (False, True)
        assert consent["updated_ms"] > 0
        assert (await call("GET", f"{api}/customers/{me}/consent", token))[1] == consent
        # The same answer again is not a new event for central.
        await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": False, "analytics": True}
        )
        await call("GET", f"{api}/customers/{me}/consent", STAFF_TOKEN)

        events = rows(db, "SELECT entity, body FROM outbox WHERE kind = 'consent'")
        assert len(events) == 1
        assert events[0][0] == me
        assert json.loads(events[0][1])["analytics"] is True
        log = rows(db, "SELECT route, role FROM access_log WHERE household = ? ORDER BY id", me)
        assert log == [
            ("POST /api/v1/kiosk/sessions", "kiosk"),
            ("GET /api/v1/customers/{id}/consent", "session"),
            ("GET /api/v1/customers/{id}/consent", "staff"),
        ]
        status, body = await call("GET", f"{api}/customers/{me}/predictions", token)
        assert status in (403, 503), body  # no personalisation consent (or no models): never a profile


async def test_forget_me_erases_the_household_here_and_tells_central(
    config: Path, broker: MosquittoBroker
) -> None:
    async with run_daemon(config) as d:
        api, db = f"{d.url}/api/v1", Path(d.config.database.path)
        await buy(broker, CARD, "b-1", 1, ["1001", "1002"])
        await buy(broker, "LOY-OTHER", "b-2", 2, ["1001"])
        await wait_for(lambda: rows(db, "SELECT count(*) FROM purchases")[0][0] == 2)
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        assert opened["known"] is True
        await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": True, "analytics": True}
        )
        # Scored on demand; then a purchase of a predicted category records the prediction's outcome.
        assert (await call("GET", f"{api}/recommendations/shopping-list/{me}", token))[1]["personalised"]
        await buy(broker, CARD, "b-3", 3, ["1001"])
        await wait_for(
            lambda: rows(db, "SELECT count(*) FROM prediction_outcomes WHERE household = ?", me)[0][0] > 0
        )
        assert rows(db, "SELECT count(*) FROM outbox WHERE kind = 'prediction_outcome'")[0][0] > 0
        vote = {"category": "milk", "vote": "down"}
        assert (await call("POST", f"{api}/recommendations/shopping-list/{me}/feedback", token, vote))[
            0
        ] == 201
        before = rows(db, "SELECT count(*) FROM outbox")[0][0]

        assert await call("DELETE", f"{api}/customers/{me}", token) == (200, {"erased": True, "customer": me})

        for table, column in [
            ("households", "id"),
            ("purchases", "household"),
            ("consents", "household"),
            ("list_feedback", "household"),
            ("access_log", "household"),
            ("predictions", "household"),
            ("prediction_outcomes", "household"),
        ]:
            assert rows(db, f"SELECT count(*) FROM {table} WHERE {column} = ?", me) == [(0,)], table
        # Its basket stays as an anonymous sale; the other household is untouched.
        assert rows(db, "SELECT household IS NULL FROM purchases WHERE basket_id = 'b-1'") == [(1,)]
        assert rows(db, "SELECT count(*) FROM households") == [(1,)]
        assert rows(db, "SELECT count(*) FROM purchases WHERE household IS NULL") == [(2,)]
        # Central learns of the erasure; nothing pending still names the household except that event.
        naming = rows(db, "SELECT kind FROM outbox WHERE body LIKE ? OR entity = ?", f"%{me}%", me)
        assert naming == [("erasure",)]
        assert rows(db, "SELECT count(*) FROM outbox WHERE kind = 'purchase'") == [(3,)]
        pending = rows(db, "SELECT pending_rows FROM sync_state")[0][0]
        assert pending == rows(db, "SELECT count(*) FROM outbox")[0][0] < before + 1
        assert rows(db, "SELECT count(*) FROM erasures WHERE household = ?", me) == [(1,)]
        # The session that asked is over.
        assert (await call("GET", f"{api}/customers/{me}/consent", token))[0] == 401


async def test_list_offers_and_route_follow_consent(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = write_config(
        tmp_path,
        broker,
        http={"kiosk_token": KIOSK_TOKEN},
        models={"rescore_interval_s": 0.2},
        thresholds={"max_reading_age_s": 90 * 86_400.0},  # two months of purchases backfilled over MQTT
    )
    day_ms = 86_400_000
    async with run_daemon(config) as d:
        api, db = f"{d.url}/api/v1", Path(d.config.database.path)
        # Milk (1001's category) every 3 days, coffee every 10, for two months.
        categories = dict(rows(db, "SELECT sku, category FROM products"))
        milk = next(sku for sku, c in categories.items() if c == "milk")
        coffee = next(sku for sku, c in categories.items() if c == "coffee")
        now = int(time.time() * 1000)
        seq = 0
        for days_ago in range(60, 0, -3):
            seq += 1
            skus = [milk, coffee] if days_ago % 10 in (0, 9) else [milk]
            await buy(broker, CARD, f"b-{seq}", seq, skus, ts_ms=now - days_ago * day_ms)
        await wait_for(lambda: rows(db, "SELECT count(*) FROM purchases")[0][0] == seq)
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]

        # No consent yet: a generic list, generic offers, no profile, and nothing cached.
        status, generic = await call("GET", f"{api}/recommendations/shopping-list/{me}", token)
        assert status == 200, generic
        assert generic["personalised"] is False
        assert generic["urgent"] == generic["upcoming"] == []
        assert all(i["reason"] == "popular in this store this week" for i in generic["usual"])
        assert (await call("GET", f"{api}/customers/{me}/predictions", token))[0] == 403
        _, offers = await call("GET", f"{api}/customers/{me}/offers", token)
        assert offers["personalised"] is False
        assert all(o["reason"] is None for o in offers["offers"])
        assert rows(db, "SELECT count(*) FROM predictions WHERE household = ?", me) == [(0,)]

        await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": True, "analytics": False}
        )
        status, mine = await call("GET", f"{api}/recommendations/shopping-list/{me}", token)
        assert status == 200, mine
        assert mine["personalised"] is True
        listed = {i["category"]: i for group in ("urgent", "upcoming", "usual") for i in mine[group]}
        assert "milk" in listed
        assert "milk" in listed["milk"]["reason"]
        assert listed["milk"]["days_left"] is not None
        _, predictions = await call("GET", f"{api}/customers/{me}/predictions", token)
        by_category = {p["category"]: p for p in predictions["predictions"]}
        p = by_category["milk"]["p_within_days"]
        assert 0 <= p["1"] <= p["2"] <= p["7"] <= p["14"] <= 1

        _, offers = await call("GET", f"{api}/customers/{me}/offers", token)
        assert offers["personalised"] is True
        assert {o["category"] for o in offers["offers"]} <= set(listed)
        assert any(o["id"] == "p-milk" and o["reason"] for o in offers["offers"])

        status, route = await call("GET", f"{api}/in-store/{me}/optimal-route", token)
        assert status == 200, route
        assert set(route["items"]) == set(listed)
        routed = {item for stop in route["stops"] for item in stop["items"]}
        assert routed | {u["item"] for u in route["unreachable"]} == set(listed)
        assert route["distance_m"] > 0

        # Withdrawing consent deletes the profile at once.
        await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": False, "analytics": False}
        )
        assert rows(db, "SELECT count(*) FROM predictions WHERE household = ?", me) == [(0,)]
        assert (await call("GET", f"{api}/recommendations/shopping-list/{me}", token))[1][
            "personalised"
        ] is False


async def test_guessing_tokens_gets_an_address_throttled(config: Path) -> None:
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        for guess in range(10):
            assert (await call("GET", f"{api}/kiosk/info", f"pin-{guess}"))[0] == 401
        headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
        async with aiohttp.ClientSession() as http, http.get(f"{api}/summary", headers=headers) as resp:
            # Even the right token waits: a guesser must not learn which guess was right.
            assert resp.status == 429
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
            assert "too many wrong tokens" in (await resp.json())["error"]
        assert (await call("GET", f"{d.url}/healthz", None))[0] == 200  # open routes are not throttled


async def test_kiosk_info_says_the_stores_currency(tmp_path: Path, broker: MosquittoBroker) -> None:
    path = write_config(tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN}, store={"currency": "GBP"})
    async with run_daemon(path) as d:
        status, info = await call("GET", f"{d.url}/api/v1/kiosk/info", KIOSK_TOKEN)
        assert (status, info["currency"]) == (200, "GBP")
