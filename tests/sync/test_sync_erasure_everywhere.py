"""Erasure everywhere, end to end: two real daemons and a real central on PostgreSQL. A household buys at
both stores; "forget me" at one store erases it at the other (and at central), both stores report, and
the time it takes with the default intervals is measured (docs/sync.md, "Erasure everywhere")."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edge.customers.privacy import CardCheck, Pseudonymiser
from edge.demo.broker import MosquittoBroker
from sync.central import Central
from tests.conftest import PSEUDONYM_KEY, STAFF_TOKEN, run_daemon, write_config
from tests.edge.test_customers_api import call
from tests.sync.sync_helpers import SYNC_TOKEN, count, pg_count, pg_rows, wait_for
from tests.sync.test_sync_central import central_config

pytestmark = pytest.mark.integration

KIOSK_TOKEN = "test-kiosk-token-erasure"
CARDS = CardCheck(PSEUDONYM_KEY.encode())
PSEUDONYMS = Pseudonymiser(PSEUDONYM_KEY.encode())
PUBLIC_KEY = "ab" * 32  # no bundle is published here


def hold_port() -> socket.socket:
    """A listening socket holding central's port until central starts: the stores are told the address
    first, and their pollers must not connect to a port nobody holds (a connection to a free loopback
    port can get that very port as its source, connect to itself and keep central from binding)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(64)
    return holder


def store_config(tmp_path: Path, broker: MosquittoBroker, store: str, central_port: int, **sync: Any) -> Path:
    folder = tmp_path / store
    folder.mkdir(exist_ok=True)
    return write_config(
        folder,
        broker,
        store={"id": store},
        http={"kiosk_token": KIOSK_TOKEN},
        sync={
            "token": SYNC_TOKEN,
            "central_url": f"http://127.0.0.1:{central_port}",
            "public_key": PUBLIC_KEY,
            **sync,
        },
    )


async def buy(broker: MosquittoBroker, store: str, card: str, seq: int) -> None:
    payload = {
        "ts": int(time.time() * 1000),
        "seq": seq,
        "basket_id": f"b-{store}-{seq}",
        "total": 5.0,
        "loyalty_id": card,
        "items": [{"sku": "1001", "qty": 1, "unit_price": 2.5}, {"sku": "1002", "qty": 1, "unit_price": 2.5}],
    }
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish(f"store/{store}/pos/1/transaction", json.dumps(payload), qos=1)


def left_of(db: Path, household: str) -> dict[str, int]:
    """Rows that still name the household in a store database (0 everywhere once it is erased)."""
    where = {
        "households": "id",
        "consents": "household",
        "purchases": "household",
        "predictions": "household",
        "prediction_outcomes": "household",
        "list_outcomes": "household",
        "list_feedback": "household",
        "access_log": "household",
    }
    found = {t: count(db, f"SELECT count(*) FROM {t} WHERE {c} = ?", (household,)) for t, c in where.items()}
    found["outbox"] = count(
        db,
        "SELECT count(*) FROM outbox WHERE kind != 'erasure' AND (entity = ? OR body LIKE ?)",
        (household, f"%{household}%"),
    )
    return {t: n for t, n in found.items() if n}


async def test_forget_me_at_one_store_erases_the_household_at_every_store(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str
) -> None:
    holder = hold_port()
    central_port = int(holder.getsockname()[1])
    configs = {s: store_config(tmp_path, broker, s, central_port, erasure_poll_s=0.2) for s in ("sa", "sb")}
    card = "LOY-000777"
    async with run_daemon(configs["sa"]) as a, run_daemon(configs["sb"]) as b:
        dbs = {"sa": a.config.path(a.config.database.path), "sb": b.config.path(b.config.database.path)}
        apis = {"sa": f"{a.url}/api/v1", "sb": f"{b.url}/api/v1"}
        # H shops at both stores, consents at both, has a shopping list and feedback at B
        for n, store in enumerate(("sa", "sb", "sa", "sb"), start=1):
            await buy(broker, store, card, n)
        await buy(broker, "sb", "LOY-000888", 9)  # someone else, who stays
        for store in ("sa", "sb"):
            await wait_for(
                lambda db=dbs[store]: count(db, "SELECT count(*) FROM purchases") >= 2, what="bought"
            )
        status, opened = await call(
            "POST", f"{apis['sb']}/kiosk/sessions", KIOSK_TOKEN, {"card": CARDS.barcode(card)}
        )
        assert status == 201, opened
        hh, b_session = opened["customer"], opened["token"]
        assert opened["known"] is True
        for store in ("sa", "sb"):
            consent = {"personalisation": True, "analytics": True}
            assert (await call("PUT", f"{apis[store]}/customers/{hh}/consent", STAFF_TOKEN, consent))[
                0
            ] == 200
        _, listing = await call("GET", f"{apis['sb']}/recommendations/shopping-list/{hh}", b_session)
        assert listing["personalised"] is True
        vote = {"category": "milk", "vote": "up"}
        assert (
            await call("POST", f"{apis['sb']}/recommendations/shopping-list/{hh}/feedback", b_session, vote)
        )[0] == 201
        assert left_of(dbs["sb"], hh)

        config = central_config(tmp_path, central_dsn, {"sa": a.url, "sb": b.url}, port=central_port)
        holder.close()
        async with Central(config):
            # central has H from both stores before anyone asks
            await wait_for(
                lambda: pg_count(central_dsn, "SELECT count(*) FROM households WHERE id = $1", hh) == 1,
                what="H at central",
            )

            assert await call("DELETE", f"{apis['sa']}/customers/{hh}", STAFF_TOKEN) == (
                200,
                {"erased": True, "customer": hh},
            )
            await wait_for(lambda: not left_of(dbs["sb"], hh), timeout=30, what="H erased at B")
            ((entry, origin),) = pg_rows(
                central_dsn, "SELECT id, origin_store FROM erasures WHERE household = $1", hh
            )
            assert origin == "sa"
            assert count(dbs["sb"], "SELECT cursor FROM erasure_feed") == entry
            assert count(dbs["sb"], "SELECT count(*) FROM erasures WHERE household = ?", (hh,)) == 1
            # every store reports (A had erased it already: it only reports), and central holds no H
            await wait_for(
                lambda: (
                    pg_count(central_dsn, "SELECT count(*) FROM erasure_reports WHERE erasure = $1", entry)
                    == 2
                ),
                timeout=30,
                what="reports from both stores",
            )
            reported = {
                s
                for (s,) in pg_rows(
                    central_dsn, "SELECT store FROM erasure_reports WHERE erasure = $1", entry
                )
            }
            assert reported == {"sa", "sb"}
            assert (
                pg_count(central_dsn, "SELECT count(*) FROM erasures") == 1
            )  # a report is not a new erasure
            for table, column in [
                ("households", "id"),
                ("consents", "household"),
                ("purchases", "household"),
            ]:
                n = pg_count(central_dsn, f"SELECT count(*) FROM {table} WHERE {column} = $1", hh)
                assert n == 0, table
            assert (
                pg_count(central_dsn, "SELECT count(*) FROM purchases WHERE household IS NULL") >= 4
            )  # anonymous sales

        # A kept its own data erased and was not erased twice; B's session for H has ended for writes
        assert not left_of(dbs["sa"], hh)
        status, body = await call(
            "PUT",
            f"{apis['sb']}/customers/{hh}/consent",
            b_session,
            {"personalisation": True, "analytics": True},
        )
        assert status == 401, body
        assert count(dbs["sb"], "SELECT count(*) FROM households") == 1  # the other shopper stays
        assert count(dbs["sb"], "SELECT count(*) FROM purchases") == 3  # H's baskets stay as anonymous sales


@pytest.mark.slow  # 40 s of real poll intervals (a measurement for docs/sync.md): `make test-long`
async def test_time_from_forget_me_at_one_store_to_gone_at_another_with_the_default_intervals(
    tmp_path: Path, broker: MosquittoBroker, central_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Central's default ``poll_interval_s`` (1 s) and the store's default ``erasure_poll_s`` (5 s), as the
    demo and a default install run. Several households, one after another: the figure for docs/sync.md."""
    holder = hold_port()
    central_port = int(holder.getsockname()[1])
    configs = {s: store_config(tmp_path, broker, s, central_port) for s in ("sa", "sb")}
    cards = [f"LOY-0009{n:02d}" for n in range(6)]
    async with run_daemon(configs["sa"]) as a, run_daemon(configs["sb"]) as b:
        db_b = b.config.path(b.config.database.path)
        for n, card in enumerate(cards, start=1):
            await buy(broker, "sa", card, n)
            await buy(broker, "sb", card, n)
        await wait_for(
            lambda: count(db_b, "SELECT count(*) FROM households") == len(cards), what="bought at B"
        )
        config = central_config(
            tmp_path,
            central_dsn,
            {"sa": a.url, "sb": b.url},
            port=central_port,
            poll_interval_s=1.0,  # central's default
            backoff_min_s=0.2,
            backoff_max_s=2.0,
        )
        assert b.config.sync.erasure_poll_s == 5.0  # the store's default
        households = [PSEUDONYMS.household_id(c) for c in cards]
        holder.close()
        async with Central(config):
            await wait_for(
                lambda: pg_count(central_dsn, "SELECT count(*) FROM households") == len(cards), what="synced"
            )
            seconds = []
            to_central = []
            for hh in households:
                # at a random moment of B's poll cycle, as a shopper would ask
                await asyncio.sleep(random.uniform(0, 5.0))
                asked = time.monotonic()
                assert (await call("DELETE", f"{a.url}/api/v1/customers/{hh}", STAFF_TOKEN))[0] == 200
                await wait_for(
                    lambda hh=hh: (
                        pg_count(central_dsn, "SELECT count(*) FROM erasures WHERE household = $1", hh) == 1
                    ),
                    timeout=30,
                    what="at central",
                )
                to_central.append(time.monotonic() - asked)
                await wait_for(
                    lambda hh=hh: count(db_b, "SELECT count(*) FROM households WHERE id = ?", (hh,)) == 0,
                    timeout=30,
                    what="gone at B",
                )
                seconds.append(time.monotonic() - asked)
    with capsys.disabled():
        print(
            f"\nerasure A -> B: {', '.join(f'{s:.2f}' for s in seconds)} s"
            f" (median {statistics.median(seconds):.2f}, max {max(seconds):.2f});"
            f" A -> central: {', '.join(f'{s:.2f}' for s in to_central)} s"
        )
    assert max(seconds) < 1.0 + 5.0 + 3.0  # one central poll + one store poll + work, with slack
